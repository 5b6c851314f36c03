// A blocking acquire: try once and, while the key is held, wait (for the adapter's signal of a
// release, or a pause) and try again, until the time runs out; whatever the backend does, it ends
// at its cut-off. Nothing here knows which primitive acquires (a lock, a semaphore's slot, a
// shared lock's side): it asks the primitive's BlockingAcquirer.

import { TimeoutError } from "../resilience/resilience-errors.js";
import { type ITimeSpan, TimeSpan } from "../time-span/time-span.js";
import { type DueEntry, DueQueue } from "../timers/due-queue.js";
import { delay } from "../timers/timers.js";
import { BLOCKING_SLACK_MS } from "./blocking-deadline.js";

/** An acquire's answer, as far as waiting goes: taken, or held with some time left. */
export type AcquireAnswer =
  | { readonly acquired: true }
  | { readonly acquired: false; readonly remainingTime: TimeSpan | null };

type Refused<TResult extends AcquireAnswer> = Extract<TResult, { acquired: false }>;

/** The adapter's capabilities that shape the waits (`ILockAdapter`'s, and its kin's). */
export type WaitingAdapter = {
  readonly waitForRelease?: unknown;
  readonly waitAcquires?: boolean;
  readonly waitsPastExpiry?: boolean;
};

/** Where a blocking acquire takes its defaults (a provider's context). */
export type BlockingContext = {
  readonly adapter: WaitingAdapter;
  readonly blockingTime: TimeSpan;
  readonly blockingInterval: TimeSpan;
  /** The provider's acquires under way, ended by its `close()`. */
  readonly waits: BlockingWaits;
};

/** A blocking acquire under way, as its provider's close() sees it. */
type ClosableWait = { closed(error: Error): void };

/**
 * The blocking acquires under way of one provider. Its `close()` ends them all at once, on every
 * adapter (a polling wait, a memory adapter's queued waiter, a call in flight), and one begun
 * after it fails at once: no wait outlives its provider and takes a hold nobody will release.
 */
export class BlockingWaits {
  readonly #waits = new Set<ClosableWait>();
  #closed: Error | undefined;

  /** Joins `wait`; the error to fail it with when the provider is closed already. */
  join(wait: ClosableWait): Error | undefined {
    if (this.#closed === undefined) {
      this.#waits.add(wait);
    }
    return this.#closed;
  }

  leave(wait: ClosableWait): void {
    this.#waits.delete(wait);
  }

