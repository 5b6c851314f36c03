import { parseSettings } from "../settings/parse-settings.js";
import type { GenericMiddleware, MiddlewareContext } from "../task/middleware.js";
import { Task } from "../task/task.js";
import { TimeSpan } from "../time-span/time-span.js";
import { type BackoffPolicy, exponentialBackoff } from "./backoff-policies.js";
import { type ErrorPolicy, toFailureTest } from "./error-policy.js";
import { RetryError } from "./resilience-errors.js";
import { retrySchema } from "./resilience-settings.js";

/** What `onRetry` hears before each wait. */
export type RetryEvent = {
  /** The attempt that just failed, 1 for the first. */
  attempt: number;
  /** How long retry now waits. */
  delay: TimeSpan;
  /** The attempt's error; `undefined` when it returned `false` (see {@link returnedFalse}). */
  error: unknown;
  /** Whether the attempt failed by returning `false` (with `treatFalseAsError`). */
  returnedFalse: boolean;
};

/** Settings of {@link retry}, validated when `retry` is called. */
export type RetrySettings = {
  /**
   * How many times the work runs at most, the first run included.
   * @default 4
   */
  maxAttempts?: number;
  /**
   * How long to wait after each failed attempt; asked afresh for every wait.
   * @default exponentialBackoff({ minDelay: 100 ms, maxDelay: 1 minute, jitter: true })
   */
  backoffPolicy?: BackoffPolicy;
  /**
   * Which outcomes are retried: an error class, a list of classes, a predicate, or
   * `{ treatFalseAsError: true }` to retry a `false` result. Other errors are rethrown at once.
   * @default every error
   */
  errorPolicy?: ErrorPolicy;
  /** Called before each wait. A throwing callback does not stop the retries. */
  onRetry?: (event: RetryEvent) => void;
  /**
   * When every attempt failed: `false` rethrows the last error unchanged (so
   * `instanceof FailedAcquireLockError` still holds) or returns the last `false`; `true`
   * throws a {@link RetryError} listing every attempt's error.
   * @default false
   */
  throwRetryError?: boolean;
};

const defaultBackoffPolicy = exponentialBackoff({ jitter: true });

/**
 * Runs the work again while it fails, up to `maxAttempts` times, waiting between attempts as
 * the backoff policy says. It never waits after the last attempt, and stops at once (with
 * the abort reason) when the run's signal aborts, also during a wait.
 *
 * @throws InvalidArgumentError on bad settings, at once.
 * @example
 * await lock.acquireOrFail().pipe(retry({ maxAttempts: 4, errorPolicy: FailedAcquireLockError }));
 */
export function retry(settings: RetrySettings = {}): GenericMiddleware {
  const parsed = parseSettings("retry settings", retrySchema, settings);
  const { maxAttempts, throwRetryError } = parsed;
  const backoffPolicy = parsed.backoffPolicy ?? defaultBackoffPolicy;
  const failure = toFailureTest(parsed.errorPolicy as ErrorPolicy | undefined);
  const onRetry = parsed.onRetry as RetrySettings["onRetry"];

  return async <TValue>({ signal, next }: MiddlewareContext<TValue>) => {
    const errors: unknown[] = [];
    for (let attempt = 1; ; attempt++) {
      let failed: { error: unknown; returnedFalse: false } | { value: TValue; returnedFalse: true };
      try {
        const value = await next();
        if (!failure.isFailedValue(value)) {
          return value;
        }
        failed = { value, returnedFalse: true };
      } catch (error) {
        if (signal.aborted || !failure.isFailedError(error)) {
          throw error;
        }
        failed = { error, returnedFalse: false };
      }
      const error = failed.returnedFalse ? undefined : failed.error;
      errors.push(error);
      if (attempt >= maxAttempts) {
        if (throwRetryError) {
          throw new RetryError(attempt, errors);
        }
        if (failed.returnedFalse) {
          return failed.value;
        }
        throw error;
      }
      const delay = TimeSpan.from(backoffPolicy(attempt, error));
      try {
        onRetry?.({ attempt, delay, error, returnedFalse: failed.returnedFalse });
      } catch {
        // onRetry is an observer; its failure must not change the outcome.
      }
      await Task.delay(delay, signal);
    }
  };
}
