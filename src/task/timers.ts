import type { ITimeSpan } from "../time-span/time-span.js";
import { onAbort } from "./abort-listeners.js";

/** setTimeout fires at once for delays beyond 2^31 - 1 ms; longer waits are chained. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Waits `timeSpan` (any length), rejecting with the signal's reason as soon as `signal`
 * aborts; the pending timer is cleared either way.
 */
export function delay(timeSpan: ITimeSpan, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) {
    return Promise.reject(signal.reason);
  }
  return new Promise<void>((resolve, reject) => {
    let left = Math.max(0, timeSpan.toMilliseconds());
    let timer: ReturnType<typeof setTimeout>;
    const stopListening =
      signal === undefined
        ? undefined
        : onAbort(signal, () => {
            clearTimeout(timer);
            reject(signal.reason);
          });
    const arm = () => {
      const step = Math.min(left, MAX_TIMER_MS);
      left -= step;
      timer = setTimeout(() => {
        if (left > 0) {
          arm();
        } else {
          stopListening?.();
          resolve();
        }
      }, step);
    };
    arm();
  });
}
