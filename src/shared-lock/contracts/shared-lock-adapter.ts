import type { TimeSpan } from "../../time-span/time-span.js";

/** What kept a writer out: the key's writer, its readers, or waits that came first. */
export type SharedLockWriterBlocker = "writer" | "readers" | "waiters";

/** What kept a reader out: the key's writer, a waiting writer (or older waits), or the limit. */
export type SharedLockReaderBlocker = "writer" | "waiters" | "limit";

/** What an adapter answers to `acquireWriter`. */
export type SharedLockWriterAcquireResult =
  | {
      /** The caller now holds the key as its writer. */
      acquired: true;
      /**
       * Strictly greater than every token this backend issued for the key before (writers' and
       * readers'), unless this was a re-acquire of the caller's own live writer hold, which
       * keeps its token.
       */
      fencingToken: number;
    }
  | {
      /** Another writer holds the key (live); nothing changed but the caller's intent. */
      acquired: false;
      /** Tells the refusals apart. */
      blockedBy: "writer";
      /** The writer's lock id, as stored (the shared lock shows only its public part). */
      owner: string;
      /** The writer's remaining time by the backend's clock; `null`: it never expires. */
      remainingTime: TimeSpan | null;
    }
  | {
      /**
       * Readers hold the key (live; the caller's own reader slot included: a reader is never
       * made a writer); nothing changed but the caller's intent.
       */
      acquired: false;
      /** Tells the refusals apart. */
      blockedBy: "readers";
      /** The live reader slots. */
      acquiredSlotsCount: number;
      /**
       * Until the soonest live reader slot expires, by the backend's clock; `null`: none
       * expires. A blocking acquire never waits longer than this for a signal.
       */
      remainingTime: TimeSpan | null;
    }
  | {
      /**
       * Nobody holds the key, but a wait that came first keeps it (another writer's recorded
       * intent, or a queued wait the release has not served yet); nothing changed.
       */
      acquired: false;
      /** Tells the refusals apart. */
      blockedBy: "waiters";
      /** Until that intent lapses, by the backend's clock; `null`: unknown (poll at the interval). */
      remainingTime: TimeSpan | null;
    };

/** What an adapter answers to `acquireReader`. */
export type SharedLockReaderAcquireResult =
  | {
      /** The caller now holds a reader slot of the key. */
      acquired: true;
      /**
       * Strictly greater than every token this backend issued for the key before, unless this
       * was a re-acquire of the caller's own live reader slot, which keeps its token.
       */
      fencingToken: number;
    }
  | {
      /** A writer holds the key (live; the caller itself included); nothing changed. */
      acquired: false;
      /** Tells the refusals apart. */
      blockedBy: "writer";
      /** The writer's lock id, as stored (the shared lock shows only its public part). */
      owner: string;
      /** The writer's remaining time by the backend's clock; `null`: it never expires. */
      remainingTime: TimeSpan | null;
    }
  | {
      /**
       * A writer waits (its unexpired intent is recorded, or its claim is queued), or an older
       * reader's wait is queued that its own limit holds back: no newcomer passes it; nothing
       * changed.
       */
      acquired: false;
      /** Tells the refusals apart. */
      blockedBy: "waiters";
      /** The live reader slots (0 when none). */
      acquiredSlotsCount: number;
      /**
       * Until the soonest of the live reader slots' expiries and the waiting writer's intent's
       * deadline, by the backend's clock; `null`: none of them expires.
       */
      remainingTime: TimeSpan | null;
    }
  | {
      /** No reader slot is free for the caller under the limit rule; nothing changed. */
      acquired: false;
      /** Tells the refusals apart. */
      blockedBy: "limit";
      /** The limit in force: the smallest of the caller's and every live reader slot's limit. */
      limit: number;
      /** The live reader slots. */
      acquiredSlotsCount: number;
      /** Until the soonest live reader slot expires, by the backend's clock; `null`: none expires. */
      remainingTime: TimeSpan | null;
    };

