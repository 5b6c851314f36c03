import type { TimeSpan } from "../../time-span/time-span.js";

/** The six states `ISharedLock.getState()` reports. */
export const SHARED_LOCK_STATE = {
  /** Neither a writer nor a reader holds the key: never acquired, all released, or expired. */
  EXPIRED: "EXPIRED",
  /** This shared lock (its lock id) holds the key as its writer. */
  WRITER_ACQUIRED: "WRITER_ACQUIRED",
  /** Another lock id holds the key as its writer: no reader and no other writer can enter. */
  WRITER_UNAVAILABLE: "WRITER_UNAVAILABLE",
  /** Readers hold the key, and this shared lock holds one of their slots. */
  READER_ACQUIRED: "READER_ACQUIRED",
  /** Readers hold the key, this shared lock holds no slot, and none is free for it. */
  READER_LIMIT_REACHED: "READER_LIMIT_REACHED",
  /** Readers hold the key, this shared lock holds no slot, and one is free for it. */
  READER_UNACQUIRED: "READER_UNACQUIRED",
} as const;

/** One of the {@link SHARED_LOCK_STATE} values. */
export type SharedLockStateType = (typeof SHARED_LOCK_STATE)[keyof typeof SHARED_LOCK_STATE];

/** Nobody holds the key (a writer may be waiting for it). */
export type ISharedLockExpiredState = {
  /** Tells the states apart. */
  type: typeof SHARED_LOCK_STATE.EXPIRED;
};

/** This shared lock holds the key as its writer. */
export type ISharedLockWriterAcquiredState = {
  /** Tells the states apart. */
  type: typeof SHARED_LOCK_STATE.WRITER_ACQUIRED;
  /** Measured by the backend's clock; `null`: the writer's hold never expires. */
  remainingTime: TimeSpan | null;
  /** The fencing token of the writer's hold: greater than every token issued for the key before it. */
  fencingToken: number;
};

/** Another shared lock holds the key as its writer. */
export type ISharedLockWriterUnavailableState = {
  /** Tells the states apart. */
  type: typeof SHARED_LOCK_STATE.WRITER_UNAVAILABLE;
  /** The public id of the writer (never a generated lock's proof). */
  owner: string;
  /** How long the writer keeps it unless it refreshes or releases; `null`: it never expires. */
  remainingTime: TimeSpan | null;
};

/** What every reader state tells of the readers' side (a semaphore's counts). */
export type ISharedLockReaderCounts = {
  /** The readers' limit in force for this shared lock: its own, or a live reader's smaller one. */
  limit: number;
  /** The live reader slots of the key (at least 1). */
  acquiredSlotsCount: number;
  /**
   * Whether a writer waits for the readers to leave: while it does, no new reader enters (its
   * acquire is refused, or queued behind the writer), whatever `freeSlotsCount` says. Readers
   * already holding keep their slots and can refresh them.
   */
  writerWaiting: boolean;
};

/** This shared lock holds a reader slot of the key. */
export type ISharedLockReaderAcquiredState = ISharedLockReaderCounts & {
  /** Tells the states apart. */
  type: typeof SHARED_LOCK_STATE.READER_ACQUIRED;
  /** Of this reader slot, by the backend's clock; `null`: it never expires. */
  remainingTime: TimeSpan | null;
  /** The fencing token of this reader slot. */
  fencingToken: number;
  /** How many more reader slots the limit allows (`limit` less `acquiredSlotsCount`, at least 0). */
  freeSlotsCount: number;
};

/** Readers hold the key, this shared lock holds no slot, and the limit leaves one free for it. */
export type ISharedLockReaderUnacquiredState = ISharedLockReaderCounts & {
  /** Tells the states apart. */
  type: typeof SHARED_LOCK_STATE.READER_UNACQUIRED;
  /**
   * How many more reader slots the limit allows (at least 1); a new reader still waits while
   * `writerWaiting`.
   */
  freeSlotsCount: number;
};

/** Readers hold the key, this shared lock holds no slot, and none is free for it. */
export type ISharedLockReaderLimitReachedState = ISharedLockReaderCounts & {
  /** Tells the states apart. */
  type: typeof SHARED_LOCK_STATE.READER_LIMIT_REACHED;
};

/**
 * What `ISharedLock.getState()` resolves to; narrow it on `type`. A writer and readers never
 * hold the key together, so exactly one side (or none: `EXPIRED`) is described.
 *
 * @example
 * const state = await sharedLock.getState();
 * if (state.type === SHARED_LOCK_STATE.WRITER_UNAVAILABLE) console.log(`written by ${state.owner}`);
 */
export type ISharedLockState =
  | ISharedLockExpiredState
  | ISharedLockWriterAcquiredState
  | ISharedLockWriterUnavailableState
  | ISharedLockReaderAcquiredState
  | ISharedLockReaderUnacquiredState
  | ISharedLockReaderLimitReachedState;
