// What every primitive checks of its adapter's answers (a `typeof` or two, no schema): the
// pieces its own answer shapes are made of (see `lock-adapter-answers.ts`).

import type { TimeSpan } from "../time-span/time-span.js";

/** One answer shape: what the contract expects (as text) and the check. */
export type AnswerCheck<T> = {
  readonly expected: string;
  readonly fits: (value: unknown) => value is T;
};

/** Answers of release, forceRelease, refresh and their kin. */
export const BOOLEAN_ANSWER = {
  expected: "a boolean",
  fits: (value: unknown): value is boolean => typeof value === "boolean",
} as const;

/** A `TimeSpan` (anything with `toMilliseconds()`) or `null`. */
export function isRemainingTime(value: unknown): boolean {
  return (
    value === null ||
    typeof (value as { toMilliseconds?: unknown } | undefined)?.toMilliseconds === "function"
  );
}

/** A wait's hand-off: `{ acquired: true, fencingToken, remainingTime? }`. */
export function isHandOff(value: unknown): boolean {
  const handOff = value as
    | { acquired?: unknown; fencingToken?: unknown; remainingTime?: unknown }
    | undefined;
  return (
    handOff?.acquired === true &&
    Number.isSafeInteger(handOff.fencingToken) &&
    (handOff.remainingTime === undefined || isRemainingTime(handOff.remainingTime))
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

/** A wait's answer: `undefined`, or a hand-off (see `isHandOff`). */
export const WAIT_ANSWER = {
  expected: "undefined, or { acquired: true, fencingToken: number } for a hand-off",
  fits: (
    value: unknown,
  ): value is { acquired: true; fencingToken: number; remainingTime?: TimeSpan } | undefined =>
    value === undefined || isHandOff(value),
} as const;

/**
 * An acquire's answer: `{ acquired: true, fencingToken }`, or a refusal `refused` knows (what the
 * primitive's refusal carries, as `expected` says).
 */
export function acquireAnswer<TResult extends { acquired: boolean }>(
  expectedRefusal: string,
  refused: (answer: Extract<TResult, { acquired: false }>) => boolean,
): AnswerCheck<TResult> {
  return {
    expected: `{ acquired: true, fencingToken: number } or ${expectedRefusal}`,
    fits: (value: unknown): value is TResult => {
      const answer = value as { acquired?: unknown; fencingToken?: unknown } | null | undefined;
      return answer?.acquired === true
        ? Number.isSafeInteger(answer.fencingToken)
        : answer?.acquired === false && refused(answer as Extract<TResult, { acquired: false }>);
    },
  };
}
