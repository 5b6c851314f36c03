/**
 * Settings and arguments are checked with valibot schemas, parsed by {@link parseSettings} into a
 * frozen object, or into one {@link InvalidArgumentError} naming each offending field. A problem
 * reads `must be <what was expected>, got <what was received>` (`must be a Namespace, got
 * string`), or says which rule the value broke (`must be at least 1`).
 */
import * as v from "valibot";
import {
  type InvalidArgumentError,
  invalidArgumentError,
  type Problem,
} from "../errors/invalid-argument-error.js";

/** A schema `parseSettings` takes: any synchronous valibot schema. */
type SettingsSchema = v.GenericSchema<unknown, unknown>;

type Issue = v.BaseIssue<unknown>;

/** The message of a value of the wrong type: `must be ${expected}, got number`. */
export function mustBe(expected: string): (issue: Issue) => string {
  return (issue) => `must be ${expected}, got ${typeName(issue.input)}`;
}

/**
 * An object of exactly `entries`, not an array: a key it does not name is refused (a misspelt
 * setting would otherwise be ignored), and the message of a required key left out is its schema's.
 */
export function settingsObject<const TEntries extends v.ObjectEntries>(entries: TEntries) {
  const keys = Object.keys(entries).join(", ");
  return v.pipe(
    v.custom<object>(
      (value) => typeof value === "object" && value !== null && !Array.isArray(value),
      mustBe("an object"),
    ),
    // Past the check above, strictObject's issues are about keys: unknown, or required and left out.
    v.strictObject(entries, (issue) => {
      const key = keyOf(issue);
      if (key === undefined || issue.expected === "never") {
        return `unknown key, expected one of: ${keys}`;
      }
      // What the key's schema says of `undefined`.
      const schema = entries[key as keyof TEntries] as SettingsSchema;
      const missing = v.safeParse(schema, undefined, { message: fallbackMessage });
      return missing.issues?.[0]?.message ?? "is required";
    }),
  );
}

/** The key an object's issue is about (one left out, or unknown), if it is about a key. */
function keyOf(issue: Issue): PropertyKey | undefined {
  const [item] = issue.path ?? [];
  return item?.origin === "key" ? (item.key as PropertyKey) : undefined;
}

/**
 * Parses `input` with `schema`, throwing an {@link InvalidArgumentError} that names the field
 * on failure. A resulting object is frozen: settings are read once and never change afterwards.
 */
export function parseSettings<TSchema extends SettingsSchema>(
  subject: string,
  schema: TSchema,
  input: unknown,
): v.InferOutput<TSchema> {
  // The common call passes no settings: parse those once per schema (the result is frozen).
  if (input === undefined || isEmptyObject(input)) {
    const cache = input === undefined ? parsedUndefined : parsedEmpty;
    const cached = cache.get(schema);
    if (cached !== undefined || cache.has(schema)) {
      return cached as v.InferOutput<TSchema>;
    }
    const value = parseSettingsOnce(subject, schema, input);
    cache.set(schema, value);
    return value;
  }
  return parseSettingsOnce(subject, schema, input);
}

/** `{}`: a plain object without keys (checked without making an array of its keys). */
function isEmptyObject(input: unknown): boolean {
  if (
    typeof input !== "object" ||
    input === null ||
    Object.getPrototypeOf(input) !== Object.prototype
  ) {
    return false;
  }
  for (const _ in input) {
    return false;
  }
  return true;
}

const parsedEmpty = new WeakMap<SettingsSchema, unknown>();
const parsedUndefined = new WeakMap<SettingsSchema, unknown>();

function parseSettingsOnce<TSchema extends SettingsSchema>(
  subject: string,
  schema: TSchema,
  input: unknown,
): v.InferOutput<TSchema> {
  const result = v.safeParse(schema, input, { message: fallbackMessage });
  if (!result.success) {
    const cause = new v.ValiError(result.issues);
    throw invalidArgumentError(subject, result.issues.flatMap(problems), cause);
  }
  const value = result.output as v.InferOutput<TSchema>;
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

/** For an issue whose schema sets no message: valibot's own words are `Expected … but received …`. */
function fallbackMessage(issue: Issue): string {
  if (keyOf(issue) !== undefined) {
    return issue.expected === "never" ? "unknown key" : "is required";
  }
  return issue.expected === null ? "is invalid" : mustBe(issue.expected)(issue);
}

/**
 * An issue's problems, each with its path. A value no option of a union took: when it has the
 * shape of an option, that option's problems, which name the field or the rule
 * (`autoRefresh.interval: must be positive`); else the union's own message.
 */
function problems(issue: Issue): Problem[] {
  const path = (issue.path ?? []).map((item) => item.key as PropertyKey);
  const fitting = issue.type === "union" ? (issue.issues ?? []).filter(fitsItsOption) : [];
  if (fitting.length === 0) {
    return [{ path, message: issue.message }];
  }
  return fitting
    .flatMap(problems)
    .map((problem) => ({ ...problem, path: [...path, ...problem.path] }));
}

/**
 * Whether a union option's issue says the value had the option's shape: the issue is about one
 * of its fields or items, or about a rule the value broke after passing the option's type.
 */
function fitsItsOption(issue: Issue): boolean {
  return (
    (issue.path?.length ?? 0) > 0 ||
    issue.kind === "validation" ||
    (issue.type === "union" && (issue.issues ?? []).some(fitsItsOption))
  );
}

/** What a value is, in a message: `number`, `NaN`, `null`, `array`, a class name. */
function typeName(input: unknown): string {
  if (typeof input === "number") {
    return Number.isFinite(input) ? "number" : String(input);
  }
  if (typeof input !== "object") {
    return typeof input;
  }
  if (input === null) {
    return "null";
  }
  if (Array.isArray(input)) {
    return "array";
  }
  const maker = (input as { constructor?: { name?: unknown } }).constructor;
  return Object.getPrototypeOf(input) !== Object.prototype && typeof maker?.name === "string"
    ? maker.name
    : "object";
}
