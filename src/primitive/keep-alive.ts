// A `run*`'s hold while its function runs: the function's signal, and the keep-alive that
// refreshes the hold and aborts that signal when the hold is lost. Nothing here knows which
// primitive holds (a lock, a semaphore's slot, a shared lock's side): it asks a `KeptHold`.

import { onAbort } from "../lifecycle/abort-listeners.js";
import type { ITimeSpan, TimeSpan } from "../time-span/time-span.js";
import { type DueEntry, DueQueue } from "../timers/due-queue.js";
import { MAX_TIMER_MS, timerMs } from "../timers/timers.js";

/**
 * The margin a holder takes off its own reckoning of when its hold ends (Redlock's): the hold
 * may have ended `ttl × CLOCK_DRIFT_FACTOR + CLOCK_DRIFT_MS` before the send time of the acquire
 * or refresh plus the TTL, since the holder's clock and the backend's may run at rates up to 1%
 * apart, and their timers fire a millisecond or two apart. A `run*` function's signal aborts at
 * that moment, whether or not a refresh has answered by then.
 */
export const CLOCK_DRIFT_FACTOR = 0.01;
/** See {@link CLOCK_DRIFT_FACTOR}. */
export const CLOCK_DRIFT_MS = 2;

/** The performance.now() time by which a hold asked for at `sentAt` may have ended. */
export function holdEnd(sentAt: number, ttl: TimeSpan): number {
  const ms = ttl.toMilliseconds();
  return sentAt + ms - (ms * CLOCK_DRIFT_FACTOR + CLOCK_DRIFT_MS);
}

/** What keeping a hold alive asks of the primitive that holds it. */
export type KeptHold = {
  /** The performance.now() time by which the hold may have ended (`Infinity`: never). */
  expiresAt(): number;
  /** Renews the hold for its own TTL: `false` when it is lost; rejects on a backend failure. */
  renew(): Promise<boolean>;
  /** The error the run's signal aborts with when the hold is lost. */
  lostError(): Error;
};

/** A run's `autoRefresh` setting (`LockAutoRefreshSettings` and its kin). */
export type KeepAliveSettings =
  | boolean
  | { readonly interval?: ITimeSpan | undefined; readonly maxHoldTime?: ITimeSpan | undefined };

/**
 * One `run*` while its function runs: the function's signal, made only when the function asks
 * for it (an AbortController costs microseconds on Node 20, more than an in-process hold), and
 * its keep-alive (its place in a refresh queue, and the timer that aborts the signal when the
 * hold may have ended with no refresh answered in time).
 */
export class HeldRun implements DueEntry {
  readonly #callerSignal: AbortSignal;
  readonly #hold: KeptHold;
  #controller: AbortController | undefined;
  #lost: Error | undefined;
  /** Removes the listener on the caller's signal, while there is one. */
  #stopListening: (() => void) | undefined;
  #stopped = false;
  /** `autoRefresh: false`: only a signal somebody reads needs the timer that aborts it. */
  #expireOnSignal = false;
  /** A timer of its own, for the rare waits off the regular interval (a refresh retried). */
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  /**
   * Aborts the signal when the hold may have ended: armed only while no answered refresh
   * stands between now and then (a refresh under way or failing, after `maxHoldTime`, or with
   * `autoRefresh: false` once the signal is read).
   */
  #expiryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Keep-alive: the performance.now() time refreshing stops. */
  #stopAt = Number.POSITIVE_INFINITY;
  /** Keep-alive: ms between refreshes. */
  #every = 0;
  /** DueEntry: the next refresh, in the queue of the runs that refresh every `#every` ms. */
  dueAt = 0;
  dueQueue: DueQueue | undefined;
  prevDue: DueEntry | undefined;
  nextDue: DueEntry | undefined;

  constructor(callerSignal: AbortSignal, hold: KeptHold) {
    this.#callerSignal = callerSignal;
    this.#hold = hold;
  }