/** A writer's wait in `waitForRelease`: the writer hold an adapter creates if it hands one over. */
export type SharedLockWriterClaim = {
  /** Tells the claims apart. */
  side: "writer";
  /** The waiter's lock id: the owner of the writer hold it is handed. */
  lockId: string;
  /** The TTL of that hold, counted from the hand-off; `null`: it never expires. */
  ttl: TimeSpan | null;
};

/** A reader's wait in `waitForRelease`: the reader slot an adapter creates if it hands one over. */
export type SharedLockReaderClaim = {
  /** Tells the claims apart. */
  side: "reader";
  /** The waiter's lock id: the holder of the reader slot it is handed. */
  lockId: string;
  /** The waiter's readers' limit, applied as `acquireReader` applies it. */
  limit: number;
  /** The TTL of that slot, counted from the hand-off; `null`: it never expires. */
  ttl: TimeSpan | null;
};

/** Who waits in `waitForRelease`, and for which side of the key. */
export type SharedLockWaitClaim = SharedLockWriterClaim | SharedLockReaderClaim;

/** What `waitForRelease` answers when a release handed the waiter's claim its hold. */
export type SharedLockHandOff = {
  /** The claim's lock id now holds what it claimed (the key as writer, or a reader slot). */
  acquired: true;
  /** The new hold's token, as `acquireWriter` or `acquireReader` would have issued it. */
  fencingToken: number;
  /**
   * Optional: how long the hold has left as the wait resolves, by the backend's clock and on
   * the safe side. Without it, the caller counts the hold's TTL from the wait's start.
   */
  remainingTime?: TimeSpan;
};

/**
 * What `waitForRelease` resolves to: the hand-off, or `undefined` when it only woke the waiter
 * (or the wait ran out).
 */
export type SharedLockWaitResult = SharedLockHandOff | undefined;

/** The live writer of a key, as the backend sees it. */
export type SharedLockAdapterWriterState = {
  /** Tells the states apart. */
  heldBy: "writer";
  /** The writer's lock id, as stored (the shared lock shows only its public part). */
  owner: string;
  /** By the backend's clock; `null`: the writer's hold never expires. */
  remainingTime: TimeSpan | null;
  /** The token the backend issued when the writer's hold began. */
  fencingToken: number;
};

/** A live reader slot, as the backend sees it. */
export type SharedLockAdapterReaderSlot = {
  /** By the backend's clock; `null`: the slot never expires. */
  remainingTime: TimeSpan | null;
  /** The token the backend issued when this slot was acquired. */
  fencingToken: number;
};

/** The live readers of a key, as the backend sees them. */
export type SharedLockAdapterReadersState = {
  /** Tells the states apart. */
  heldBy: "readers";
  /** The limit in force: the smallest limit of the live reader slots. */
  limit: number;
  /** The live reader slots (at least 1). */
  acquiredSlotsCount: number;
  /** The asking lock id's live reader slot, or `null` when it holds none. */
  slot: SharedLockAdapterReaderSlot | null;
  /** Whether a writer waits: an unexpired intent is recorded, or a live writer claim is queued. */
  writerWaiting: boolean;
};

/**
 * Who holds a key, as the backend sees it: its writer or its readers, never both (`null` from
 * `getState`: nobody, though a writer may be waiting).
 */
export type SharedLockAdapterState = SharedLockAdapterWriterState | SharedLockAdapterReadersState;

