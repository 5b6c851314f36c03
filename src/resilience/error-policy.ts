/** An error class: it matches its instances, subclasses' included. */
// biome-ignore lint/suspicious/noExplicitAny: constructor arguments are irrelevant to matching.
export type ErrorClass = abstract new (...args: any[]) => Error;

/** Decides whether `error` counts; it gets anything thrown, not only `Error`s. */
export type ErrorPredicate = (error: unknown) => boolean;

/** Which errors count: a class (with subclasses), a list of classes, or a predicate. */
export type ErrorMatcher = ErrorClass | readonly ErrorClass[] | ErrorPredicate;

/**
 * Which outcomes count as failures for `retry` and `fallback`.
 * - an {@link ErrorMatcher}: the errors it matches; other errors pass through untouched.
 * - `{ treatFalseAsError: true, errors? }`: a `false` result too, plus the errors matched by
 *   `errors` (every error when omitted).
 *
 * Without a policy every error counts. An error that is the reason of the run's aborted
 * signal never counts: the caller has given up.
 */
export type ErrorPolicy =
  | ErrorMatcher
  | {
      /** A `false` result counts as a failure. */
      treatFalseAsError: true;
      /**
       * The errors that count as well.
       * @default every error
       */
      errors?: ErrorMatcher;
    };

function isErrorClass(fn: ErrorClass | ErrorPredicate): fn is ErrorClass {
  return fn === Error || fn.prototype instanceof Error;
}

function matches(matcher: ErrorMatcher | undefined, error: unknown): boolean {
  if (matcher === undefined) {
    return true;
  }
  if (Array.isArray(matcher)) {
    return matcher.some((errorClass: ErrorClass) => error instanceof errorClass);
  }
  const fn = matcher as ErrorClass | ErrorPredicate;
  return isErrorClass(fn) ? error instanceof fn : fn(error);
}

/** The compiled form of an {@link ErrorPolicy}. */
export type FailureTest = {
  isFailedError(error: unknown): boolean;
  isFailedValue(value: unknown): boolean;
};

export function toFailureTest(policy: ErrorPolicy | undefined): FailureTest {
  if (typeof policy === "object" && policy !== null && !Array.isArray(policy)) {
    const { errors } = policy as { errors?: ErrorMatcher };
    return {
      isFailedError: (error) => matches(errors, error),
      isFailedValue: (value) => value === false,
    };
  }
  return {
    isFailedError: (error) => matches(policy as ErrorMatcher | undefined, error),
    isFailedValue: () => false,
  };
}
