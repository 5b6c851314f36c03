/**
 * The settings schemas' builder: the part of zod 4's API hasp uses, with zod's rules (which
 * checks run after which failures, which keys may be absent) and zod's messages, word for word.
 * zod itself took ~50 ms to load, most of the cost of importing `hasp/lock`, and 8 MB to install.
 *
 * A schema runs on a payload, the value and the issues found so far. An issue that does not
 * `continue` (a wrong type) aborts: the checks after it are skipped, as in zod.
 */

/** One problem found: where (`path`, relative to the schema that reported it) and what. */
export type SchemaIssue = {
  readonly code: string;
  readonly path: PropertyKey[];
  readonly message: string;
  /** Whether later checks still run (zod's `continue`). */
  readonly continue?: boolean;
  /** For `invalid_union`: each option's issues. */
  readonly errors?: SchemaIssue[][];
};

export type SafeParseResult<T> =
  | { readonly success: true; readonly data: T }
  | { readonly success: false; readonly error: { readonly issues: SchemaIssue[] } };

type Payload = { value: unknown; issues: SchemaIssue[]; aborted?: boolean };

/** How a schema treats an absent key (zod's `optin`/`optout`). */
type Presence = { readonly optin?: "optional" | "defaulted"; readonly optout?: "optional" };

type Check = {
  readonly run: (payload: Payload) => void;
  /** Runs even after a wrong type, when this says so (zod's length checks). */
  readonly when?: (payload: Payload) => boolean;
};

export type Output<TSchema> = TSchema extends Schema<infer T> ? T : never;

export class Schema<T> {
  declare readonly "~output": T;

  constructor(
    /** The schema's own job (its type; an object's fields), before its checks. */
    protected readonly parse: (payload: Payload) => Payload,
    readonly presence: Presence = {},
    protected readonly checks: readonly Check[] = [],
  ) {}

  run(payload: Payload): Payload {
    const result = this.parse(payload);
    let isAborted = aborted(result);
    for (const check of this.checks) {
      if (check.when !== undefined) {
        if (explicitlyAborted(result) || !check.when(result)) {
          continue;
        }
      } else if (isAborted) {
        continue;
      }
      const before = result.issues.length;
      check.run(result);
      isAborted ||= aborted(result, before);
    }
    return result;
  }

  safeParse(input: unknown): SafeParseResult<T> {
    const { value, issues } = this.run({ value: input, issues: [] });
    return issues.length === 0
      ? { success: true, data: value as T }
      : { success: false, error: { issues } };
  }

  /** This schema with one more check. */
  protected with(check: Check): this {
    return Object.assign(Object.create(Object.getPrototypeOf(this)) as this, this, {
      checks: [...this.checks, check],
    });
  }

  refine(
    predicate: (value: T) => unknown,
    problem: string | { readonly message: string; readonly path: PropertyKey[] },
  ): this {
    const { message, path } =
      typeof problem === "string" ? { message: problem, path: [] } : problem;
    return this.with({
      run: (payload) => {
        if (!predicate(payload.value as T)) {
          payload.issues.push({ code: "custom", path: [...path], message, continue: true });
        }
      },
    });
  }

  superRefine(
    refinement: (
      value: T,
      context: { addIssue(issue: { code: "custom"; message: string; path?: PropertyKey[] }): void },
    ) => void,
  ): this {
    return this.with({
      run: (payload) => {
        refinement(payload.value as T, {
          addIssue: ({ code, message, path = [] }) =>
            payload.issues.push({ code, message, path: [...path], continue: true }),
        });
      },
    });
  }

  transform<U>(transformation: (value: T) => U): Schema<U> {
    // A pipe: any issue but an unknown key stops it, so nothing invalid reaches the transform.
    return new Schema<U>(
      (payload) => {
        const left = this.run(payload);
        if (left.issues.some((issue) => issue.code !== "unrecognized_keys")) {
          left.aborted = true;
        } else {
          left.value = transformation(left.value as T);
        }
        return left;
      },
      { optin: this.presence.optin },
    );
  }

