import {
  type AnswerOf as AnswerOfCheck,
  BOOLEAN_ANSWER,
  isHandOff,
  isRemainingTime,
} from "../primitive/adapter-answers.js";
import type {
  LockAcquireResult,
  LockAdapterState,
  LockWaitResult,
} from "./contracts/lock-adapter.js";

/**
 * The shapes of adapter answers, checked on every call (a `typeof` or two, no schema): an
 * adapter written to another contract (daiso-core's `acquire` answers a boolean) fails loudly
 * instead of being read as "held by someone else".
 */
export const ANSWERS = {
  acquire: {
    expected:
      "{ acquired: true, fencingToken: number } or { acquired: false, owner: string, remainingTime: TimeSpan | null }",
    fits: (value: unknown): value is LockAcquireResult => {
      const answer = value as LockAcquireResult | null | undefined;
      return answer?.acquired === true
        ? Number.isSafeInteger(answer.fencingToken)
        : answer?.acquired === false &&
            typeof answer.owner === "string" &&
            isRemainingTime(answer.remainingTime);
    },
  },
  boolean: BOOLEAN_ANSWER,
  getState: {
    expected: "null or { owner: string, remainingTime: TimeSpan | null, fencingToken: number }",
    fits: (value: unknown): value is LockAdapterState | null => {
      const state = value as LockAdapterState | null;
      return (
        state === null ||
        (typeof state === "object" &&
          typeof state.owner === "string" &&
          Number.isSafeInteger(state.fencingToken) &&
          isRemainingTime(state.remainingTime))
      );
    },
  },
  waitForRelease: {
    expected: "undefined, or { acquired: true, fencingToken: number } for a hand-off",
    fits: (value: unknown): value is LockWaitResult => value === undefined || isHandOff(value),
  },
} as const;

export type Answer = (typeof ANSWERS)[keyof typeof ANSWERS];
export type AnswerOf<TAnswer extends Answer> = AnswerOfCheck<TAnswer>;
