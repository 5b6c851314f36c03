import type { TimeSpan } from "../../time-span/time-span.js";

/** The three states `ILock.getState()` reports. */
export const LOCK_STATE = {
  /** Nobody holds the key: never acquired, released, or its TTL ran out. */
  EXPIRED: "EXPIRED",
  /** Another owner holds the key. */
  UNAVAILABLE: "UNAVAILABLE",
  /** This lock (its owner) holds the key. */
  ACQUIRED: "ACQUIRED",
} as const;

/** One of the {@link LOCK_STATE} values. */
export type LockStateType = (typeof LOCK_STATE)[keyof typeof LOCK_STATE];

/** Nobody holds the key. */
export type ILockExpiredState = {
  /** Tells the states apart. */
  type: typeof LOCK_STATE.EXPIRED;
};

/** Another lock holds the key. */
export type ILockUnavailableState = {
  /** Tells the states apart. */
  type: typeof LOCK_STATE.UNAVAILABLE;
  /** The public id of the lock that holds the key (never a generated lock's proof). */
  owner: string;
  /** How long the holder keeps it unless it refreshes or releases; `null`: it never expires. */
  remainingTime: TimeSpan | null;
};

/** This lock holds the key. */
export type ILockAcquiredState = {
  /** Tells the states apart. */
  type: typeof LOCK_STATE.ACQUIRED;
  /** Measured by the backend's clock; `null`: the hold never expires. */
  remainingTime: TimeSpan | null;
  /** The fencing token of the current hold. */
  fencingToken: number;
};

/**
 * What `ILock.getState()` resolves to; narrow it on `type`.
 *
 * @example
 * const state = await lock.getState();
 * if (state.type === LOCK_STATE.UNAVAILABLE) console.log(`held by ${state.owner}`);
 */
export type ILockState = ILockExpiredState | ILockUnavailableState | ILockAcquiredState;
