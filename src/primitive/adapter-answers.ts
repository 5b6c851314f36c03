// What every primitive checks of its adapter's answers (a `typeof` or two, no schema): the
// pieces its own answer shapes are made of (see `lock-adapter-answers.ts`).

/** One answer shape: what the contract expects (as text) and the check. */
export type AnswerCheck<T> = {
  readonly expected: string;
  readonly fits: (value: unknown) => value is T;
};

/** The type an answer check lets through. */
export type AnswerOf<TAnswer> = TAnswer extends AnswerCheck<infer T> ? T : never;

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
