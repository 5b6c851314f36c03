import { createErrorGuard, HaspError } from "./hasp-error.js";

/**
 * An issue as zod reports it (hasp's own schemas report the same shape): where, what, and for a
 * value no option of a union took, each option's issues.
 */
type Issue = {
  readonly code: string;
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly errors?: ReadonlyArray<readonly Issue[]>;
};

/** What `parseSettings` takes: a zod schema, or one of hasp's (src/schema/schema.ts). */
type SettingsSchema<T> = {
  safeParse(
    input: unknown,
  ):
    | { readonly success: true; readonly data: T }
    | { readonly success: false; readonly error: { readonly issues: readonly Issue[] } };
};

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
   * Turns a zod failure (or hasp's schemas' own, of the same shape) into one error whose message
   * names every offending field.
   */
  static fromZodError(
    subject: string,
    error: { readonly issues: readonly Issue[] },
  ): InvalidArgumentError {
    const issues = error.issues.flatMap(unionBranchIssues).map((issue) => ({
      path: issue.path.length === 0 ? "(value)" : issue.path.map(String).join("."),
      message: issue.message,
    }));
    const details = issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ");
    return new InvalidArgumentError(`Invalid ${subject}: ${details}`, issues, { cause: error });
  }
}

/**
 * A value none of a union's options took: when it has the shape of exactly one option (all that
 * option's problems lie in its fields), that option's problems, which name the field
 * (`autoRefresh.interval: must be a TimeSpan of finite length`); else the issue as it is.
 */
function unionBranchIssues(issue: Issue): readonly Issue[] {
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

/**
 * Parses `input` with `schema`, throwing an {@link InvalidArgumentError} that names the field
 * on failure. A resulting object is frozen: settings are read once and never change afterwards.
 */
export function parseSettings<T>(subject: string, schema: SettingsSchema<T>, input: unknown): T {
  // The common call passes no settings: parse those once per schema (the result is frozen).
  const isEmpty =
    input === undefined ||
    (typeof input === "object" &&
      input !== null &&
      Object.getPrototypeOf(input) === Object.prototype &&
      Object.keys(input).length === 0);
  if (isEmpty) {
    const cache = input === undefined ? parsedUndefined : parsedEmpty;
    if (cache.has(schema)) {
      return cache.get(schema) as T;
    }
    const value = parseSettingsOnce(subject, schema, input);
    cache.set(schema, value);
    return value;
  }
  return parseSettingsOnce(subject, schema, input);
}

const parsedEmpty = new WeakMap<SettingsSchema<unknown>, unknown>();
const parsedUndefined = new WeakMap<SettingsSchema<unknown>, unknown>();

function parseSettingsOnce<T>(subject: string, schema: SettingsSchema<T>, input: unknown): T {
  const result = schema.safeParse(input);
  if (!result.success) {
    throw InvalidArgumentError.fromZodError(subject, result.error);
  }
  const value = result.data;
  // Only plain objects the schema built: a class instance passed through (an adapter) stays the caller's.
  if (
    typeof value === "object" &&
    value !== null &&
    Object.getPrototypeOf(value) === Object.prototype
  ) {
    Object.freeze(value);
  }
  return value;
}