  optional(): Schema<T | undefined> {
    const isDefaulted = this.presence.optin === "defaulted";
    return new Schema<T | undefined>(
      (payload) => {
        if (payload.value !== undefined) {
          return this.run(payload);
        }
        if (isDefaulted) {
          const result = this.run({ value: undefined, issues: [] });
          payload.value = result.issues.length === 0 ? result.value : undefined;
        }
        return payload;
      },
      { optin: isDefaulted ? "defaulted" : "optional", optout: "optional" },
    );
  }

  nullable(): Schema<T | null> {
    return new Schema<T | null>(
      (payload) => (payload.value === null ? payload : this.run(payload)),
      this.presence,
    );
  }

  /** `value` stands for an absent one; it is not checked. */
  default(value: Exclude<T, undefined>): Schema<Exclude<T, undefined>> {
    return new Schema<Exclude<T, undefined>>(
      (payload) => {
        const result = payload.value === undefined ? payload : this.run(payload);
        if (result.value === undefined) {
          result.value = shallowCopy(value);
        }
        return result;
      },
      { optin: "defaulted" },
    );
  }
}

export class StringSchema extends Schema<string> {
  min(length: number, message: string): this {
    return this.with(lengthCheck("too_small", message, (value) => lengthOf(value) >= length));
  }

  max(length: number, message: string): this {
    return this.with(
      lengthCheck(
        "too_big",
        message,
        (value) => value.length <= length || lengthOf(value) <= length,
      ),
    );
  }

  regex(pattern: RegExp, message: string): this {
    return this.with(checkOf("invalid_format", message, (value) => pattern.test(value as string)));
  }
}

export class NumberSchema extends Schema<number> {
  /** Also refuses an integer beyond `Number.MAX_SAFE_INTEGER` (without aborting, as zod). */
  int(message: string): this {
    return this.with({
      run: (payload) => {
        const value = payload.value as number;
        if (!Number.isInteger(value)) {
          payload.issues.push({ code: "invalid_type", path: [], message, continue: false });
        } else if (!Number.isSafeInteger(value)) {
          const code = value > 0 ? "too_big" : "too_small";
          payload.issues.push({ code, path: [], message, continue: true });
        }
      },
    });
  }

  min(minimum: number, message: string): this {
    return this.with(checkOf("too_small", message, (value) => (value as number) >= minimum));
  }

  max(maximum: number, message: string): this {
    return this.with(checkOf("too_big", message, (value) => (value as number) <= maximum));
  }

  positive(): this {
    const message = "Too small: expected number to be >0";
    return this.with(checkOf("too_small", message, (value) => (value as number) > 0));
  }

  /** A number is finite already: as in zod 4, this changes nothing. */
  finite(): this {
    return this;
  }
}

type Shape = Readonly<Record<string, Schema<unknown>>>;

type ObjectOutput<TShape extends Shape> = {
  [K in keyof TShape as undefined extends Output<TShape[K]> ? K : never]?: Output<TShape[K]>;
} & {
  [K in keyof TShape as undefined extends Output<TShape[K]> ? never : K]: Output<TShape[K]>;
};

