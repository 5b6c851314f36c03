import type { TimeSpan } from "../../time-span/time-span.js";

/** What an adapter answers to `acquire`. */
export type LockAcquireResult =
  | {
      acquired: true;
      /**
       * Strictly greater than every token this backend issued for the key before, unless
       * this was a re-acquire of a live hold by the same owner, which keeps its token.
       */
      fencingToken: number;
    }
  | {
      acquired: false;
      /** The holder's lock id. */
      owner: string;
      /** The holder's remaining time by the backend's clock; `null`: it never expires. */
      remainingTime: TimeSpan | null;
    };

/** A live hold, as the backend sees it. */
export type LockAdapterState = {
  owner: string;
  /** By the backend's clock; `null`: the hold never expires. */
  remainingTime: TimeSpan | null;
  fencingToken: number;
};

/**
 * The storage behind a `LockProvider`: the only code that talks to the backend. Each method is
 * one atomic backend step (one script, one statement, one command): no read-then-write from the
 * client. Expiry is measured by the backend's clock wherever it has one.
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
   * with the signal's reason when `signal` aborts, leaving nothing behind. Waiting never
   * acquires. A release must wake at least one waiter of the key; it may wake only one (only
   * one can take the key), as long as the next release wakes the next. Without this method,
   * blocking acquires poll at their interval.
   */
  waitForRelease?(key: string, maxWait: TimeSpan, signal: AbortSignal): Promise<void>;
};
