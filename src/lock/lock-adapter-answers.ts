import type {
  LockAcquireResult,
  LockAdapterState,
  LockHandOff,
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
  boolean: {
    expected: "a boolean",
    fits: (value: unknown): value is boolean => typeof value === "boolean",
  },
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
    fits: (value: unknown): value is LockWaitResult => {
      const handOff = value as LockHandOff | undefined;
      return (
        handOff === undefined ||
        (handOff?.acquired === true &&
          Number.isSafeInteger(handOff.fencingToken) &&
          (handOff.remainingTime === undefined || isRemainingTime(handOff.remainingTime)))
      );
    },
  },
} as const;

export type Answer = (typeof ANSWERS)[keyof typeof ANSWERS];
export type AnswerOf<TAnswer extends Answer> = TAnswer["fits"] extends (
  value: unknown,
) => value is infer T
  ? T
  : never;

function isRemainingTime(value: unknown): boolean {
  return (
    value === null ||
    typeof (value as { toMilliseconds?: unknown } | undefined)?.toMilliseconds === "function"
  );
}

/**
 * Whether an answer of the wrong shape to `operation` may mean that the adapter took the key
 * (daiso-core's `acquire` answers `true` once it did): the hold must then be let go.
 */
export function mayHaveAcquired(operation: string, value: unknown): boolean {
  return (
    (operation === "acquire" || operation === "waitForRelease") &&
    (value === true || (value as { acquired?: unknown } | null | undefined)?.acquired === true)
  );
}
