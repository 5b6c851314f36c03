import type { TimeSpan } from "../../time-span/time-span.js";

/** What an adapter answers to `acquire`. */
export type SemaphoreAcquireResult =
  | {
      /** The caller now holds a slot of the key. */
      acquired: true;
      /**
       * Strictly greater than every token this backend issued for the key before, unless this
       * was a re-acquire of a live slot by its holder, which keeps its token.
       */
      fencingToken: number;
    }
  | {
      /** No slot was free for the caller (see {@link ISemaphoreAdapter.acquire}); nothing changed. */
      acquired: false;
      /** The limit in force: the smallest of the caller's and every live slot's limit. */
      limit: number;
      /** The live slots of the key. */
      acquiredSlotsCount: number;
      /**
       * Until the soonest live slot expires, by the backend's clock; `null`: no live slot
       * expires. A blocking acquire never waits longer than this for a signal.
       */
      remainingTime: TimeSpan | null;
    };

/** Who waits in `waitForRelease`: the slot an adapter creates if it hands one over. */
export type SemaphoreWaitClaim = {
  /** The waiter's slot id: the holder of the slot it is handed. */
  slotId: string;
  /** The waiter's limit, applied as `acquire` applies it. */
  limit: number;
  /** The TTL of that slot, counted from the hand-off; `null`: it never expires. */
  ttl: TimeSpan | null;
};

/** What `waitForRelease` answers when a release handed a slot to the waiter's claim. */
export type SemaphoreHandOff = {
  /** The claim's slot id now holds a slot. */
  acquired: true;
  /** The new slot's token, as `acquire` would have issued it. */
  fencingToken: number;
  /**
   * Optional: how long the slot has left as the wait resolves, by the backend's clock and on
   * the safe side. Without it, the caller counts the slot's TTL from the wait's start.
   */
  remainingTime?: TimeSpan;
};

/**
 * What `waitForRelease` resolves to: the hand-off, or `undefined` when it only woke the waiter
 * (or the wait ran out).
 */
export type SemaphoreWaitResult = SemaphoreHandOff | undefined;

/** A live slot, as the backend sees it. */
export type SemaphoreSlotState = {
  /** By the backend's clock; `null`: the slot never expires. */
  remainingTime: TimeSpan | null;
  /** The token the backend issued when this slot was acquired. */
  fencingToken: number;
};

/** The live slots of a key, as the backend sees them (`null` from `getState`: there are none). */
export type SemaphoreAdapterState = {
  /** The limit in force: the smallest limit of the live slots. */
  limit: number;
  /** The live slots of the key (at least 1). */
  acquiredSlotsCount: number;
  /** The asking slot id's live slot, or `null` when it holds none. */
  slot: SemaphoreSlotState | null;
};

/**
 * The storage behind a `SemaphoreProvider`: at most `limit` live slots per key. The rules of
 * `ILockAdapter` hold here too: each method is one atomic backend step (one script, one
 * statement, one command), expiry is measured by the backend's clock, a backend failure is
 * thrown and "no slot free" is a normal answer, keys arrive fully namespaced, and a `slotId` is
 * its holder's credential (a generated one is `<id>.<32 hex>`): store it as it is, compare it
 * exactly, keep it out of messages and logs.
 *
 * **The limit.** Each slot keeps the limit it was acquired with. An acquire takes a slot only
 * while the live slots number fewer than its own limit and fewer than every live slot's limit:
 * however the limits of a key's users differ (a rolling deploy that changes it), no holder
 * ever shares the key with more live slots than its own limit allows. Slots already held are
 * never taken away when a smaller limit arrives; new ones wait until the count is below it.
 *
 * **Expired slots never count**: each operation drops them before it decides, on the
 * backend's clock (no sweep that may come late).
 *
 * Run `semaphoreAdapterTestSuite` from `hasp/semaphore/test-suites` against an implementation.
 */
export type ISemaphoreAdapter = {
  /**
   * Takes a slot of the key for `slotId` when the limit rule above allows it. When `slotId`
   * already holds a live slot, succeeds again whatever the count: the TTL restarts, and the
   * token and the slot's limit stay. After its own slot expired, `slotId` needs a free slot
   * like anyone else, and gets a new token.
   *
   * @param limit A whole number from 1 to 1,000,000; any other is refused (`InvalidArgumentError`)
   *   before the store is touched, here and in a wait's claim.
   * @param ttl `null`: the slot never expires.
   */
  acquire(
    key: string,
    slotId: string,
    limit: number,
    ttl: TimeSpan | null,
  ): Promise<SemaphoreAcquireResult>;

  /** Frees `slotId`'s live slot. `false`: it held none, and nothing changed. */
  release(key: string, slotId: string): Promise<boolean>;

  /** Frees every slot of the key. `false`: no slot was live. */
  forceReleaseAll(key: string): Promise<boolean>;

  /**
   * Restarts the TTL of `slotId`'s live, expiring slot. `false`: it holds no live slot, or its
   * slot never expires; nothing changed.
   */
  refresh(key: string, slotId: string, ttl: TimeSpan): Promise<boolean>;

  /** The key's live slots, with `slotId`'s own, or `null` when no slot is live. */
  getState(key: string, slotId: string): Promise<SemaphoreAdapterState | null>;

  /**
   * Optional: resolves when a slot of the key is freed (a signal from the backend), or after
   * `maxWait`; at once when a slot is already free for the claim (or, without one, for anyone);
   * rejects with the signal's reason when `signal` aborts, leaving nothing behind. As
   * `ILockAdapter.waitForRelease`: a release wakes at least the oldest waiter it can admit, and
   * with a `claim` the adapter may hand the freed slot over at the release itself, to its
   * waiters in the order they came (no newcomer slips in; a waiter the limit rule does not
   * admit yet keeps the ones behind it waiting), resolving with `{ acquired: true,
   * fencingToken }`. A wait that has ended is never handed a slot.
   */
  waitForRelease?(
    key: string,
    maxWait: TimeSpan,
    signal: AbortSignal,
    claim?: SemaphoreWaitClaim,
  ): Promise<SemaphoreWaitResult>;

  /** Optional: as `ILockAdapter.waitAcquires` (a wait with a claim is also an acquire). */
  readonly waitAcquires?: boolean;

  /** Optional: as `ILockAdapter.waitsPastExpiry` (an expiring slot serves the queue). */
  readonly waitsPastExpiry?: boolean;

  /**
   * Optional: ends what the adapter itself made, never the clients it was given; its waits end
   * as `ILockAdapter.close` says (a slot handed to one meanwhile is released).
   */
  close?(): Promise<void>;
};
