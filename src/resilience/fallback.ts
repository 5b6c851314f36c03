import { parseSettings } from "../settings/parse-settings.js";
import type { Middleware } from "../task/middleware.js";
import { type ErrorPolicy, toFailureTest } from "./error-policy.js";
import { fallbackSchema } from "./resilience-settings.js";

/** What `onFallback` hears. */
export type FallbackEvent = {
  /** The error replaced, or `undefined` when the work returned `false`. */
  error: unknown;
  /** Whether the work returned `false` (with `treatFalseAsError`) rather than throwing. */
  returnedFalse: boolean;
};

/** Settings of {@link fallback}. */
export type FallbackSettings<TValue> = {
  /** Returned instead of a failure. */
  fallbackValue: TValue;
  /**
   * Which outcomes are replaced (see `retry`); other errors pass through.
   * @default every error
   */
  errorPolicy?: ErrorPolicy;
  /** Called when the fallback value is used. */
  onFallback?: (event: FallbackEvent) => void;
};

/**
 * Returns `fallbackValue` when the wrapped work fails as `errorPolicy` says. An abort of the
 * run's signal is never replaced.
 *
 * @throws InvalidArgumentError on bad settings, at once.
 * @example
 * const acquired = await lock.acquire().pipe(fallback({ fallbackValue: false }));
 */
export function fallback<TValue>(settings: FallbackSettings<NoInfer<TValue>>): Middleware<TValue> {
  const parsed = parseSettings("fallback settings", fallbackSchema, settings);
  const failure = toFailureTest(parsed.errorPolicy as ErrorPolicy | undefined);
  const { fallbackValue, onFallback } = settings;

  const useFallback = (event: FallbackEvent): TValue => {
    try {
      onFallback?.(event);
    } catch {
      // onFallback is an observer; its failure must not change the outcome.
    }
    return fallbackValue;
  };

  return async ({ signal, next }) => {
    try {
      const value = await next();
      return failure.isFailedValue(value)
        ? useFallback({ error: undefined, returnedFalse: true })
        : value;
    } catch (error) {
      if (signal.aborted || !failure.isFailedError(error)) {
        throw error;
      }
      return useFallback({ error, returnedFalse: false });
    }
  };
}
