import { createErrorGuard, HaspError } from "../errors/hasp-error.js";
import type { TimeSpan } from "../time-span/time-span.js";

/**
 * Thrown by `timeout` when the wrapped work did not finish in time. The run's signal is
 * aborted with this error as its reason, so the work can tell a timeout from other aborts.
 */
export class TimeoutError extends HaspError {
  override name = "TimeoutError" as const;

  constructor(
    /** The `waitTime` that ran out. */
    readonly waitTime: TimeSpan,
    options?: ErrorOptions,
  ) {
    super(`Timed out after ${waitTime.toString()}`, options);
  }
}

/**
 * Thrown by `retry` with `throwRetryError: true` once every attempt failed. `errors` holds
 * each attempt's error in order (`undefined` for an attempt that returned `false`); `cause`
 * is the last one.
 */
export class RetryError extends HaspError {
  override name = "RetryError" as const;

  constructor(
    /** How many attempts ran. */
    readonly attempts: number,
    /** Each attempt's error, in order; `undefined` for an attempt that returned `false`. */
    readonly errors: readonly unknown[],
  ) {
    super(`All ${attempts} attempts failed`, { cause: errors.at(-1) });
  }
}

/** Whether `value` is a {@link TimeoutError}, from this or another copy of hasp. */
export const isTimeoutError = createErrorGuard(TimeoutError, "TimeoutError");

/** Whether `value` is a {@link RetryError}, from this or another copy of hasp. */
export const isRetryError = createErrorGuard(RetryError, "RetryError");
