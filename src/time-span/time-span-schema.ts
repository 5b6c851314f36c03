import * as v from "valibot";
import { InvalidArgumentError } from "../errors/invalid-argument-error.js";
import { mustBe } from "../settings/parse-settings.js";
import { wholeMs } from "../timers/timers.js";
import { type ITimeSpan, TimeSpan } from "./time-span.js";

/**
 * The longest duration hasp takes, in ms: 100 years of 365 days. Every backend represents it,
 * and what it is added to, exactly: an integer in a double (Lua's numbers), printed without an
 * exponent by Lua's `%.14g` even with the server's time in ms added (Redis's `PX`/`PEXPIRE`
 * refuse `1e+17`), within a `bigint` column, and within a JS `Date`.
 */
export const MAX_DURATION_MS = 3_153_600_000_000;

/** What a settings schema says of a duration above {@link MAX_DURATION_MS}. */
export const MAX_DURATION_MESSAGE = `must be at most 100 years (${MAX_DURATION_MS} ms)`;

/**
 * A duration as the whole ms (at least 1) a store takes, or `undefined` above
 * {@link MAX_DURATION_MS}: for an adapter called directly (a provider refuses those first). A
 * number comparison, on every acquire's path.
 */
export function storeMilliseconds(span: ITimeSpan): number | undefined {
  const ms = span.toMilliseconds();
  return ms <= MAX_DURATION_MS ? wholeMs(ms) : undefined;
}

/** The error of an adapter called directly with a duration above {@link MAX_DURATION_MS}. */
export function durationTooLong(
  adapter: string,
  field: string,
  span: ITimeSpan | null,
): InvalidArgumentError {
  return new InvalidArgumentError(
    `Invalid ${adapter} argument: ${field}: ${MAX_DURATION_MESSAGE}, got ${span?.toMilliseconds()} ms`,
    [{ path: field, message: MAX_DURATION_MESSAGE }],
  );
}

/**
 * Any `ITimeSpan` of finite length up to {@link MAX_DURATION_MS}, parsed into a `TimeSpan`.
 * For settings schemas.
 */
export const timeSpanSchema = v.pipe(
  v.custom<ITimeSpan>((value) => TimeSpan.isTimeSpan(value), mustBe("a TimeSpan")),
  v.check((span) => Number.isFinite(span.toMilliseconds()), "must be of finite length"),
  v.transform((span) => TimeSpan.from(span)),
  v.check((span) => span.toMilliseconds() <= MAX_DURATION_MS, MAX_DURATION_MESSAGE),
);

export const positiveTimeSpanSchema = v.pipe(
  timeSpanSchema,
  v.check((span) => span.toMilliseconds() > 0, "must be positive"),
);

export const nonNegativeTimeSpanSchema = v.pipe(
  timeSpanSchema,
  v.check((span) => !span.isNegative(), "must not be negative"),
);
