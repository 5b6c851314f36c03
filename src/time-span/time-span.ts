import { InvalidArgumentError } from "../errors/invalid-argument-error.js";

/**
 * Anything that can say how long it lasts in milliseconds. Every hasp API that takes a
 * duration takes an `ITimeSpan`, so a {@link TimeSpan} or any compatible object works.
 */
export type ITimeSpan = {
  /** The length in milliseconds: a finite number, fractions allowed. */
  toMilliseconds(): number;
};

const MS_PER_SECOND = 1_000;
const MS_PER_MINUTE = 60 * MS_PER_SECOND;
const MS_PER_HOUR = 60 * MS_PER_MINUTE;
const MS_PER_DAY = 24 * MS_PER_HOUR;

const UNITS = [
  ["d", MS_PER_DAY],
  ["h", MS_PER_HOUR],
  ["m", MS_PER_MINUTE],
  ["s", MS_PER_SECOND],
  ["ms", 1],
] as const;

/**
 * A duration as text: a number (a sign and fractions allowed), optional spaces, and a unit; no
 * unit is milliseconds. The grammar of `@lukeed/ms`, which daiso-core's `TimeSpan.fromStr` uses.
 * No two quantifiers can take the same digits, so a long input is refused in linear time.
 */
const DURATION_TEXT =
  /^(-?(?:\d+(?:\.\d+)?|\.\d+)) *(?:(m(?:illiseconds?|s(?:ecs?)?))|(s(?:ec(?:onds?|s)?)?)|(m(?:in(?:utes?|s)?)?)|(h(?:ours?|rs?)?)|(d(?:ays?)?)|(w(?:eeks?|ks?)?)|(y(?:ears?|rs?)?))?$/i;

/** The size of each unit group of {@link DURATION_TEXT}, in order; a year is 365.25 days. */
const TEXT_UNIT_MS = [
  1,
  MS_PER_SECOND,
  MS_PER_MINUTE,
  MS_PER_HOUR,
  MS_PER_DAY,
  7 * MS_PER_DAY,
  365.25 * MS_PER_DAY,
];

/** The dates of a {@link TimeSpan.fromDateRange} range; either defaults to now. */
export type TimeSpanDateRange = {
  /** @default new Date() */
  start?: Date;
  /** @default new Date() */
  end?: Date;
};

/** The error for a bad argument of `TimeSpan.<method>`, naming the method, the field and the value. */
function invalid(method: string, field: string, problem: string): InvalidArgumentError {
  return new InvalidArgumentError(`Invalid TimeSpan.${method} argument: ${field}: ${problem}`, [
    { path: field, message: problem },
  ]);
}

/** `value` when it is a finite number; else an {@link InvalidArgumentError}. */
function finite(value: number, method: string, field: string): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw invalid(method, field, `must be a finite number, got ${String(value)}`);
  }
  return value;
}

/** A result in ms, checked: finite arguments can still overflow (`fromSeconds(1e308)`). */
function result(milliseconds: number, method: string, field: string): number {
  if (!Number.isFinite(milliseconds)) {
    throw invalid(
      method,
      field,
      `the result must be a finite number of milliseconds, got ${String(milliseconds)}`,
    );
  }
  return milliseconds;
}

/**
 * An immutable duration, stored in milliseconds (fractions allowed). Negative spans are
 * representable (the result of `subtract`); APIs that need a positive duration check it.
 *
 * @example
 * const ttl = TimeSpan.fromSeconds(30);
 * ttl.add(TimeSpan.fromMilliseconds(500)).toMilliseconds(); // 30500
 */
export class TimeSpan implements ITimeSpan {
  readonly #milliseconds: number;

  private constructor(milliseconds: number) {
    // Normalise -0 so that equality and printing never surprise.
    this.#milliseconds = milliseconds === 0 ? 0 : milliseconds;
  }

  /** A span of no time. */
  static readonly ZERO = new TimeSpan(0);

  /**
   * A span of `milliseconds`; fractions and negative values are kept.
   * @throws InvalidArgumentError when `milliseconds` is NaN, infinite or not a number (as do the
   * other `from…` methods, and theirs when the span in milliseconds would be infinite).
   */
  static fromMilliseconds(milliseconds: number): TimeSpan {
    return new TimeSpan(finite(milliseconds, "fromMilliseconds", "milliseconds"));
  }

