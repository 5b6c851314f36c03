import type { TimeSpan } from "../../time-span/time-span.js";

/** What an adapter answers to `acquire`. */
export type LockAcquireResult =
  | {
      /** The key is now held by the caller. */
      acquired: true;
      /**
       * Strictly greater than every token this backend issued for the key before, unless
       * this was a re-acquire of a live hold by the same owner, which keeps its token.
       */
      fencingToken: number;
    }
  | {
      /** Someone else holds the key (live); nothing changed. */
      acquired: false;
      /** The holder's lock id, as stored (the lock shows only its public part). */
      owner: string;
      /** The holder's remaining time by the backend's clock; `null`: it never expires. */
      remainingTime: TimeSpan | null;
    };

/** Who waits in `waitForRelease`: the hold an adapter creates if it hands the key over. */
export type LockWaitClaim = {
  /** The waiter's lock id: the owner of the hold it is handed. */
  lockId: string;
  /** The TTL of that hold, counted from the hand-off; `null`: it never expires. */
  ttl: TimeSpan | null;
};

/** What `waitForRelease` answers when a release handed the key to the waiter's claim. */
export type LockHandOff = {
  /** The key is now held by the claim's lock id. */
  acquired: true;
  /** The new hold's token, as `acquire` would have issued it. */
  fencingToken: number;
  /**
   * Optional: how long the hold has left as the wait resolves, by the backend's clock and on the
   * safe side (what the backend said, less the time since the request that learned it was
   * sent). Without it, the caller counts the hold's TTL from the wait's start, which after a
   * long wait leaves it little or nothing of its lease.
   */
  remainingTime?: TimeSpan;
};

/**
 * What `waitForRelease` resolves to: the hand-off, or `undefined` when it only woke the waiter
 * (or the wait ran out).
 */
export type LockWaitResult = LockHandOff | undefined;

/** A live hold, as the backend sees it. */
export type LockAdapterState = {
  /** The holder's lock id, as stored (the lock shows only its public part). */
  owner: string;
  /** By the backend's clock; `null`: the hold never expires. */
  remainingTime: TimeSpan | null;
  /** The token the backend issued when this hold began. */
  fencingToken: number;
};

/**
 * The storage behind a `LockProvider`: the only code that talks to the backend. Each method is
 * one atomic backend step (one script, one statement, one command): no read-then-write from the
 * client. Expiry is measured by the backend's clock wherever it has one.
 *
 * A `lockId` is the owner's credential, not only its name: a generated lock's is its public id,
 * a dot and a secret proof (`<id>.<32 hex>`), a given one is up to 255 characters of any
 * kind. Store it as it is, compare it exactly, and keep it out of error messages and logs:
 * whoever learns it can release the hold.
 *
 * Keys arrive fully namespaced. Validation, events, retries and blocking belong to the provider;
 * an adapter only answers. A backend failure is thrown (the provider wraps it in a
 * `LockBackendError`); "held by someone else" is a normal answer, never an error.
 *
 * Run `lockAdapterTestSuite` from `hasp/lock/test-suites` against an implementation.
 */
export type ILockAdapter = {
  /**
   * Takes the key for `lockId` when it is free or its hold has expired. When `lockId` already
   * holds it (live), succeeds again: the TTL restarts and the fencing token stays. After its
   * own hold expired, `lockId` gets a new hold with a new token.
   *
   * @param ttl `null`: the hold never expires.
   */
  acquire(key: string, lockId: string, ttl: TimeSpan | null): Promise<LockAcquireResult>;

  /** Frees the key if `lockId` holds it (live). `false`: it did not, and nothing changed. */
  release(key: string, lockId: string): Promise<boolean>;

  /** Frees the key whoever holds it. `false`: nobody held it. */
  forceRelease(key: string): Promise<boolean>;

  /**
   * Restarts the TTL of `lockId`'s live, expiring hold. `false`: it holds no live hold, or its
   * hold never expires; nothing changed.
   */
  refresh(key: string, lockId: string, ttl: TimeSpan): Promise<boolean>;

  /** The live hold of the key, or `null` when it is free. */
  getState(key: string): Promise<LockAdapterState | null>;

  /**
   * Optional: resolves when the key is released (a signal from the backend), or after
   * `maxWait`, whichever comes first; resolves at once when the key is already free (a release
   * may land between the caller's failed attempt and this call, and must not be missed); rejects
   * with the signal's reason when `signal` aborts, leaving nothing behind. Without a `claim`,
   * waiting never acquires. A release must wake at least one waiter of the key; it may wake
   * only one (only one can take the key), as long as the next release wakes the next. Without
   * this method, blocking acquires poll at their interval.
   *
   * With a `claim`, the adapter may instead hand the key over at the release itself, to its
   * waiters in the order they came: the release (or forceRelease) then makes the key
   * `claim.lockId`'s, with `claim.ttl` counted from that moment and a new fencing token, and
   * the wait resolves with `{ acquired: true, fencingToken }`. The waiter then holds the key
   * without a further `acquire`, and a newcomer cannot take it in between. A wait that has
   * ended (after `maxWait`, or aborted) is never handed the key. An adapter that only wakes
   * waiters ignores `claim` and resolves with nothing.
   */
  waitForRelease?(
    key: string,
    maxWait: TimeSpan,
    signal: AbortSignal,
    claim?: LockWaitClaim,
  ): Promise<LockWaitResult>;

  /**
   * Optional, `true` when `waitForRelease` with a claim is also an acquire: it takes the key for
   * the claim when the key is free or its hold expired, re-takes the claim's own live hold (TTL
   * restarted, same token), resolving with the hold at once in both cases, and otherwise queues
   * (never waiting past the holder's expiry, unless `waitsPastExpiry`: an expiry sends no
   * signal). A blocking acquire then starts with the wait, in one round trip, instead of an
   * acquire followed by a wait.
   */
  readonly waitAcquires?: boolean;

  /**
   * Optional, `true` when a wait keeps its place in the key's queue past the holder's expiry:
   * the adapter serves its waits, oldest first, when the hold expires, as at a release, and a
   * refresh of the hold leaves them where they are. The caller then waits its whole time in one
   * `waitForRelease`; otherwise it caps each wait at the holder's remaining time (an expiry
   * sends no signal) and tries again, joining the queue anew at its end.
   */
  readonly waitsPastExpiry?: boolean;

  /**
   * Optional: ends what the adapter itself made (a connection it duplicated or checked out, a
   * timer), never the clients it was given. `LockProvider.close()` calls it. Nothing the adapter
   * makes may keep the process alive once the application closed its own clients, so calling
   * it is never needed for the process to exit. A `waitForRelease` under way at `close()` ends
   * at once as an aborted one does (a key handed to it meanwhile is released), rejecting with an
   * error that names `close()`; one called after `close()` rejects so at once.
   */
  close?(): Promise<void>;
};
