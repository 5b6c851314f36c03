import type { TimeSpan } from "../../time-span/time-span.js";
import type { ILock } from "./lock.js";

/** The events a lock provider dispatches. */
export const LOCK_EVENTS = {
  /** A lock took the key (or re-acquired its own live hold). */
  ACQUIRED: "ACQUIRED",
  /** A lock released its own hold. */
  RELEASED: "RELEASED",
  /** An acquire found the key held by someone else. */
  UNAVAILABLE: "UNAVAILABLE",
  /** A lock restarted the TTL of its hold. */
  REFRESHED: "REFRESHED",
  /** `forceRelease` ran, whether or not somebody held the key. */
  FORCE_RELEASED: "FORCE_RELEASED",
  /** A release by a lock that did not hold the key. */
  FAILED_RELEASE: "FAILED_RELEASE",
  /** A refresh by a lock that did not hold the key (in `run*`: the lock was lost). */
  FAILED_REFRESH: "FAILED_REFRESH",
  /** The backend failed; the error is also thrown to the caller. */
  UNEXPECTED_ERROR: "UNEXPECTED_ERROR",
} as const;

/** One of the {@link LOCK_EVENTS} names. */
export type LockEventName = (typeof LOCK_EVENTS)[keyof typeof LOCK_EVENTS];

/** What every lock event carries: plain data, plus the lock itself. */
export type LockEventBase = {
  /**
   * The lock the operation ran on; it works, even after crossing a Redis event bus. A listener
   * can act as it: give the event bus only to code you trust with the locks.
   */
  lock: ILock;
  /** The key as the caller wrote it. */
  key: string;
  /** The public id of the lock the operation ran on (`lock.id`). */
  lockId: string;
  /** When the operation completed, by this process's clock. */
  at: Date;
};

/** Payload of {@link LOCK_EVENTS}.ACQUIRED. */
export type LockAcquiredEvent = LockEventBase & {
  /** The token of the hold just taken (unchanged by a re-acquire of a live hold). */
  fencingToken: number;
  /** `null`: the hold never expires. */
  ttl: TimeSpan | null;
};

/** Payload of {@link LOCK_EVENTS}.UNAVAILABLE. */
export type LockUnavailableEvent = LockEventBase & {
  /** The holder's public id (never a generated lock's proof). */
  owner: string;
  /** The holder's remaining time by the backend's clock; `null`: it never expires. */
  remainingTime: TimeSpan | null;
};

/** Payload of {@link LOCK_EVENTS}.RELEASED. */
export type LockReleasedEvent = LockEventBase;

/** Payload of {@link LOCK_EVENTS}.REFRESHED. */
export type LockRefreshedEvent = LockEventBase & {
  /** The TTL the hold restarted with. */
  ttl: TimeSpan;
};

/** Payload of {@link LOCK_EVENTS}.FORCE_RELEASED. */
export type LockForceReleasedEvent = LockEventBase & {
  /** Whether a live hold was released: somebody held the key (daiso's name for it). */
  hasReleased: boolean;
};

/** Payload of {@link LOCK_EVENTS}.FAILED_RELEASE. */
export type LockFailedReleaseEvent = LockEventBase;

/** Payload of {@link LOCK_EVENTS}.FAILED_REFRESH. */
export type LockFailedRefreshEvent = LockEventBase;

/** Payload of {@link LOCK_EVENTS}.UNEXPECTED_ERROR. */
export type LockUnexpectedErrorEvent = LockEventBase & {
  /** `acquire`, `release`, `refresh`, `forceRelease`, `getState` or `waitForRelease`. */
  operation: string;
  /**
   * What the adapter threw, the `cause` of the {@link LockBackendError} the caller gets; when
   * the adapter threw a `LockBackendError` of its own (one that explains the failure, with a
   * `hint` such as "call init()"), the error the caller gets.
   */
  error: unknown;
};

/** Event names mapped to payloads, for `EventBus<LockEventMap>`. */
export type LockEventMap = {
  /** A lock took the key. */
  [LOCK_EVENTS.ACQUIRED]: LockAcquiredEvent;
  /** A lock released its own hold. */
  [LOCK_EVENTS.RELEASED]: LockReleasedEvent;
  /** An acquire found the key held by someone else. */
  [LOCK_EVENTS.UNAVAILABLE]: LockUnavailableEvent;
  /** A lock restarted the TTL of its hold. */
  [LOCK_EVENTS.REFRESHED]: LockRefreshedEvent;
  /** `forceRelease` ran. */
  [LOCK_EVENTS.FORCE_RELEASED]: LockForceReleasedEvent;
  /** A release by a lock that did not hold the key. */
  [LOCK_EVENTS.FAILED_RELEASE]: LockFailedReleaseEvent;
  /** A refresh by a lock that did not hold the key. */
  [LOCK_EVENTS.FAILED_REFRESH]: LockFailedRefreshEvent;
  /** The backend failed. */
  [LOCK_EVENTS.UNEXPECTED_ERROR]: LockUnexpectedErrorEvent;
};
