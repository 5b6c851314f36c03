import {
  acquireAnswer,
  BOOLEAN_ANSWER,
  isRemainingTime,
  WAIT_ANSWER,
} from "../primitive/adapter-answers.js";
import type {
  SharedLockAdapterReaderSlot,
  SharedLockAdapterState,
  SharedLockReaderAcquireResult,
  SharedLockWriterAcquireResult,
} from "./contracts/shared-lock-adapter.js";

function isCount(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isLimit(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 1;
}

function isSlot(value: unknown): boolean {
  const slot = value as SharedLockAdapterReaderSlot | null;
  return (
    slot === null ||
    (typeof slot === "object" &&
      Number.isSafeInteger(slot.fencingToken) &&
      isRemainingTime(slot.remainingTime))
  );
}

function isState(value: unknown): value is SharedLockAdapterState | null {
  if (value === null) {
    return true;
  }
  if (typeof value !== "object") {
    return false;
  }
  const state = value as SharedLockAdapterState;
  if (state.heldBy === "writer") {
    return (
      typeof state.owner === "string" &&
      Number.isSafeInteger(state.fencingToken) &&
      isRemainingTime(state.remainingTime)
    );
  }
  return (
    state.heldBy === "readers" &&
    isLimit(state.limit) &&
    isCount(state.acquiredSlotsCount) &&
    isSlot(state.slot) &&
    typeof state.writerWaiting === "boolean"
  );
}

/**
 * The shapes of shared lock adapter answers, checked on every call: an adapter written to
 * another contract fails loudly instead of being read as "held".
 */
export const SHARED_LOCK_ANSWERS = {
  acquireWriter: acquireAnswer<SharedLockWriterAcquireResult>(
    '{ acquired: false, blockedBy: "writer", owner: string, remainingTime } or { acquired: false, blockedBy: "readers", acquiredSlotsCount: number, remainingTime } or { acquired: false, blockedBy: "waiters", remainingTime } (remainingTime: TimeSpan | null)',
    (refused) => {
      if (!isRemainingTime(refused.remainingTime)) {
        return false;
      }
      switch (refused.blockedBy) {
        case "writer":
          return typeof refused.owner === "string";
        case "readers":
          return isCount(refused.acquiredSlotsCount);
        case "waiters":
          return true;
        default:
          return false;
      }
    },
  ),
  acquireReader: acquireAnswer<SharedLockReaderAcquireResult>(
    '{ acquired: false, blockedBy: "writer", owner: string, remainingTime } or { acquired: false, blockedBy: "waiters", acquiredSlotsCount: number, remainingTime } or { acquired: false, blockedBy: "limit", limit: number, acquiredSlotsCount: number, remainingTime } (remainingTime: TimeSpan | null)',
    (refused) => {
      if (!isRemainingTime(refused.remainingTime)) {
        return false;
      }
      switch (refused.blockedBy) {
        case "writer":
          return typeof refused.owner === "string";
        case "waiters":
          return isCount(refused.acquiredSlotsCount);
        case "limit":
          return isLimit(refused.limit) && isCount(refused.acquiredSlotsCount);
        default:
          return false;
      }
    },
  ),
  boolean: BOOLEAN_ANSWER,
  getState: {
    expected:
      'null, { heldBy: "writer", owner: string, remainingTime: TimeSpan | null, fencingToken: number } or { heldBy: "readers", limit: number, acquiredSlotsCount: number, slot: null | { remainingTime: TimeSpan | null, fencingToken: number }, writerWaiting: boolean }',
    fits: isState,
  },
  waitForRelease: WAIT_ANSWER,
} as const;
