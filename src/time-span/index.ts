/**
 * An immutable duration; every hasp API that takes a duration takes an `ITimeSpan`.
 *
 * @module hasp/time-span
 */
export { type ITimeSpan, TimeSpan, type TimeSpanDateRange } from "./time-span.js";