/**
 * The storage behind a `SharedLockProvider`: a reader-writer lock per key, on the backend's
 * clock. The rules of `ILockAdapter` and `ISemaphoreAdapter` hold here too: each method is one
 * atomic backend step (one script, one statement, one command), never a read then a write from
 * the client; expiry is measured by the backend's clock; a backend failure is thrown and "held"
 * is a normal answer; keys arrive fully namespaced; a `lockId` is its holder's credential (a
 * generated one is `<id>.<32 hex>`): store it as it is, compare it exactly, keep it out of
 * messages and logs.
 *
 * **Exclusion.** A live writer excludes every reader and every other writer; live readers
 * exclude every writer, the caller's own reader slot included (a reader is never turned into a
 * writer; it releases first). The readers' side is a semaphore: each reader slot keeps the limit
 * it was taken with, and a slot is taken only while the live slots number fewer than the
 * caller's limit and every live slot's (`ISemaphoreAdapter`'s limit rule).
 *
 * **Expired holds never count**: each operation drops the key's expired writer and reader slots
 * before it decides, on the backend's clock (no sweep that may come late), so a crashed reader
 * keeps a writer out no longer than its own TTL.
 *
 * **One fencing counter per key**, for both sides: every new hold, writer or reader, gets a
 * token strictly greater than every token issued for the key before, so a writer's token is
 * above every reader's that came before it.
 *
 * **Writer preference.** Once a writer waits, no new reader enters; readers holding keep their
 * slots and may refresh or re-acquire them. How a writer waits depends on the backend:
 *
 * - An adapter with `waitForRelease` keeps the key's waits in one queue, in arrival order,
 *   writers' and readers' claims together. Serving it (at every release, force release, and
 *   expiry an operation finds, and at a wait's check at the holder's expiry) goes oldest first:
 *   a reader's claim gets a slot while no writer holds and the limit rule admits it; a writer's
 *   claim gets the key when nobody holds it; the first claim that cannot be served stops the
 *   serving. So the last reader out hands the key to the writer at the head of the queue, and a
 *   writer's release admits together the readers queued before the next writer (up to the
 *   limit). A newcomer never passes the queue: `acquireReader` is refused (`"waiters"`) while a
 *   writer's claim is queued, or while the first queued claim is a reader's that its own limit
 *   holds back; `acquireWriter` is refused while any claim is queued.
 * - An adapter without it (polling) records a waiting writer's **intent** instead, in the
 *   writer's own `acquireWriter` step: see `acquireWriter`'s `intent`. While another lock id's
 *   intent is unexpired, `acquireReader` refuses newcomers and `acquireWriter` refuses other
 *   writers (`"waiters"`); the intent lapses at its deadline, so a waiting writer that crashed
 *   keeps readers out for no longer than that.
 *
 * A refusal's `blockedBy` names the first of its causes in this order: a live writer, then live
 * readers (for a writer) or waiters (for a reader), then waiters (for a writer) or the limit
 * (for a reader).
 *
 * Run `sharedLockAdapterTestSuite` from `hasp/shared-lock/test-suites` against an implementation.
 */
