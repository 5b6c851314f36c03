/**
 * Middlewares for `Task.pipe`: `retry` with backoff policies, `timeout` and `fallback`.
 *
 * @module hasp/resilience
 */
export {
  type BackoffPolicy,
  type ConstantBackoffSettings,
  constantBackoff,
  type ExponentialBackoffSettings,
  exponentialBackoff,
  type LinearBackoffSettings,
  linearBackoff,
} from "./backoff-policies.js";
export type { ErrorClass, ErrorMatcher, ErrorPolicy, ErrorPredicate } from "./error-policy.js";
export { type FallbackEvent, type FallbackSettings, fallback } from "./fallback.js";
export { isRetryError, isTimeoutError, RetryError, TimeoutError } from "./resilience-errors.js";
export { type RetryEvent, type RetrySettings, retry } from "./retry.js";
export { type TimeoutSettings, timeout } from "./timeout.js";
