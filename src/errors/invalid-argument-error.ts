import { createErrorGuard, HaspError } from "./hasp-error.js";

/**
 * An issue as zod reports it: where, what, and for a value no option of a union took, each
 * option's issues.
 */
type ZodIssue = {
  readonly code: string;
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly errors?: ReadonlyArray<readonly ZodIssue[]>;
};

/** One problem: the path to the offending field (empty: the value itself), and what is wrong. */
export type Problem = { readonly path: readonly PropertyKey[]; readonly message: string };

/**
 * A setting or argument was rejected before any work started. The message names the
 * offending field (`retry settings: maxAttempts: must be at least 1`); `issues` keeps each
 * problem as a path and a message.
 */
export class InvalidArgumentError extends HaspError {
  override name = "InvalidArgumentError" as const;

  constructor(
    message: string,
    /** Each problem found, in order; empty when the error was built without details. */
    readonly issues: ReadonlyArray<{
      /** The offending field, dotted (`waitForReplicas.count`); `(value)`: the input itself. */
      readonly path: string;
      /** What is wrong with it (`must be at least 1`). */
      readonly message: string;
    }> = [],
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /**
   * Turns a zod failure into one error whose message names every offending field, for your own
   * zod schemas (hasp's are valibot's and do not need it).
   */
  static fromZodError(
    subject: string,
    error: { readonly issues: readonly ZodIssue[] },
  ): InvalidArgumentError {
    return invalidArgumentError(subject, error.issues.flatMap(unionBranchIssues), error);
  }
}

/**
 * The error of `subject`'s problems, in order: `Invalid ${subject}: path: message; …`, with each
 * path dotted (`waitForReplicas.count`); a problem of the value itself has no path in the message
 * and `(value)` in `issues`.
 */
export function invalidArgumentError(
  subject: string,
  problems: readonly Problem[],
  cause: unknown,
): InvalidArgumentError {
  const shown = problems.map((problem) => ({
    path: problem.path.length === 0 ? undefined : problem.path.map(String).join("."),
    message: problem.message,
  }));
  const issues = shown.map(({ path, message }) => ({ path: path ?? "(value)", message }));
  // The value itself needs no path in the message: `Invalid refresh ttl: must be positive`.
  const details = shown
    .map(({ path, message }) => (path === undefined ? message : `${path}: ${message}`))
    .join("; ");
  return new InvalidArgumentError(`Invalid ${subject}: ${details}`, issues, { cause });
}

/**
 * A value none of a union's options took: when it has the shape of exactly one option (all that
 * option's problems lie in its fields), that option's problems, which name the field
 * (`autoRefresh.interval: must be a TimeSpan of finite length`); else the issue as it is.
 */
function unionBranchIssues(issue: ZodIssue): readonly ZodIssue[] {
  if (issue.code !== "invalid_union" || issue.errors === undefined) {
    return [issue];
  }
  const shaped = issue.errors.filter(
    (problems) => problems.length > 0 && problems.every((problem) => problem.path.length > 0),
  );
  const [only] = shaped;
  if (shaped.length !== 1 || only === undefined) {
    return [issue];
  }
  return only.map((problem) => ({ ...problem, path: [...issue.path, ...problem.path] }));
}

/** Whether `value` is an {@link InvalidArgumentError}, from this or another copy of hasp. */
export const isInvalidArgumentError = createErrorGuard(
  InvalidArgumentError,
  "InvalidArgumentError",
);