  /** Ends every wait under way, and every later one, with `error`. */
  close(error: Error): void {
    this.#closed ??= error;
    const waits = [...this.#waits];
    this.#waits.clear();
    for (const wait of waits) {
      wait.closed(this.#closed);
    }
  }
}

/**
 * What a blocking acquire asks of the primitive (its hold object: nothing is made per call). A
 * step that sends returns the adapter's own promise, unchecked: it is raced against the cut-off,
 * and each promise layer costs a tick.
 */
export type BlockingAcquirer<TResult extends AcquireAnswer, TClaim, TCutShort> = {
  /** Work of this owner the acquire waits for before it sends anything (a late release). */
  unsettled(): Promise<void> | undefined;
  /**
   * Sends one attempt. `nextAttemptMs`: on an adapter without `waitForRelease`, when this
   * attempt is refused, the next one comes within this many ms (a polling shared lock's writer
   * records its intent for that long); `undefined` for an attempt with none after it, or when
   * the adapter queues waits. The lock and the semaphore ignore it.
   */
  sendAcquire(nextAttemptMs?: number): Promise<unknown>;
  /** Checks an acquire's answer, and records a hold asked for at `requestedAt` (performance.now()). */
  took(answer: unknown, requestedAt: number, signal: AbortSignal): TResult;
  /**
   * What the waits of one acquire claim (made at its first wait): it lets the adapter hand the
   * key over at the release (if it can), so no second attempt, and no newcomer taking the key
   * between the release and this waiter's retry.
   */
  claim(): TClaim;
  /**
   * Sends one wait for a release, which the adapter ends by `ms` (before the cut-off, when the
   * backend answers); only when the adapter has `waitForRelease`. It gets the caller's signal,
   * not one aborted at the cut-off: an AbortController costs microseconds, and leaving a hung
   * backend's queue needs the backend anyway (a late hand-off is let go by `abandon`).
   */
  sendWait(ms: number, signal: AbortSignal, claim: TClaim): Promise<unknown>;
  /**
   * Checks a wait's answer: the hold it handed over (recorded, as taken at `waitedFrom` at the
   * earliest), or `undefined`.
   */
  handedOver(answer: unknown, waitedFrom: number, signal: AbortSignal): TResult | undefined;
  /** A failure of the adapter's `operation`: reported; returns the error to throw. */
  backendError(operation: string, error: unknown): Error;
  /** A call given up on at the cut-off: a hold it grants late is let go. */
  abandon(pending: Promise<unknown>): void;
  /**
   * The result of an acquire whose cut-off passed with `operation` unanswered: `refused` is the
   * last answer that named the holder. Reports `cause` (the backend did not answer in time).
   */
  cutShort(
    operation: string,
    refused: Refused<TResult> | undefined,
    cause: TimeoutError,
  ): TCutShort;
};

/** Tries, waits and tries again until `settings.time` runs out (or the context's default time). */
export function acquireBlocking<TResult extends AcquireAnswer, TClaim, TCutShort>(
  acquirer: BlockingAcquirer<TResult, TClaim, TCutShort>,
  context: BlockingContext,
  settings: { readonly time?: ITimeSpan | undefined; readonly interval?: ITimeSpan | undefined },
  signal: AbortSignal,
): Promise<TResult | TCutShort> {
  const time = (settings.time ?? context.blockingTime).toMilliseconds();
  const interval = (settings.interval ?? context.blockingInterval).toMilliseconds();
  return new Promise((resolve, reject) => {
    new BlockingAcquire(acquirer, context, time, interval, signal, resolve, reject);
  });
}

/** What a blocking acquire has under way. */
type Call = "unsettled" | "acquire" | "waitForRelease" | "pause";

/**
 * One blocking acquire: its attempts and waits, each call raced against the cut-off. Written
 * as callbacks on one object, not as async functions: this is every contended hand-off's path,
 * and each async frame, await and race costs a promise, a tick and garbage.
 *
 * The cut-off: whatever the backend does, the acquire ends `time` plus BLOCKING_SLACK_MS after
 * it began, a call still unanswered then given up. It falls due in a shared `DueQueue` (a
 * timer per acquire would cost more than an in-process hand-off). It does not listen to the
 * caller's signal: callers share signals among many acquires (a listener each would pile up on
 * it), and the adapter's wait and the pauses already end at an abort; only a call the backend
 * does not answer outlives the abort, until the cut-off.
 */
class BlockingAcquire<TResult extends AcquireAnswer, TClaim, TCutShort>
  implements DueEntry, ClosableWait
{
  readonly #acquirer: BlockingAcquirer<TResult, TClaim, TCutShort>;
  readonly #adapter: WaitingAdapter;
  readonly #waits: BlockingWaits;
  readonly #interval: number;
  readonly #signal: AbortSignal;
  readonly #resolve: (result: TResult | TCutShort) => void;
  readonly #reject: (error: unknown) => void;
  /** performance.now() time the acquire's `time` runs out. */
  readonly #deadline: number;
  /** ms from the start to the cut-off. */
  readonly #cutOffAfter: number;
  #cutOffPassed = false;
  #call: Call = "unsettled";
  /** The call under way; `undefined` between calls and once the acquire has settled. */
  #pending: Promise<unknown> | undefined;
  #requestedAt: number;
  #waitedFrom = 0;
  #claim: TClaim | undefined;
  /** The last answer that named the holder. */
  #refused: Refused<TResult> | undefined;
  /** DueEntry: the cut-off. */
  dueAt = 0;
  dueQueue: DueQueue | undefined;
  prevDue: DueEntry | undefined;
  nextDue: DueEntry | undefined;

  constructor(
    acquirer: BlockingAcquirer<TResult, TClaim, TCutShort>,
    context: BlockingContext,
    time: number,
    interval: number,
    signal: AbortSignal,
    resolve: (result: TResult | TCutShort) => void,
    reject: (error: unknown) => void,
  ) {
    this.#acquirer = acquirer;
    this.#adapter = context.adapter;
    this.#waits = context.waits;
    this.#interval = interval;
    this.#signal = signal;
    this.#resolve = resolve;
    this.#reject = reject;
    const now = performance.now();
    this.#requestedAt = now;
    this.#deadline = now + time;
    this.#cutOffAfter = time + BLOCKING_SLACK_MS;
    DueQueue.join(this, this.#cutOffAfter, now);
    const closed = this.#waits.join(this);
    if (closed !== undefined) {
      this.#fail(acquirer.backendError("acquire", closed));
      return;
    }
    // A retried release of this owner (or a late one of a call given up) must not free the new
    // hold: nothing is sent before it ends.
    try {
      const unsettled = acquirer.unsettled();
      if (unsettled === undefined) {
        this.#next(now);
      } else {
        this.#send("unsettled", unsettled);
      }
    } catch (error) {
      this.#fail(error);
    }
  }

  /**
   * The next call. An adapter whose claimed wait is also an acquire starts with the wait (one
   * round trip, whether the key is free or the wait queues); the last attempt is an acquire:
   * its answer (the holder) is the result.
   */
  #next(now: number): void {
    const wait = this.#deadline - now;
    const adapter = this.#adapter;
    if (wait > 0 && adapter.waitAcquires === true && adapter.waitForRelease) {
      this.#wait(wait, now);
      return;
    }
    const next =
      wait > 0 && adapter.waitForRelease === undefined ? Math.min(this.#interval, wait) : undefined;
    try {
      this.#send("acquire", this.#acquirer.sendAcquire(next));
    } catch (error) {
      this.#fail(this.#acquirer.backendError("acquire", error));
    }
  }

  /** Waits `ms` from `now` for a release (the adapter's signal, or a pause), then tries again. */
  #wait(ms: number, now: number): void {
    this.#waitedFrom = now;
    const signal = this.#signal;
    if (this.#adapter.waitForRelease === undefined) {
      // Not raced: it ends by itself before the cut-off, or at an abort.
      this.#send("pause", delay(TimeSpan.fromMilliseconds(Math.min(ms, this.#interval)), signal));
      return;
    }
    this.#claim ??= this.#acquirer.claim();
    try {
      this.#send("waitForRelease", this.#acquirer.sendWait(ms, signal, this.#claim));
    } catch (error) {
      this.#fail(this.#waitError(error));
    }
  }

  #send(call: Call, pending: Promise<unknown>): void {
    this.#call = call;
    this.#pending = pending;
    // Closures made here, not once per instance as fields: tsx (the bench, users' scripts)
    // names each arrow-function field it makes, at a cost above the rest of a hand-off.
    pending.then(
      (answer) => this.#answered(answer),
      (error: unknown) => this.#failed(error),
    );
    if (this.#cutOffPassed) {
      this.#giveUp();
    }
  }

  #answered(answer: unknown): void {
    if (this.#pending === undefined) {
      return;
    }
    this.#pending = undefined;
    try {
      if (this.#call === "acquire") {
        this.#tookAnswer(answer);
      } else if (this.#call === "waitForRelease") {
        this.#waitAnswer(answer);
      } else {
        // Unsettled work ended, or a pause.
        const now = performance.now();
        this.#requestedAt = now;
        this.#next(now);
      }
    } catch (error) {
      this.#fail(error);
    }
  }

