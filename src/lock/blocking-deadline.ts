// The cut-off of a blocking acquire: whatever the backend does, the acquire ends by then. Any
// primitive's blocking acquire (a lock, a semaphore's slot) races its backend calls against one.

import { timerMs } from "../timers/timers.js";

/**
 * How long past its `time` a blocking acquire still waits for the backend's answer to a call
 * under way (ms). A healthy backend answers well within it (Redis in under a millisecond, SQL in
 * a few, a distant or majority-acknowledged write in tens); one that does not (stopped, its
 * connection hanging, a statement blocked on a row lock) is given up on, and the acquire
 * resolves `false` (or throws `FailedAcquireLockError`) at `time` plus this, at the latest.
 */
export const BLOCKING_SLACK_MS = 250;

/** What `BlockingDeadline.race` answers when the cut-off came first. */
export const CUT_SHORT = Symbol("cut short");

/**
 * When a blocking acquire stops waiting for the backend: `after` ms from its start (its `time`
 * plus BLOCKING_SLACK_MS). One timer for the whole acquire, however many calls it makes. It
 * does not listen to the caller's signal: callers share signals among many acquires (a
 * listener each would pile up on it), and the adapter's wait and the pauses already end at an
 * abort; only a call the backend does not answer outlives the abort, until the cut-off.
 */
export class BlockingDeadline {
  readonly #at: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #passed = false;
  /** Settles the race under way. */
  #cut: ((value: typeof CUT_SHORT) => void) | undefined;

  constructor(readonly after: number) {
    this.#at = performance.now() + after;
    this.#arm();
  }

  /** `pending`'s outcome, or CUT_SHORT when the cut-off passes first. */
  race<T>(pending: Promise<T>): Promise<T | typeof CUT_SHORT> {
    if (this.#passed) {
      return Promise.resolve(CUT_SHORT);
    }
    return new Promise((resolve, reject) => {
      this.#cut = resolve;
      pending.then(resolve, reject);
    });
  }

  end(): void {
    clearTimeout(this.#timer);
    this.#cut = undefined;
  }

  /** Re-armed when it fires early, or past the timer range. */
  #arm(): void {
    const left = this.#at - performance.now();
    if (left > 0) {
      this.#timer = setTimeout(() => this.#arm(), timerMs(left));
      return;
    }
    this.#passed = true;
    this.#cut?.(CUT_SHORT);
    this.#cut = undefined;
  }
}
