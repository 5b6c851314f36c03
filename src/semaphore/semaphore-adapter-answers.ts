import {
  type AnswerOf as AnswerOfCheck,
  BOOLEAN_ANSWER,
  isHandOff,
  isRemainingTime,
} from "../primitive/adapter-answers.js";
import type {
  SemaphoreAcquireResult,
  SemaphoreAdapterState,
  SemaphoreWaitResult,
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
  acquire: {
    expected:
      "{ acquired: true, fencingToken: number } or { acquired: false, limit: number, acquiredSlotsCount: number, remainingTime: TimeSpan | null }",
    fits: (value: unknown): value is SemaphoreAcquireResult => {
      const answer = value as SemaphoreAcquireResult | null | undefined;
      return answer?.acquired === true
        ? Number.isSafeInteger(answer.fencingToken)
        : answer?.acquired === false &&
            isCount(answer.limit) &&
            isCount(answer.acquiredSlotsCount) &&
            isRemainingTime(answer.remainingTime);
    },
  },
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
  waitForRelease: {
    expected: "undefined, or { acquired: true, fencingToken: number } for a hand-off",
    fits: (value: unknown): value is SemaphoreWaitResult => value === undefined || isHandOff(value),
  },
} as const;

export type SemaphoreAnswer = (typeof SEMAPHORE_ANSWERS)[keyof typeof SEMAPHORE_ANSWERS];
export type SemaphoreAnswerOf<TAnswer extends SemaphoreAnswer> = AnswerOfCheck<TAnswer>;
