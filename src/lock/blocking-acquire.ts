// A blocking acquire: try once and, while the key is held, wait (for the adapter's signal of a
// release, or a pause) and try again, until the time runs out; whatever the backend does, it ends
// at its cut-off. Nothing here knows which primitive acquires (a lock, a semaphore's slot, a
// shared lock's side): it asks the primitive's BlockingAcquirer.

import { TimeoutError } from "../resilience/resilience-errors.js";
import { type ITimeSpan, TimeSpan } from "../time-span/time-span.js";
import { delay } from "../timers/timers.js";
import { BLOCKING_SLACK_MS, BlockingDeadline, CUT_SHORT } from "./blocking-deadline.js";

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
};

/**
 * What a blocking acquire asks of the primitive (its hold object: nothing is made per call). A
 * step that sends returns the adapter's own promise, unchecked: it is raced against the cut-off,
 * and each promise layer costs a tick.
 */
export type BlockingAcquirer<TResult extends AcquireAnswer, TClaim, TCutShort> = {
  /** Work of this owner the acquire waits for before it sends anything (a late release). */
  unsettled(): Promise<void> | undefined;
  sendAcquire(): Promise<unknown>;
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
export async function acquireBlocking<TResult extends AcquireAnswer, TClaim, TCutShort>(
  acquirer: BlockingAcquirer<TResult, TClaim, TCutShort>,
  context: BlockingContext,
  settings: { readonly time?: ITimeSpan | undefined; readonly interval?: ITimeSpan | undefined },
  signal: AbortSignal,
): Promise<TResult | TCutShort> {
  const time = (settings.time ?? context.blockingTime).toMilliseconds();
  const interval = (settings.interval ?? context.blockingInterval).toMilliseconds();
  const deadline = performance.now() + time;
  // Whatever the backend does, the acquire ends by then: a call still unanswered is given up.
  const cutOff = new BlockingDeadline(time + BLOCKING_SLACK_MS);
  try {
    // A retried release of this owner (or a late one of a call given up) must not free the new
    // hold: nothing is sent before it ends.
    const unsettled = acquirer.unsettled();
    if (unsettled !== undefined && (await cutOff.race(unsettled)) === CUT_SHORT) {
      return gaveUp(acquirer, "acquire", undefined, cutOff, signal);
    }
    const { adapter } = context;
    return await acquireUntil(acquirer, adapter, deadline, interval, cutOff, signal);
  } finally {
    cutOff.end();
  }
}

/** acquireBlocking's attempts and waits, each call raced against `cutOff`. */
async function acquireUntil<TResult extends AcquireAnswer, TClaim, TCutShort>(
  acquirer: BlockingAcquirer<TResult, TClaim, TCutShort>,
  adapter: WaitingAdapter,
  deadline: number,
  interval: number,
  cutOff: BlockingDeadline,
  signal: AbortSignal,
): Promise<TResult | TCutShort> {
  let requestedAt = performance.now();
  let claim: TClaim | undefined;
  /** The last answer that named the holder. */
  let refused: Refused<TResult> | undefined;
  // An adapter whose claimed wait is also an acquire starts with the wait: one round trip,
  // whether the key is free or the wait queues. The last attempt is an acquire: its answer
  // (the holder) is the result.
  const waitFirst = adapter.waitAcquires === true && adapter.waitForRelease !== undefined;
  for (;;) {
    let wait = deadline - performance.now();
    let pending: Promise<unknown>;
    let answer: unknown;
    if (!waitFirst || wait <= 0) {
      try {
        pending = acquirer.sendAcquire();
        answer = await cutOff.race(pending);
      } catch (error) {
        throw acquirer.backendError("acquire", error);
      }
      if (answer === CUT_SHORT) {
        return gaveUp(acquirer, "acquire", refused, cutOff, signal, pending);
      }
      const result = acquirer.took(answer, requestedAt, signal);
      const left = deadline - performance.now();
      if (result.acquired || left <= 0) {
        return result;
      }
      refused = result as Refused<TResult>;
      wait = waitAfter(refused, left, adapter);
    }
    const waitedFrom = performance.now();
    if (adapter.waitForRelease === undefined) {
      await delay(TimeSpan.fromMilliseconds(Math.min(wait, interval)), signal);
    } else {
      claim ??= acquirer.claim();
      try {
        pending = acquirer.sendWait(wait, signal, claim);
        answer = await cutOff.race(pending);
      } catch (error) {
        // An abort is the caller giving up, not a backend failure: neither wrapped nor reported.
        throw signal.aborted ? signal.reason : acquirer.backendError("waitForRelease", error);
      }
      if (answer === CUT_SHORT) {
        return gaveUp(acquirer, "waitForRelease", refused, cutOff, signal, pending);
      }
      const handOff = acquirer.handedOver(answer, waitedFrom, signal);
      if (handOff !== undefined) {
        return handOff;
      }
    }
    requestedAt = performance.now();
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

/**
 * A blocking acquire whose cut-off passed with `operation` unanswered: a hold the call grants
 * late is let go; the caller's abort is thrown; else the acquire fails as one that ran out of
 * time, and the primitive reports the backend that did not answer in time.
 */
function gaveUp<TResult extends AcquireAnswer, TClaim, TCutShort>(
  acquirer: BlockingAcquirer<TResult, TClaim, TCutShort>,
  operation: string,
  refused: Refused<TResult> | undefined,
  cutOff: BlockingDeadline,
  signal: AbortSignal,
  pending?: Promise<unknown>,
): TCutShort {
  if (pending !== undefined) {
    acquirer.abandon(pending);
  }
  if (signal.aborted) {
    throw signal.reason;
  }
  const cause = new TimeoutError(TimeSpan.fromMilliseconds(cutOff.after));
  return acquirer.cutShort(operation, refused, cause);
}
