import type { TimeSpan } from "../../time-span/time-span.js";
import type { ISharedLock } from "./shared-lock.js";
import type { SharedLockReaderBlocker, SharedLockWriterBlocker } from "./shared-lock-adapter.js";

/** The events a shared lock provider dispatches. */
export const SHARED_LOCK_EVENTS = {
  /** A shared lock took the key as its writer (or re-acquired its own live writer hold). */
  WRITER_ACQUIRED: "WRITER_ACQUIRED",
  /** A shared lock released its own writer hold. */
  WRITER_RELEASED: "WRITER_RELEASED",
  /** A writer's acquire was refused: a writer or readers hold the key, or a wait came first. */
  WRITER_UNAVAILABLE: "WRITER_UNAVAILABLE",
  /** A shared lock restarted the TTL of its writer hold. */
  WRITER_REFRESHED: "WRITER_REFRESHED",
  /** `forceReleaseWriter` ran, whether or not a writer was live. */
  WRITER_FORCE_RELEASED: "WRITER_FORCE_RELEASED",
  /** A writer release by a shared lock that was not the key's writer. */
  WRITER_FAILED_RELEASE: "WRITER_FAILED_RELEASE",
  /** A writer refresh by a shared lock that was not the key's writer (in `run*`: it was lost). */
  WRITER_FAILED_REFRESH: "WRITER_FAILED_REFRESH",
  /** A shared lock took a reader slot (or re-acquired its own live one). */
  READER_ACQUIRED: "READER_ACQUIRED",
  /** A shared lock released its own reader slot. */
  READER_RELEASED: "READER_RELEASED",
  /** A reader's acquire was refused: a writer holds or waits, or no slot is free. */
  READER_UNAVAILABLE: "READER_UNAVAILABLE",
  /** A shared lock restarted the TTL of its reader slot. */
  READER_REFRESHED: "READER_REFRESHED",
  /** `forceReleaseAllReaders` ran, whether or not any reader slot was live. */
  READER_ALL_FORCE_RELEASED: "READER_ALL_FORCE_RELEASED",
  /** A reader release by a shared lock that held no reader slot. */
  READER_FAILED_RELEASE: "READER_FAILED_RELEASE",
  /** A reader refresh by a shared lock that held no reader slot (in `run*`: it was lost). */
  READER_FAILED_REFRESH: "READER_FAILED_REFRESH",
  /** `forceRelease` (writer and readers) ran, whether or not anyone held the key. */
  FORCE_RELEASED: "FORCE_RELEASED",
  /** The backend failed; the error is also thrown to the caller. */
  UNEXPECTED_ERROR: "UNEXPECTED_ERROR",
} as const;

/** One of the {@link SHARED_LOCK_EVENTS} names. */
export type SharedLockEventName = (typeof SHARED_LOCK_EVENTS)[keyof typeof SHARED_LOCK_EVENTS];

/** What every shared lock event carries: plain data, plus the shared lock itself. */
export type SharedLockEventBase = {
  /**
   * The shared lock the operation ran on; it works, even after crossing a Redis event bus. A
   * listener can act as it: give the event bus only to code you trust with the shared locks.
   */
  sharedLock: ISharedLock;
  /** The key as the caller wrote it. */
  key: string;
  /** The public id of the shared lock (`sharedLock.id`). */
  lockId: string;
  /** When the operation completed, by this process's clock. */
  at: Date;
};

/** Payload of {@link SHARED_LOCK_EVENTS}.WRITER_ACQUIRED. */
export type SharedLockWriterAcquiredEvent = SharedLockEventBase & {
  /** The token of the writer hold just taken (unchanged by a re-acquire of a live one). */
  fencingToken: number;
  /** `null`: the hold never expires. */
  ttl: TimeSpan | null;
};

/** Payload of {@link SHARED_LOCK_EVENTS}.WRITER_UNAVAILABLE. */
export type SharedLockWriterUnavailableEvent = SharedLockEventBase & {
  /** What kept the writer out, as the backend answered. */
  blockedBy: SharedLockWriterBlocker;
  /** The public id of the writer holding the key; `null` unless `blockedBy` is `"writer"`. */
  owner: string | null;
  /** The live reader slots; `null` unless `blockedBy` is `"readers"`. */
  acquiredSlotsCount: number | null;
  /** Until what blocks it may end without a signal, by the backend's clock; `null`: unknown or never. */
  remainingTime: TimeSpan | null;
};

/** Payload of {@link SHARED_LOCK_EVENTS}.READER_ACQUIRED. */
export type SharedLockReaderAcquiredEvent = SharedLockEventBase & {
  /** The token of the reader slot just taken (unchanged by a re-acquire of a live one). */
  fencingToken: number;
  /** `null`: the slot never expires. */
  ttl: TimeSpan | null;
  /** The shared lock's own readers' limit. */
  limit: number;
};

/** Payload of {@link SHARED_LOCK_EVENTS}.READER_UNAVAILABLE. */
export type SharedLockReaderUnavailableEvent = SharedLockEventBase & {
  /** What kept the reader out, as the backend answered. */
  blockedBy: SharedLockReaderBlocker;
  /** The public id of the writer holding the key; `null` unless `blockedBy` is `"writer"`. */
  owner: string | null;
  /** The limit in force; `null` unless `blockedBy` is `"limit"`. */
  limit: number | null;
  /** The live reader slots; `null` when `blockedBy` is `"writer"`. */
  acquiredSlotsCount: number | null;
  /** Until what blocks it may end without a signal, by the backend's clock; `null`: unknown or never. */
  remainingTime: TimeSpan | null;
};

/** Payload of {@link SHARED_LOCK_EVENTS}.WRITER_RELEASED. */
export type SharedLockWriterReleasedEvent = SharedLockEventBase;

