import type { TimeSpan } from "../../time-span/time-span.js";

/** The four states `ISemaphore.getState()` reports. */
export const SEMAPHORE_STATE = {
  /** No slot of the key is live: never acquired, all released, or their TTLs ran out. */
  EXPIRED: "EXPIRED",
  /** This semaphore (its slot id) holds a live slot, whether or not others are free. */
  ACQUIRED: "ACQUIRED",
  /** This semaphore holds no slot, some are held, and one is free for it. */
  UNACQUIRED: "UNACQUIRED",
  /** This semaphore holds no slot, and none is free for it. */
  LIMIT_REACHED: "LIMIT_REACHED",
} as const;

/** One of the {@link SEMAPHORE_STATE} values. */
export type SemaphoreStateType = (typeof SEMAPHORE_STATE)[keyof typeof SEMAPHORE_STATE];

/** No slot of the key is live. */
export type ISemaphoreExpiredState = {
  /** Tells the states apart. */
  type: typeof SEMAPHORE_STATE.EXPIRED;
};

/** This semaphore holds a live slot. */
export type ISemaphoreAcquiredState = {
  /** Tells the states apart. */
  type: typeof SEMAPHORE_STATE.ACQUIRED;
  /** The limit in force for this semaphore: its own, or a live slot's smaller one. */
  limit: number;
  /** Of this slot, by the backend's clock; `null`: it never expires. */
  remainingTime: TimeSpan | null;
  /** The fencing token of this slot. */
  fencingToken: number;
  /** How many more slots may be taken (`limit` less `acquiredSlotsCount`, at least 0). */
  freeSlotsCount: number;
  /** The live slots of the key, this one included. */
  acquiredSlotsCount: number;
};

/** This semaphore holds no slot, and one is free for it. */
export type ISemaphoreUnacquiredState = {
  /** Tells the states apart. */
  type: typeof SEMAPHORE_STATE.UNACQUIRED;
  /** The limit in force for this semaphore: its own, or a live slot's smaller one. */
  limit: number;
  /** How many more slots may be taken (at least 1). */
  freeSlotsCount: number;
  /** The live slots of the key. */
  acquiredSlotsCount: number;
};

/** This semaphore holds no slot, and none is free for it. */
export type ISemaphoreLimitReachedState = {
  /** Tells the states apart. */
  type: typeof SEMAPHORE_STATE.LIMIT_REACHED;
  /** The limit in force for this semaphore: its own, or a live slot's smaller one. */
  limit: number;
  /** The live slots of the key (at least `limit`). */
  acquiredSlotsCount: number;
};

/**
 * What `ISemaphore.getState()` resolves to; narrow it on `type`.
 *
 * @example
 * const state = await semaphore.getState();
 * if (state.type === SEMAPHORE_STATE.LIMIT_REACHED) console.log(`${state.acquiredSlotsCount} busy`);
 */
export type ISemaphoreState =
  | ISemaphoreExpiredState
  | ISemaphoreAcquiredState
  | ISemaphoreUnacquiredState
  | ISemaphoreLimitReachedState;
