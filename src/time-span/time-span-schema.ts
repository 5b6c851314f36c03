import { z } from "zod";
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
 * Any `ITimeSpan` of finite length up to {@link MAX_DURATION_MS}, parsed into a `TimeSpan`.
 * For settings schemas.
 */
export const timeSpanSchema = z
  .custom<ITimeSpan>(
    (value) => TimeSpan.isTimeSpan(value) && Number.isFinite(value.toMilliseconds()),
    "must be a TimeSpan of finite length",
  )
  .transform((value) => TimeSpan.from(value))
  .refine((value) => value.toMilliseconds() <= MAX_DURATION_MS, MAX_DURATION_MESSAGE);

export const positiveTimeSpanSchema = timeSpanSchema.refine(
  (value) => value.toMilliseconds() > 0,
  "must be positive",
);

export const nonNegativeTimeSpanSchema = timeSpanSchema.refine(
  (value) => !value.isNegative(),
  "must not be negative",
);
