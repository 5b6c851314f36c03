import { parseSettings } from "../settings/parse-settings.js";
import type { GenericMiddleware, MiddlewareContext } from "../task/middleware.js";
import type { ITimeSpan } from "../time-span/time-span.js";
import { TimeoutError } from "./resilience-errors.js";
import { timeoutSchema } from "./resilience-settings.js";

/** Settings of {@link timeout}. */
export type TimeoutSettings = {
  /** How long the wrapped work may take. Must be positive. */
  waitTime: ITimeSpan;
};

/**
 * Rejects with a {@link TimeoutError} when the wrapped work takes longer than `waitTime`,
 * and aborts the work's signal with that error, so an adapter waiting on the backend stops.
 * Its timer is cleared as soon as the work settles.
 *
 * @throws InvalidArgumentError on bad settings, at once.
 */
export function timeout(settings: TimeoutSettings): GenericMiddleware {
  const { waitTime } = parseSettings("timeout settings", timeoutSchema, settings);

  return async <TValue>({ signal, next }: MiddlewareContext<TValue>) => {
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new TimeoutError(waitTime)),
      waitTime.toMilliseconds(),
    );
    try {
      // The inner run rejects with the abort reason as soon as either signal aborts.
      return await next(AbortSignal.any([signal, controller.signal]));
    } finally {
      clearTimeout(timer);
    }
  };
}
