// How hasp turns a duration into a timer's milliseconds, and the timers that need more than one
// setTimeout. Two kinds, one conversion:
// - a moment on the performance.now() clock (a hold's expiry, a queue's next deadline): armed
//   with `msUntil(at)`, and its callback reads the clock again and re-arms while the moment has
//   not come (the timer range is capped, and a timer may fire a hair before the clock agrees);
// - a length of time (a pause, a wait's deadline): a `Timer`, chained past the timer range.

import { onAbort } from "../lifecycle/abort-listeners.js";

/** setTimeout fires at once for delays beyond 2^31 - 1 ms; longer waits are chained. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * `ms` as a setTimeout delay: whole milliseconds (Node keeps a timer list per distinct
 * duration), at least 1, at most MAX_TIMER_MS (a longer one fires that early: see above).
 */
export function timerMs(ms: number): number {
  return Math.min(Math.max(1, Math.ceil(ms)), MAX_TIMER_MS);
}

/** The setTimeout delay until the performance.now() time `at` (see {@link timerMs}). */
export function msUntil(at: number): number {
  return timerMs(at - performance.now());
}

/** `ms` as the whole milliseconds, at least 1, that a backend's wait or expiry takes. */
export function wholeMs(ms: number): number {
  return Math.max(1, Math.ceil(ms));
}

/**
 * One timer of any length, re-armed by `set`: beyond MAX_TIMER_MS it is chained in steps. It
 * counts the timer's own time, not performance.now(), so fake timers in tests drive it.
 */
export class Timer {
  readonly #fire: () => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** ms still to wait after the step under way. */
  #left = 0;

  constructor(fire: () => void) {
    this.#fire = fire;
  }

  /** Calls `fire` in `ms` (replacing any wait under way). */
  set(ms: number): void {
    clearTimeout(this.#timer);
    this.#left = ms;
    this.#arm();
  }

  clear(): void {
    clearTimeout(this.#timer);
  }

  #arm(): void {
    const step = timerMs(this.#left);
    this.#left -= step;
    this.#timer = setTimeout(this.#fired, step);
  }

  readonly #fired = (): void => {
    if (this.#left > 0) {
      this.#arm();
    } else {
      this.#fire();
    }
  };
}

/** A duration, as `ITimeSpan` gives it (timers sit below time-span: they take its shape, not its type). */
type Duration = { toMilliseconds(): number };

/**
 * Waits `timeSpan` (any length), rejecting with the signal's reason as soon as `signal`
 * aborts; the pending timer is cleared either way.
 */
export function delay(timeSpan: Duration, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) {
    return Promise.reject(signal.reason);
  }
  return new Promise<void>((resolve, reject) => {
    const timer = new Timer(() => {
      stopListening?.();
      resolve();
    });
    const stopListening =
      signal === undefined
        ? undefined
        : onAbort(signal, () => {
            timer.clear();
            reject(signal.reason);
          });
    timer.set(Math.max(0, timeSpan.toMilliseconds()));
  });
}

/** A pause that does not keep the process alive. */
export function pauseUnref(ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref?.();
  });
}