export class ObjectSchema<TShape extends Shape> extends Schema<ObjectOutput<TShape>> {
  constructor(
    protected readonly shape: TShape,
    protected readonly isStrict = false,
    checks: readonly Check[] = [],
  ) {
    super((payload) => this.#parseObject(payload), {}, checks);
  }

  /** Refuses a key the shape does not name (without `strict()`, such keys are dropped). */
  strict(): ObjectSchema<TShape> {
    return new ObjectSchema(this.shape, true, this.checks);
  }

  #parseObject(payload: Payload): Payload {
    const input = payload.value;
    if (typeof input !== "object" || input === null || Array.isArray(input)) {
      payload.issues.push(typeIssue("object", input));
      return payload;
    }
    const record = input as Record<string, unknown>;
    const output: Record<string, unknown> = {};
    payload.value = output;
    for (const [key, schema] of Object.entries(this.shape)) {
      if (key !== "__proto__") {
        addProperty(payload, output, record, key, schema);
      }
    }
    if (this.isStrict) {
      const unknownKeys: string[] = [];
      for (const key in record) {
        if (!Object.hasOwn(this.shape, key)) {
          unknownKeys.push(key);
        }
      }
      if (unknownKeys.length > 0) {
        const list = unknownKeys.map(quoted).join(", ");
        payload.issues.push({
          code: "unrecognized_keys",
          path: [],
          message: `Unrecognized key${unknownKeys.length > 1 ? "s" : ""}: ${list}`,
          continue: true,
        });
      }
    }
    return payload;
  }
}

/** One property of an object: zod's rules for an absent key, and for what lands in the output. */
function addProperty(
  payload: Payload,
  output: Record<string, unknown>,
  input: Record<string, unknown>,
  key: string,
  schema: Schema<unknown>,
): void {
  const { optin, optout } = schema.presence;
  const isPresent = key in input;
  if (!isPresent && optin === "optional" && optout === "optional") {
    return;
  }
  const result = schema.run({ value: input[key], issues: [] });
  if (result.issues.length > 0) {
    if (!isPresent && optin !== undefined && optout === "optional") {
      return;
    }
    payload.issues.push(...prefixed(key, result.issues));
  }
  if (!isPresent && optin === undefined) {
    if (result.issues.length === 0) {
      payload.issues.push(typeIssue("nonoptional", undefined, [key]));
    }
    return;
  }
  if (result.value !== undefined) {
    output[key] = result.value;
  } else if (isPresent || (optin === "defaulted" && optout !== "optional")) {
    output[key] = undefined;
  }
}

function union<const TOptions extends readonly Schema<unknown>[]>(
  options: TOptions,
): Schema<Output<TOptions[number]>> {
  const optins = options.map((option) => option.presence.optin);
  const presence: Presence = {
    optin: optins.includes("defaulted")
      ? "defaulted"
      : optins.some((optin) => optin !== undefined)
        ? "optional"
        : undefined,
    optout: options.some((option) => option.presence.optout === "optional")
      ? "optional"
      : undefined,
  };
  return new Schema((payload) => {
    const results: Payload[] = [];
    for (const option of options) {
      const result = option.run({ value: payload.value, issues: [] });
      if (result.issues.length === 0) {
        return result;
      }
      results.push(result);
    }
    // Only one option got past the type checks: its problems are the ones to tell.
    const typed = results.filter((result) => !aborted(result));
    const [only] = typed;
    if (typed.length === 1 && only !== undefined) {
      return only;
    }
    payload.issues.push({
      code: "invalid_union",
      path: [],
      message: "Invalid input",
      errors: results.map((result) => result.issues),
    });
    return payload;
  }, presence);
}

function array<T>(element: Schema<T>): Schema<T[]> {
  return new Schema<T[]>((payload) => {
    const input = payload.value;
    if (!Array.isArray(input)) {
      payload.issues.push(typeIssue("array", input));
      return payload;
    }
    payload.value = input.map((item, index) => {
      const result = element.run({ value: item, issues: [] });
      payload.issues.push(...prefixed(index, result.issues));
      return result.value;
    });
    return payload;
  });
}

/** A value of `type` (a `typeof` name), else zod's `invalid_type` issue. */
function typeOf(type: "string" | "boolean", message?: string): (payload: Payload) => Payload {
  return (payload) => {
    if (typeof payload.value !== type) {
      payload.issues.push(typeIssue(type, payload.value, [], message));
    }
    return payload;
  };
}

