import type { TimeSpan } from "../../time-span/time-span.js";
import type { ILock } from "./lock.js";

/** The events a lock provider dispatches. */
export const LOCK_EVENTS = {
  ACQUIRED: "ACQUIRED",
  RELEASED: "RELEASED",
  /** An acquire found the key held by someone else. */
  UNAVAILABLE: "UNAVAILABLE",
  REFRESHED: "REFRESHED",
  FORCE_RELEASED: "FORCE_RELEASED",
  /** A release by a lock that did not hold the key. */
  FAILED_RELEASE: "FAILED_RELEASE",
  /** A refresh by a lock that did not hold the key (in `run*`: the lock was lost). */
  FAILED_REFRESH: "FAILED_REFRESH",
  /** The backend failed; the error is also thrown to the caller. */
  UNEXPECTED_ERROR: "UNEXPECTED_ERROR",
} as const;

export type LockEventName = (typeof LOCK_EVENTS)[keyof typeof LOCK_EVENTS];

/** What every lock event carries: plain data, plus the lock itself. */
export type LockEventBase = {
  lock: ILock;
  /** The key as the caller wrote it. */
  key: string;
  lockId: string;
  /** When the operation completed, by this process's clock. */
  at: Date;
};

export type LockAcquiredEvent = LockEventBase & {
  fencingToken: number;
  /** `null`: the hold never expires. */
  ttl: TimeSpan | null;
};

export type LockUnavailableEvent = LockEventBase & {
  owner: string;
  remainingTime: TimeSpan | null;
};

export type LockReleasedEvent = LockEventBase;

export type LockRefreshedEvent = LockEventBase & { ttl: TimeSpan };

export type LockForceReleasedEvent = LockEventBase & {
  /** Whether somebody held the key. */
  existed: boolean;
};

export type LockFailedReleaseEvent = LockEventBase;

export type LockFailedRefreshEvent = LockEventBase;

export type LockUnexpectedErrorEvent = LockEventBase & {
  /** `acquire`, `release`, `refresh`, `forceRelease` or `getState`. */
  operation: string;
  error: unknown;
};

/** Event names mapped to payloads, for `EventBus<LockEventMap>`. */
export type LockEventMap = {
  [LOCK_EVENTS.ACQUIRED]: LockAcquiredEvent;
  [LOCK_EVENTS.RELEASED]: LockReleasedEvent;
  [LOCK_EVENTS.UNAVAILABLE]: LockUnavailableEvent;
  [LOCK_EVENTS.REFRESHED]: LockRefreshedEvent;
  [LOCK_EVENTS.FORCE_RELEASED]: LockForceReleasedEvent;
  [LOCK_EVENTS.FAILED_RELEASE]: LockFailedReleaseEvent;
  [LOCK_EVENTS.FAILED_REFRESH]: LockFailedRefreshEvent;
  [LOCK_EVENTS.UNEXPECTED_ERROR]: LockUnexpectedErrorEvent;
};