export type ISharedLockAdapter = {
  /**
   * Takes the key as `lockId`'s writer when nobody holds it and no wait keeps it (see writer
   * preference above). When `lockId` already is its live writer, succeeds again: the TTL
   * restarts and the token stays. After its own hold expired, `lockId` gets a new hold with a
   * new token.
   *
   * @param ttl `null`: the writer's hold never expires.
   * @param intent `null` for a single attempt, which records nothing. An attempt of a blocking
   *   acquire on an adapter without `waitForRelease` gives how long its intent must last (until
   *   its next attempt is due, plus a grace): when the writer is refused, the adapter records,
   *   in the same step, `lockId` as the key's waiting writer with the deadline now plus
   *   `intent` on the backend's clock, unless another lock id's unexpired intent is recorded
   *   (the writer that came first keeps its place); `lockId`'s own intent is renewed. A
   *   successful acquire by the intent's lock id clears it. An adapter with `waitForRelease`
   *   is always given `null` (its queued writer claims are the intents).
   */
  acquireWriter(
    key: string,
    lockId: string,
    ttl: TimeSpan | null,
    intent: TimeSpan | null,
  ): Promise<SharedLockWriterAcquireResult>;

  /**
   * Frees the key if `lockId` is its live writer, then serves the queue (if any). `false`: it
   * was not, and nothing changed.
   */
  releaseWriter(key: string, lockId: string): Promise<boolean>;

  /** Frees the key's writer, whoever it is. `false`: no writer was live. Waits stay queued. */
  forceReleaseWriter(key: string): Promise<boolean>;

  /**
   * Restarts the TTL of `lockId`'s live, expiring writer hold. `false`: it is not the live
   * writer, or its hold never expires; nothing changed.
   */
  refreshWriter(key: string, lockId: string, ttl: TimeSpan): Promise<boolean>;

  /**
   * Takes a reader slot of the key for `lockId` when no writer holds it, no writer waits (see
   * writer preference above) and the limit rule admits it. When `lockId` already holds a live
   * reader slot, succeeds again whatever the count and whoever waits: the TTL restarts, and the
   * token and the slot's limit stay. After its own slot expired, `lockId` needs a free slot
   * like anyone else, and gets a new token.
   *
   * @param limit A whole number, at least 1: the most readers at once.
   * @param ttl `null`: the slot never expires.
   */
  acquireReader(
    key: string,
    lockId: string,
    limit: number,
    ttl: TimeSpan | null,
  ): Promise<SharedLockReaderAcquireResult>;

  /** Frees `lockId`'s live reader slot, then serves the queue. `false`: it held none; nothing changed. */
  releaseReader(key: string, lockId: string): Promise<boolean>;

  /** Frees every reader slot of the key. `false`: no reader slot was live. Waits stay queued. */
  forceReleaseAllReaders(key: string): Promise<boolean>;

  /**
   * Restarts the TTL of `lockId`'s live, expiring reader slot (also while a writer waits).
   * `false`: it holds no live reader slot, or its slot never expires; nothing changed.
   */
  refreshReader(key: string, lockId: string, ttl: TimeSpan): Promise<boolean>;

  /**
   * Frees the key's writer and every reader slot. `false`: nobody held the key. Waits stay
   * queued (and are served), and a recorded intent stays until its deadline.
   */
  forceRelease(key: string): Promise<boolean>;

  /** Who holds the key, with `lockId`'s own reader slot; `null` when nobody does. Changes nothing. */
  getState(key: string, lockId: string): Promise<SharedLockAdapterState | null>;

  /**
   * Optional: waits in the key's queue (see writer preference above) until a release or an
   * expiry serves the claim, or `maxWait` passes; rejects with the signal's reason when `signal`
   * aborts, leaving nothing behind. When the claim is served, the adapter hands its hold over at
   * that release itself (the claim's TTL counted from then, a new token) and the wait resolves
   * with `{ acquired: true, fencingToken }`; an adapter may instead only wake the waiter
   * (resolving with `undefined`) when its claim's turn has come. A wait that has ended is never
   * handed anything. Two waits of one lock id are served as `ISemaphoreAdapter`'s are: one at a
   * time, the other kept in its place. Without this method, blocking acquires poll at their
   * interval, and writers record their intent instead (see `acquireWriter`).
   */
  waitForRelease?(
    key: string,
    maxWait: TimeSpan,
    signal: AbortSignal,
    claim: SharedLockWaitClaim,
  ): Promise<SharedLockWaitResult>;

  /**
   * Optional: as `ILockAdapter.waitAcquires`: a wait is also an acquire. It takes what the
   * claim asks for at once when `acquireWriter` or `acquireReader` (with the claim's limit and
   * TTL, no intent) would, re-takes the claim's own live hold of that side (TTL restarted, same
   * token), and otherwise queues.
   */
  readonly waitAcquires?: boolean;

  /**
   * Optional: as `ILockAdapter.waitsPastExpiry`: a wait keeps its place past the holders'
   * expiries, and the adapter serves the queue when they expire, as at a release.
   */
  readonly waitsPastExpiry?: boolean;

  /**
   * Optional: ends what the adapter itself made, never the clients it was given; its waits end
   * as `ILockAdapter.close` says (a hold handed to one meanwhile is released).
   */
  close?(): Promise<void>;
};