  #failed(error: unknown): void {
    if (this.#pending === undefined) {
      return;
    }
    this.#pending = undefined;
    const call = this.#call;
    // A pause rejects only at an abort, with the signal's reason.
    this.#fail(
      call === "acquire"
        ? this.#acquirer.backendError("acquire", error)
        : call === "waitForRelease"
          ? this.#waitError(error)
          : error,
    );
  }

  #tookAnswer(answer: unknown): void {
    const result = this.#acquirer.took(answer, this.#requestedAt, this.#signal);
    const now = performance.now();
    const left = this.#deadline - now;
    if (result.acquired || left <= 0) {
      this.#settle(result);
      return;
    }
    const refused = result as Refused<TResult>;
    this.#refused = refused;
    this.#wait(waitAfter(refused, left, this.#adapter), now);
  }

  #waitAnswer(answer: unknown): void {
    const handOff = this.#acquirer.handedOver(answer, this.#waitedFrom, this.#signal);
    if (handOff !== undefined) {
      this.#settle(handOff);
      return;
    }
    const now = performance.now();
    this.#requestedAt = now;
    this.#next(now);
  }

  /** An abort is the caller giving up, not a backend failure: neither wrapped nor reported. */
  #waitError(error: unknown): unknown {
    const signal = this.#signal;
    return signal.aborted ? signal.reason : this.#acquirer.backendError("waitForRelease", error);
  }

  /**
   * ClosableWait: the provider was closed. A call under way is given up (a hold it grants late
   * is let go, as at the cut-off), and the acquire fails as the backend failing would.
   */
  closed(error: Error): void {
    const pending = this.#pending;
    if (pending === undefined && this.#call !== "unsettled") {
      return;
    }
    this.#pending = undefined;
    const call = this.#call;
    if (pending !== undefined && (call === "acquire" || call === "waitForRelease")) {
      this.#acquirer.abandon(pending);
    }
    this.#fail(this.#acquirer.backendError(call === "waitForRelease" ? call : "acquire", error));
  }

  /** DueEntry: the cut-off passed. */
  due(): void {
    this.#cutOffPassed = true;
    this.#giveUp();
  }

  /**
   * Past the cut-off: a call under way is given up (a hold it grants late is let go); the
   * caller's abort is thrown; else the acquire fails as one that ran out of time, and the
   * primitive reports the backend that did not answer in time.
   */
  #giveUp(): void {
    const pending = this.#pending;
    if (pending === undefined || this.#call === "pause") {
      return;
    }
    this.#pending = undefined;
    try {
      if (this.#call !== "unsettled") {
        this.#acquirer.abandon(pending);
      }
      const signal = this.#signal;
      if (signal.aborted) {
        throw signal.reason;
      }
      const operation = this.#call === "unsettled" ? "acquire" : this.#call;
      const cause = new TimeoutError(TimeSpan.fromMilliseconds(this.#cutOffAfter));
      this.#settle(this.#acquirer.cutShort(operation, this.#refused, cause));
    } catch (error) {
      this.#fail(error);
    }
  }

  #settle(result: TResult | TCutShort): void {
    DueQueue.leave(this);
    this.#waits.leave(this);
    this.#resolve(result);
  }

  #fail(error: unknown): void {
    DueQueue.leave(this);
    this.#waits.leave(this);
    this.#reject(error);
  }
}

/**
 * When a hold taken by a wait that began at `waitedFrom` (or handed over at a release) started,
 * by the holder's reckoning: after the wait began, or later still by what the adapter says it
 * has left of `ttl` (a long wait would else leave it little or nothing of its lease).
 */
export function handOffStart(
  waitedFrom: number,
  remainingTime: TimeSpan | undefined,
  ttl: TimeSpan | null,
): number {
  if (remainingTime === undefined || ttl === null) {
    return waitedFrom;
  }
  return Math.max(
    waitedFrom,
    performance.now() + remainingTime.toMilliseconds() - ttl.toMilliseconds(),
  );
}

/**
 * How long to wait after `refused`, with `left` ms of the acquire's time left: never past the
 * holder's expiry (it frees the key without any signal), unless the adapter serves its queue
 * then (waking would lose the waiter's place).
 */
function waitAfter(
  refused: AcquireAnswer & { acquired: false },
  left: number,
  adapter: WaitingAdapter,
): number {
  const holderLeft = adapter.waitsPastExpiry
    ? Number.POSITIVE_INFINITY
    : (refused.remainingTime?.toMilliseconds() ?? Number.POSITIVE_INFINITY);
  return Math.max(1, Math.min(left, holderLeft));
}
