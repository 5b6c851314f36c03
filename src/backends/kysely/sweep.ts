import type { ITimeSpan } from "../../time-span/time-span.js";
import { MAX_TIMER_MS } from "../../timers/timers.js";

/** What a periodic sweep needs of its adapter's settings. */
export type SweepSettings = {
  readonly sweepInterval?: ITimeSpan | undefined;
  readonly onSweepError?: ((error: unknown) => void) | undefined;
};

/**
 * With `sweepInterval`: runs `removeExpired` that often (a timer that keeps nothing alive), for
 * the adapter named `adapter` in the default warning.
 */
export function startSweep(
  adapter: string,
  removeExpired: () => Promise<unknown>,
  { sweepInterval, onSweepError }: SweepSettings,
): ReturnType<typeof setInterval> | undefined {
  if (sweepInterval === undefined) {
    return undefined;
  }
  const onError =
    onSweepError ?? ((error: unknown) => console.warn(`[hasp] ${adapter} sweep failed:`, error));
  const sweep = setInterval(
    () => {
      removeExpired().catch(onError);
    },
    Math.min(sweepInterval.toMilliseconds(), MAX_TIMER_MS),
  );
  sweep.unref();
  return sweep;
}
