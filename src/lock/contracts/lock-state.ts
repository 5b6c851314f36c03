import type { TimeSpan } from "../../time-span/time-span.js";

/** The three states `ILock.getState()` reports. */
export const LOCK_STATE = {
  /** Nobody holds the key: never acquired, released, or its TTL ran out. */
  EXPIRED: "EXPIRED",
  /** Another owner holds the key. */
  UNAVAILABLE: "UNAVAILABLE",
  /** This lock (its id) holds the key. */
  ACQUIRED: "ACQUIRED",
} as const;

export type LockStateType = (typeof LOCK_STATE)[keyof typeof LOCK_STATE];

export type ILockExpiredState = { type: typeof LOCK_STATE.EXPIRED };

export type ILockUnavailableState = {
  type: typeof LOCK_STATE.UNAVAILABLE;
  /** The id of the lock that holds the key. */
  owner: string;
  /** How long the holder keeps it unless it refreshes or releases; `null`: it never expires. */
  remainingTime: TimeSpan | null;
};

export type ILockAcquiredState = {
  type: typeof LOCK_STATE.ACQUIRED;
  /** Measured by the backend's clock; `null`: the hold never expires. */
  remainingTime: TimeSpan | null;
  /** The fencing token of the current hold. */
  fencingToken: number;
};

export type ILockState = ILockExpiredState | ILockUnavailableState | ILockAcquiredState;
