import { TimeSpan } from "../../time-span/time-span.js";
import { durationTooLong, storeMilliseconds } from "../../time-span/time-span-schema.js";

/**
 * A duration as the whole ms (at least 1) the statements take. Above MAX_DURATION_MS (passed to
 * the adapter directly: the provider refuses it) an InvalidArgumentError naming `adapter` and
 * `field`, before any statement.
 */
export function toTtlMs(adapter: string, span: TimeSpan, field: string): number {
  const ms = storeMilliseconds(span);
  if (ms === undefined) {
    throw durationTooLong(adapter, field, span);
  }
  return ms;
}

/** A remaining time in ms as a statement answered it (NULL: never expires), never below 0. */
export function toRemaining(remaining: unknown): TimeSpan | null {
  return remaining === null || remaining === undefined
    ? null
    : TimeSpan.fromMilliseconds(Math.max(0, Number(remaining)));
}