  /** A span of `seconds` (fractions allowed: `fromSeconds(1.5)`). */
  static fromSeconds(seconds: number): TimeSpan {
    return TimeSpan.#fromUnits(seconds, MS_PER_SECOND, "fromSeconds", "seconds");
  }

  /** A span of `minutes`. */
  static fromMinutes(minutes: number): TimeSpan {
    return TimeSpan.#fromUnits(minutes, MS_PER_MINUTE, "fromMinutes", "minutes");
  }

  /** A span of `hours`. */
  static fromHours(hours: number): TimeSpan {
    return TimeSpan.#fromUnits(hours, MS_PER_HOUR, "fromHours", "hours");
  }

  /** A span of `days` of 24 hours. */
  static fromDays(days: number): TimeSpan {
    return TimeSpan.#fromUnits(days, MS_PER_DAY, "fromDays", "days");
  }

  static #fromUnits(count: number, unitMs: number, method: string, field: string): TimeSpan {
    return new TimeSpan(result(finite(count, method, field) * unitMs, method, field));
  }

  /**
   * The span from `start` to `end` (negative when `end` comes first), as daiso-core's.
   * @throws InvalidArgumentError when a date is invalid.
   */
  static fromDateRange({ start, end }: TimeSpanDateRange): TimeSpan {
    const now = Date.now();
    const milliseconds = (end?.getTime() ?? now) - (start?.getTime() ?? now);
    return new TimeSpan(finite(milliseconds, "fromDateRange", "start, end"));
  }

  /**
   * A span written as text, as daiso-core's `fromStr` (the grammar of `@lukeed/ms`): a number,
   * optional spaces and a unit, `ms`, `s`, `m`, `h`, `d`, `w` or `y` (365.25 days), also
   * spelled out (`"2 minutes"`, `"1.5hrs"`, `"3 Days"`); a number alone is milliseconds.
   *
   * @example
   * TimeSpan.fromStr("5s").toMilliseconds(); // 5000
   * @throws InvalidArgumentError when `text` is not such a duration.
   */
  static fromStr(text: string): TimeSpan {
    const match = typeof text === "string" ? DURATION_TEXT.exec(text) : null;
    if (match === null) {
      throw invalid(
        "fromStr",
        "text",
        `${JSON.stringify(text)} is not a duration; write a number and a unit: "500ms", "5s", "1.5h", "2 days"`,
      );
    }
    const unit = match.findIndex((group, index) => index >= 2 && group !== undefined);
    return TimeSpan.#fromUnits(Number(match[1]), TEXT_UNIT_MS[unit - 2] ?? 1, "fromStr", "text");
  }

  /** daiso-core's name for {@link TimeSpan.from}. */
  static fromTimeSpan(timeSpan: ITimeSpan): TimeSpan {
    return TimeSpan.from(timeSpan);
  }

  /**
   * Converts any {@link ITimeSpan} (returned as is when it already is a `TimeSpan`).
   * @throws InvalidArgumentError when its `toMilliseconds()` is not a finite number.
   */
  static from(timeSpan: ITimeSpan): TimeSpan {
    return TimeSpan.#of(timeSpan, "from", "toMilliseconds()");
  }

  /** `other` as a `TimeSpan`, its length checked on behalf of `method`. */
  static #of(other: ITimeSpan, method: string, field: string): TimeSpan {
    if (other instanceof TimeSpan) {
      return other;
    }
    return new TimeSpan(finite(other.toMilliseconds(), method, field));
  }

  /** Whether `value` is an object with a callable `toMilliseconds`. */
  static isTimeSpan(value: unknown): value is ITimeSpan {
    return (
      typeof value === "object" &&
      value !== null &&
      typeof (value as { toMilliseconds?: unknown }).toMilliseconds === "function"
    );
  }

  toMilliseconds(): number {
    return this.#milliseconds;
  }

  /** The length in seconds, with fractions (1500 ms is 1.5). */
  toSeconds(): number {
    return this.#milliseconds / MS_PER_SECOND;
  }

  /** The length in minutes, with fractions. */
  toMinutes(): number {
    return this.#milliseconds / MS_PER_MINUTE;
  }

  /** The length in hours, with fractions. */
  toHours(): number {
    return this.#milliseconds / MS_PER_HOUR;
  }

  /** The length in days of 24 hours, with fractions. */
  toDays(): number {
    return this.#milliseconds / MS_PER_DAY;
  }

  /** A new span: this one plus `other`. */
  add(other: ITimeSpan): TimeSpan {
    const sum = this.#milliseconds + TimeSpan.#of(other, "add", "other").#milliseconds;
    return new TimeSpan(result(sum, "add", "other"));
  }

  /** A new span: this one minus `other`, negative when `other` is longer. */
  subtract(other: ITimeSpan): TimeSpan {
    const difference = this.#milliseconds - TimeSpan.#of(other, "subtract", "other").#milliseconds;
    return new TimeSpan(result(difference, "subtract", "other"));
  }

  /**
   * A new span: this one times `factor`.
   * @throws InvalidArgumentError when `factor` is NaN or infinite, or the result infinite.
   */
  multiply(factor: number): TimeSpan {
    const product = this.#milliseconds * finite(factor, "multiply", "factor");
    return new TimeSpan(result(product, "multiply", "factor"));
  }

  /** @throws InvalidArgumentError when `divisor` is 0, NaN or infinite, or the result infinite. */
  divide(divisor: number): TimeSpan {
    if (finite(divisor, "divide", "divisor") === 0) {
      throw invalid("divide", "divisor", "must not be 0");
    }
    return new TimeSpan(result(this.#milliseconds / divisor, "divide", "divisor"));
  }

  /** Negative when this span is shorter than `other`, 0 when equal, positive when longer. */
  compare(other: ITimeSpan): number {
    return Math.sign(this.#milliseconds - TimeSpan.#of(other, "compare", "other").#milliseconds);
  }

  /** Whether both last exactly as long, to the fraction of a millisecond. */
  equals(other: ITimeSpan): boolean {
    return this.compare(other) === 0;
  }

  /** Whether this span lasts longer than `other`. */
  isLongerThan(other: ITimeSpan): boolean {
    return this.compare(other) > 0;
  }

  /** Whether this span is shorter than `other`. */
  isShorterThan(other: ITimeSpan): boolean {
    return this.compare(other) < 0;
  }

  /** Whether this span lasts no time at all. */
  isZero(): boolean {
    return this.#milliseconds === 0;
  }

  /** Whether this span is below zero (the result of subtracting a longer span). */
  isNegative(): boolean {
    return this.#milliseconds < 0;
  }

  /** The shortest of the spans, as a `TimeSpan`; the first of equals. */
  static min(first: ITimeSpan, ...rest: ITimeSpan[]): TimeSpan {
    const spans = rest.map((span) => TimeSpan.#of(span, "min", "spans"));
    return spans.reduce(
      (min, next) => (min.compare(next) <= 0 ? min : next),
      TimeSpan.#of(first, "min", "spans"),
    );
  }

  /** The longest of the spans, as a `TimeSpan`; the first of equals. */
  static max(first: ITimeSpan, ...rest: ITimeSpan[]): TimeSpan {
    const spans = rest.map((span) => TimeSpan.#of(span, "max", "spans"));
    return spans.reduce(
      (max, next) => (max.compare(next) >= 0 ? max : next),
      TimeSpan.#of(first, "max", "spans"),
    );
  }

  /** Human readable, largest unit first: `1h 30m`, `2s 500ms`, `0.25ms`, `-5s`, `0ms`. */
  toString(): string {
    // Rounded to the microsecond first, so that 1.1 hours (3960000.0000000005 ms) prints "1h 6m".
    let rest = Math.round(Math.abs(this.#milliseconds) * 1_000) / 1_000;
    if (rest === 0) {
      return "0ms";
    }
    const sign = this.#milliseconds < 0 ? "-" : "";
    const parts: string[] = [];
    for (const [unit, size] of UNITS) {
      if (unit === "ms") {
        if (rest > 0) {
          parts.push(`${Number(rest.toFixed(3))}ms`);
        }
        break;
      }
      const count = Math.floor(rest / size);
      if (count > 0) {
        parts.push(`${count}${unit}`);
        rest -= count * size;
      }
    }
    return sign + parts.join(" ");
  }

  /** Serialises as the number of milliseconds. */
  toJSON(): number {
    return this.#milliseconds;
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `TimeSpan(${this.toString()})`;
  }
}