function oneOf<const TValues extends readonly (string | boolean)[]>(
  values: TValues,
  message: string,
): Schema<TValues[number]> {
  return new Schema((payload) => {
    if (!values.includes(payload.value as TValues[number])) {
      payload.issues.push({ code: "invalid_value", path: [], message });
    }
    return payload;
  });
}

/**
 * The builder, with zod's names: `s.object({ … }).strict()`. A message given to `s.string()` or
 * `s.boolean()` replaces zod's for a value of another type.
 */
export const s = {
  string: (message?: string) => new StringSchema(typeOf("string", message)),
  number: () =>
    new NumberSchema((payload) => {
      const value = payload.value;
      if (typeof value !== "number" || !Number.isFinite(value)) {
        payload.issues.push(typeIssue("number", value));
      }
      return payload;
    }),
  boolean: (message?: string) => new Schema<boolean>(typeOf("boolean", message)),
  unknown: () => new Schema<unknown>((payload) => payload),
  literal: <const TValue extends string | boolean>(value: TValue) =>
    oneOf([value], `Invalid input: expected ${quoted(value)}`),
  enum: <const TValues extends readonly string[]>(values: TValues) =>
    oneOf(values, `Invalid option: expected one of ${values.map(quoted).join("|")}`),
  /** A value `predicate` accepts, else `message`, which aborts (unlike a `refine`'s). */
  custom: <T>(predicate: (value: unknown) => boolean, message: string) =>
    new Schema<T>((payload) => payload, {}, [checkOf("custom", message, predicate, false)]),
  object: <TShape extends Shape>(shape: TShape) => new ObjectSchema(shape),
  union,
  array,
};

function checkOf(
  code: string,
  message: string,
  accepts: (value: unknown) => boolean,
  isContinued = true,
): Check {
  return {
    run: (payload) => {
      if (!accepts(payload.value)) {
        payload.issues.push({ code, path: [], message, continue: isContinued });
      }
    },
  };
}

type Lengthy = { readonly length: number };

/** A check of anything with a length, which runs even after a wrong type (as zod's do). */
function lengthCheck(code: string, message: string, accepts: (value: Lengthy) => boolean): Check {
  return {
    ...checkOf(code, message, (value) => accepts(value as Lengthy)),
    when: ({ value }) =>
      value !== undefined && value !== null && (value as Partial<Lengthy>).length !== undefined,
  };
}

/** A string's length in code points (zod counts those), anything else's `length`. */
function lengthOf(value: Lengthy): number {
  return typeof value === "string" ? Array.from(value).length : value.length;
}

function aborted(payload: Payload, from = 0): boolean {
  return payload.aborted === true || payload.issues.slice(from).some((issue) => !issue.continue);
}

function explicitlyAborted(payload: Payload): boolean {
  return payload.aborted === true || payload.issues.some((issue) => issue.continue === false);
}

function prefixed(key: PropertyKey, issues: SchemaIssue[]): SchemaIssue[] {
  for (const issue of issues) {
    issue.path.unshift(key);
  }
  return issues;
}

/** zod's `invalid_type` issue: `Invalid input: expected string, received number`. */
function typeIssue(
  expected: string,
  input: unknown,
  path: PropertyKey[] = [],
  message = `Invalid input: expected ${expected}, received ${typeName(input)}`,
): SchemaIssue {
  return { code: "invalid_type", path, message };
}

/** What zod calls the type of `input` in a message: `NaN`, `Infinity`, `array`, a class name. */
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
  return Object.getPrototypeOf(input) !== Object.prototype && maker ? String(maker.name) : "object";
}

function quoted(value: string | boolean): string {
  return typeof value === "string" ? `"${value}"` : String(value);
}

/** A default object or array is copied for each parse, as zod does. */
function shallowCopy<T>(value: T): T {
  if (Array.isArray(value)) {
    return [...value] as T;
  }
  const isPlain =
    typeof value === "object" &&
    value !== null &&
    Object.getPrototypeOf(value) === Object.prototype;
  return isPlain ? { ...value } : value;
}
