import {
  acquireAnswer,
  BOOLEAN_ANSWER,
  isRemainingTime,
  WAIT_ANSWER,
} from "../primitive/adapter-answers.js";
import type {
  SemaphoreAcquireResult,
  SemaphoreAdapterState,
} from "./contracts/semaphore-adapter.js";

function isCount(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isSlot(value: unknown): boolean {
  const slot = value as SemaphoreAdapterState["slot"];
  return (
    slot === null ||
    (typeof slot === "object" &&
      Number.isSafeInteger(slot.fencingToken) &&
      isRemainingTime(slot.remainingTime))
  );
}

/**
 * The shapes of semaphore adapter answers, checked on every call: an adapter written to
 * another contract fails loudly instead of being read as "no slot free".
 */
export const SEMAPHORE_ANSWERS = {
  acquire: acquireAnswer<SemaphoreAcquireResult>(
    "{ acquired: false, limit: number, acquiredSlotsCount: number, remainingTime: TimeSpan | null }",
    (refused) =>
      isCount(refused.limit) &&
      isCount(refused.acquiredSlotsCount) &&
      isRemainingTime(refused.remainingTime),
  ),
  boolean: BOOLEAN_ANSWER,
  getState: {
    expected:
      "null or { limit: number, acquiredSlotsCount: number, slot: null | { remainingTime: TimeSpan | null, fencingToken: number } }",
    fits: (value: unknown): value is SemaphoreAdapterState | null => {
      const state = value as SemaphoreAdapterState | null;
      return (
        state === null ||
        (typeof state === "object" &&
          isCount(state.limit) &&
          isCount(state.acquiredSlotsCount) &&
          isSlot(state.slot))
      );
    },
  },
  waitForRelease: WAIT_ANSWER,
} as const;
