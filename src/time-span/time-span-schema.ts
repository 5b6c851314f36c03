import { z } from "zod";
import { type ITimeSpan, TimeSpan } from "./time-span.js";

/** Any `ITimeSpan` of finite length, parsed into a `TimeSpan`. For settings schemas. */
export const timeSpanSchema = z
  .custom<ITimeSpan>(
    (value) => TimeSpan.isTimeSpan(value) && Number.isFinite(value.toMilliseconds()),
    "must be a TimeSpan of finite length",
  )
  .transform((value) => TimeSpan.from(value));

export const positiveTimeSpanSchema = timeSpanSchema.refine(
  (value) => value.toMilliseconds() > 0,
  "must be positive",
);

export const nonNegativeTimeSpanSchema = timeSpanSchema.refine(
  (value) => !value.isNegative(),
  "must not be negative",
);
