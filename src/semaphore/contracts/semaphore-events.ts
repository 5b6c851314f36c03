import type { TimeSpan } from "../../time-span/time-span.js";
import type { ISemaphore } from "./semaphore.js";

/** The events a semaphore provider dispatches. */
export const SEMAPHORE_EVENTS = {
  /** A semaphore took a slot (or re-acquired its own live slot). */
  ACQUIRED: "ACQUIRED",
  /** A semaphore released its own slot. */
  RELEASED: "RELEASED",
  /** `forceReleaseAll` ran, whether or not any slot was live. */
  ALL_FORCE_RELEASED: "ALL_FORCE_RELEASED",
  /** An acquire found no slot free. */
  LIMIT_REACHED: "LIMIT_REACHED",
  /** A semaphore restarted the TTL of its slot. */
  REFRESHED: "REFRESHED",
  /** A release by a semaphore that held no slot. */
  FAILED_RELEASE: "FAILED_RELEASE",
  /** A refresh by a semaphore that held no slot (in `run*`: the slot was lost). */
  FAILED_REFRESH: "FAILED_REFRESH",
  /** The backend failed; the error is also thrown to the caller. */
  UNEXPECTED_ERROR: "UNEXPECTED_ERROR",
} as const;

/** One of the {@link SEMAPHORE_EVENTS} names. */
export type SemaphoreEventName = (typeof SEMAPHORE_EVENTS)[keyof typeof SEMAPHORE_EVENTS];

/** What every semaphore event carries: plain data, plus the semaphore itself. */
export type SemaphoreEventBase = {
  /**
   * The semaphore the operation ran on; it works, even after crossing a Redis event bus. A
   * listener can act as it: give the event bus only to code you trust with the semaphores.
   */
  semaphore: ISemaphore;
  /** The key as the caller wrote it. */
  key: string;
  /** The public id of the semaphore's slot (`semaphore.slotId`). */
  slotId: string;
  /** When the operation completed, by this process's clock. */
  at: Date;
};

/** Payload of {@link SEMAPHORE_EVENTS}.ACQUIRED. */
export type SemaphoreAcquiredEvent = SemaphoreEventBase & {
  /** The token of the slot just taken (unchanged by a re-acquire of a live slot). */
  fencingToken: number;
  /** `null`: the slot never expires. */
  ttl: TimeSpan | null;
  /** The semaphore's own limit. */
  limit: number;
};

/** Payload of {@link SEMAPHORE_EVENTS}.LIMIT_REACHED. */
export type SemaphoreLimitReachedEvent = SemaphoreEventBase & {
  /** The limit in force: the semaphore's own, or a live slot's smaller one. */
  limit: number;
  /** The live slots of the key, as the backend answered. */
  acquiredSlotsCount: number;
};

/** Payload of {@link SEMAPHORE_EVENTS}.RELEASED. */
export type SemaphoreReleasedEvent = SemaphoreEventBase;

/** Payload of {@link SEMAPHORE_EVENTS}.REFRESHED. */
export type SemaphoreRefreshedEvent = SemaphoreEventBase & {
  /** The TTL the slot restarted with. */
  ttl: TimeSpan;
};

/** Payload of {@link SEMAPHORE_EVENTS}.ALL_FORCE_RELEASED. */
export type SemaphoreAllForceReleasedEvent = SemaphoreEventBase & {
  /** Whether any live slot was released. */
  hasReleased: boolean;
};

/** Payload of {@link SEMAPHORE_EVENTS}.FAILED_RELEASE. */
export type SemaphoreFailedReleaseEvent = SemaphoreEventBase;

/** Payload of {@link SEMAPHORE_EVENTS}.FAILED_REFRESH. */
export type SemaphoreFailedRefreshEvent = SemaphoreEventBase;

/** Payload of {@link SEMAPHORE_EVENTS}.UNEXPECTED_ERROR. */
export type SemaphoreUnexpectedErrorEvent = SemaphoreEventBase & {
  /** `acquire`, `release`, `refresh`, `forceReleaseAll`, `getState` or `waitForRelease`. */
  operation: string;
  /**
   * What the adapter threw, the `cause` of the `SemaphoreBackendError` the caller gets; when the
   * adapter threw a `SemaphoreBackendError` of its own (with a `hint`), that error.
   */
  error: unknown;
};

/** Event names mapped to payloads, for `EventBus<SemaphoreEventMap>`. */
export type SemaphoreEventMap = {
  /** A semaphore took a slot. */
  [SEMAPHORE_EVENTS.ACQUIRED]: SemaphoreAcquiredEvent;
  /** A semaphore released its own slot. */
  [SEMAPHORE_EVENTS.RELEASED]: SemaphoreReleasedEvent;
  /** `forceReleaseAll` ran. */
  [SEMAPHORE_EVENTS.ALL_FORCE_RELEASED]: SemaphoreAllForceReleasedEvent;
  /** An acquire found no slot free. */
  [SEMAPHORE_EVENTS.LIMIT_REACHED]: SemaphoreLimitReachedEvent;
  /** A semaphore restarted the TTL of its slot. */
  [SEMAPHORE_EVENTS.REFRESHED]: SemaphoreRefreshedEvent;
  /** A release by a semaphore that held no slot. */
  [SEMAPHORE_EVENTS.FAILED_RELEASE]: SemaphoreFailedReleaseEvent;
  /** A refresh by a semaphore that held no slot. */
  [SEMAPHORE_EVENTS.FAILED_REFRESH]: SemaphoreFailedRefreshEvent;
  /** The backend failed. */
  [SEMAPHORE_EVENTS.UNEXPECTED_ERROR]: SemaphoreUnexpectedErrorEvent;
};
