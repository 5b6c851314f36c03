// The time every conformance suite (lock, semaphore) reckons with. Real time, on purpose: the
// backend's clock decides expiry, so no fake timer can stand in for it. Every margin is generous,
// because remote servers and loaded CI hosts are slow; no test asserts that something is fast,
// only that it is not slower than a wide bound.
import { expect, vi } from "vitest";
import { TimeSpan } from "../../time-span/time-span.js";

/** A hold this short is surely gone after `PAST_SHORT_TTL`. */
export const SHORT_TTL = TimeSpan.fromMilliseconds(100);
export const PAST_SHORT_TTL = 300;
/**
 * To tell a restarted TTL from one left alone: `RESTART_TTL` into a hold, after `ELAPSED` ms a
 * restarted hold has about `RESTART_TTL` left and an untouched one at most `RESTART_TTL -
 * ELAPSED`. `MIDPOINT` splits the two with 250 ms to spare on either side. Such a check needs the
 * backend to answer within the TTL: it says so with `within`, and runs in `unlessStalled`.
 */
export const RESTART_TTL = TimeSpan.fromMilliseconds(1_000);
export const ELAPSED = 500;
export const MIDPOINT = 750;
/** Long enough never to run out during a test. */
export const LONG_TTL = TimeSpan.fromSeconds(60);
/** What a stranger offers when trying to extend a hold: any extension would show. */
export const EXTENSION = TimeSpan.fromMinutes(10);
/**
 * Time given to a waiter to subscribe (a round trip on a remote backend) before a release, when
 * the suite is not told how to see the waits queued (`queuedWaits`).
 */
export const SUBSCRIBE_GRACE = 100;
/**
 * How long a suite waits for what it expects (an event, a state, queued waits) before failing:
 * far beyond any honest latency, so that a loaded CI host does not fail it, while what never
 * comes still fails the test.
 */
export const PATIENCE_MS = 10_000;
/** "Soon": far below the waits, far above any honest latency. */
export const PROMPTLY = 2_000;

/** A timing check found the machine slower than the test's TTLs allow (see `within`). */
class Stalled extends Error {
  override name = "Stalled" as const;
}

/**
 * Throws `Stalled` when more than `ms` passed since `since` (performance.now()): what the test
 * goes on to check holds only if the backend answered in time.
 */
export function within(since: number, ms: number, what: string): void {
  const took = performance.now() - since;
  if (took > ms) {
    throw new Stalled(
      `${what} took ${took.toFixed(0)} ms, more than the ${ms} ms the check allows`,
    );
  }
}

/** Throws `Stalled`: the test saw what only a machine slower than its TTLs allow explains. */
export function stalled(what: string): never {
  throw new Stalled(what);
}

/**
 * Runs `body` again, up to 3 times, when it found the machine stalled past what its timing
 * checks allow (`within`): a busy database can take longer than a short TTL to answer. `body`
 * must start from a state of its own (a fresh key, or one it clears first).
 */
export async function unlessStalled(body: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await body();
      return;
    } catch (error) {
      if (!(error instanceof Stalled) || attempt === 3) {
        throw error;
      }
    }
  }
}

/**
 * Resolves with `check`'s value once it passes (it throws until then); after PATIENCE_MS fails
 * the test with its last error, prefixed with what was awaited.
 */
export async function eventually<T>(what: string, check: () => T | Promise<T>): Promise<T> {
  try {
    return await vi.waitFor(check, { timeout: PATIENCE_MS, interval: 5 });
  } catch (error) {
    if (error instanceof Error) {
      error.message = `${what}, not within ${PATIENCE_MS} ms: ${error.message}`;
    }
    throw error;
  }
}

/** A remaining time in ms, failing the test when there is none (`null`: no TTL; `undefined`: free). */
export function milliseconds(remainingTime: TimeSpan | null | undefined, what = "a hold"): number {
  expect(remainingTime, `${what} with a TTL has a remaining time`).toBeDefined();
  expect(remainingTime, `${what} with a TTL has a remaining time`).not.toBeNull();
  return remainingTime?.toMilliseconds() ?? Number.NaN;
}