/** Payload of {@link SHARED_LOCK_EVENTS}.READER_RELEASED. */
export type SharedLockReaderReleasedEvent = SharedLockEventBase;

/** Payload of {@link SHARED_LOCK_EVENTS}.WRITER_REFRESHED. */
export type SharedLockWriterRefreshedEvent = SharedLockEventBase & {
  /** The TTL the writer hold restarted with. */
  ttl: TimeSpan;
};

/** Payload of {@link SHARED_LOCK_EVENTS}.READER_REFRESHED. */
export type SharedLockReaderRefreshedEvent = SharedLockEventBase & {
  /** The TTL the reader slot restarted with. */
  ttl: TimeSpan;
};

/** Payload of {@link SHARED_LOCK_EVENTS}.WRITER_FORCE_RELEASED. */
export type SharedLockWriterForceReleasedEvent = SharedLockEventBase & {
  /** Whether a live writer hold was released. */
  hasReleased: boolean;
};

/** Payload of {@link SHARED_LOCK_EVENTS}.READER_ALL_FORCE_RELEASED. */
export type SharedLockReaderAllForceReleasedEvent = SharedLockEventBase & {
  /** Whether any live reader slot was released. */
  hasReleased: boolean;
};

/** Payload of {@link SHARED_LOCK_EVENTS}.FORCE_RELEASED. */
export type SharedLockForceReleasedEvent = SharedLockEventBase & {
  /** Whether anyone (the writer or a reader) held the key. */
  hasReleased: boolean;
};

/** Payload of {@link SHARED_LOCK_EVENTS}.WRITER_FAILED_RELEASE. */
export type SharedLockWriterFailedReleaseEvent = SharedLockEventBase;

/** Payload of {@link SHARED_LOCK_EVENTS}.WRITER_FAILED_REFRESH. */
export type SharedLockWriterFailedRefreshEvent = SharedLockEventBase;

/** Payload of {@link SHARED_LOCK_EVENTS}.READER_FAILED_RELEASE. */
export type SharedLockReaderFailedReleaseEvent = SharedLockEventBase;

/** Payload of {@link SHARED_LOCK_EVENTS}.READER_FAILED_REFRESH. */
export type SharedLockReaderFailedRefreshEvent = SharedLockEventBase;

/** Payload of {@link SHARED_LOCK_EVENTS}.UNEXPECTED_ERROR. */
export type SharedLockUnexpectedErrorEvent = SharedLockEventBase & {
  /**
   * The adapter method that failed: `acquireWriter`, `releaseReader`, `forceRelease`,
   * `getState`, `waitForRelease`, …
   */
  operation: string;
  /**
   * What the adapter threw, the `cause` of the `SharedLockBackendError` the caller gets; when
   * the adapter threw a `SharedLockBackendError` of its own (with a `hint`), that error.
   */
  error: unknown;
};

/** Event names mapped to payloads, for `EventBus<SharedLockEventMap>`. */
export type SharedLockEventMap = {
  /** A shared lock took the key as its writer. */
  [SHARED_LOCK_EVENTS.WRITER_ACQUIRED]: SharedLockWriterAcquiredEvent;
  /** A shared lock released its own writer hold. */
  [SHARED_LOCK_EVENTS.WRITER_RELEASED]: SharedLockWriterReleasedEvent;
  /** A writer's acquire was refused. */
  [SHARED_LOCK_EVENTS.WRITER_UNAVAILABLE]: SharedLockWriterUnavailableEvent;
  /** A shared lock restarted the TTL of its writer hold. */
  [SHARED_LOCK_EVENTS.WRITER_REFRESHED]: SharedLockWriterRefreshedEvent;
  /** `forceReleaseWriter` ran. */
  [SHARED_LOCK_EVENTS.WRITER_FORCE_RELEASED]: SharedLockWriterForceReleasedEvent;
  /** A writer release by a shared lock that was not the writer. */
  [SHARED_LOCK_EVENTS.WRITER_FAILED_RELEASE]: SharedLockWriterFailedReleaseEvent;
  /** A writer refresh by a shared lock that was not the writer. */
  [SHARED_LOCK_EVENTS.WRITER_FAILED_REFRESH]: SharedLockWriterFailedRefreshEvent;
  /** A shared lock took a reader slot. */
  [SHARED_LOCK_EVENTS.READER_ACQUIRED]: SharedLockReaderAcquiredEvent;
  /** A shared lock released its own reader slot. */
  [SHARED_LOCK_EVENTS.READER_RELEASED]: SharedLockReaderReleasedEvent;
  /** A reader's acquire was refused. */
  [SHARED_LOCK_EVENTS.READER_UNAVAILABLE]: SharedLockReaderUnavailableEvent;
  /** A shared lock restarted the TTL of its reader slot. */
  [SHARED_LOCK_EVENTS.READER_REFRESHED]: SharedLockReaderRefreshedEvent;
  /** `forceReleaseAllReaders` ran. */
  [SHARED_LOCK_EVENTS.READER_ALL_FORCE_RELEASED]: SharedLockReaderAllForceReleasedEvent;
  /** A reader release by a shared lock that held no reader slot. */
  [SHARED_LOCK_EVENTS.READER_FAILED_RELEASE]: SharedLockReaderFailedReleaseEvent;
  /** A reader refresh by a shared lock that held no reader slot. */
  [SHARED_LOCK_EVENTS.READER_FAILED_REFRESH]: SharedLockReaderFailedRefreshEvent;
  /** `forceRelease` ran. */
  [SHARED_LOCK_EVENTS.FORCE_RELEASED]: SharedLockForceReleasedEvent;
  /** The backend failed. */
  [SHARED_LOCK_EVENTS.UNEXPECTED_ERROR]: SharedLockUnexpectedErrorEvent;
};
