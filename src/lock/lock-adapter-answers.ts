import {
  acquireAnswer,
  BOOLEAN_ANSWER,
  isRemainingTime,
  WAIT_ANSWER,
} from "../primitive/adapter-answers.js";
import type { LockAcquireResult, LockAdapterState } from "./contracts/lock-adapter.js";

/**
 * The shapes of adapter answers, checked on every call (a `typeof` or two, no schema): an
 * adapter written to another contract (daiso-core's `acquire` answers a boolean) fails loudly
 * instead of being read as "held by someone else".
 */
export const ANSWERS = {
  acquire: acquireAnswer<LockAcquireResult>(
    "{ acquired: false, owner: string, remainingTime: TimeSpan | null }",
    (refused) => typeof refused.owner === "string" && isRemainingTime(refused.remainingTime),
  ),
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
  waitForRelease: WAIT_ANSWER,
} as const;