  /** Aborted when the caller's signal aborts, or with the hold's lost error when it is lost. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#lost !== undefined) {
        this.#controller.abort(this.#lost);
      } else if (this.#callerSignal.aborted) {
        this.#controller.abort(this.#callerSignal.reason);
      } else if (!this.#stopped) {
        // A listener removed by `end`, rather than AbortSignal.any: on Node 20 every `any`
        // over a long-lived caller signal stays referenced by it (nodejs/node#55351). Shared
        // with the other runs on that signal: many runs do not make many listeners.
        this.#stopListening = onAbort(this.#callerSignal, () => this.handleEvent());
        if (this.#expireOnSignal) {
          this.#loseAtExpiry();
        }
      }
    }
    return this.#controller.signal;
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    this.#controller?.abort(this.#callerSignal.reason);
  }

  /**
   * Refreshes the hold (of `ttlMs`) every interval until the run ends, by default every
   * `refreshFraction` of the TTL.
   */
  keepAlive(settings: KeepAliveSettings, ttlMs: number, refreshFraction: number): void {
    if (settings === false) {
      this.#expireOnSignal = true;
      return;
    }
    const interval = settings === true ? undefined : settings.interval;
    const maxHoldTime = settings === true ? undefined : settings.maxHoldTime;
    this.#every = Math.min(interval?.toMilliseconds() ?? ttlMs * refreshFraction, MAX_TIMER_MS);
    if (maxHoldTime !== undefined) {
      this.#stopAt = performance.now() + maxHoldTime.toMilliseconds();
    }
    this.#refreshLater();
  }

  end(): void {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#expiryTimer);
    DueQueue.leave(this);
    this.#stopListening?.();
    this.#stopListening = undefined;
  }

  /** A refresh is due (called by its queue). */
  due(): void {
    void this.#refresh();
  }

  async #refresh(): Promise<void> {
    if (this.#stopped || this.#lost !== undefined) {
      return;
    }
    if (performance.now() >= this.#stopAt) {
      // The cap is reached: the hold runs out one TTL after the last refresh.
      this.#loseAtExpiry();
      return;
    }
    // A refresh may never answer (ioredis queues commands while it reconnects): the signal
    // aborts when the hold may have ended, answered or not.
    if (this.#expiryTimer === undefined) {
      this.#loseAtExpiry();
    }
    let refreshed: boolean | "error";
    try {
      refreshed = await this.#hold.renew();
    } catch {
      refreshed = "error";
    }
    if (this.#stopped || this.#lost !== undefined) {
      return;
    }
    if (refreshed === false || (refreshed === "error" && this.#untilExpiry() <= 0)) {
      this.#lose();
    } else if (refreshed === "error") {
      // A passing backend failure: try again before the hold runs out (the expiry timer stays).
      const retryIn = Math.min(this.#every, this.#untilExpiry() / 2);
      this.#retryTimer = setTimeout(() => void this.#refresh(), timerMs(retryIn));
    } else {
      clearTimeout(this.#expiryTimer);
      this.#expiryTimer = undefined;
      this.#refreshLater();
    }
  }

  /** Queues the next refresh; should the hold end before it is due, aborts then. */
  #refreshLater(): void {
    DueQueue.join(this, this.#every);
    if (this.dueAt >= this.#hold.expiresAt()) {
      this.#loseAtExpiry();
    }
  }

  /**
   * Aborts the signal when the hold may have ended. The time is read again when the timer
   * fires: a refresh may have moved it meanwhile, and timers are capped at MAX_TIMER_MS.
   */
  #loseAtExpiry(): void {
    if (this.#stopped || this.#lost !== undefined) {
      return;
    }
    clearTimeout(this.#expiryTimer);
    const left = this.#untilExpiry();
    if (left <= 0) {
      this.#lose();
      return;
    }
    this.#expiryTimer = setTimeout(() => this.#loseAtExpiry(), timerMs(left));
  }

  #untilExpiry(): number {
    return this.#hold.expiresAt() - performance.now();
  }

  #lose(): void {
    if (this.#lost === undefined) {
      const error = this.#hold.lostError();
      this.#lost = error;
      clearTimeout(this.#retryTimer);
      clearTimeout(this.#expiryTimer);
      DueQueue.leave(this);
      this.#controller?.abort(error);
    }
  }
}
