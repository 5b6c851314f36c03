// Watching what a primitive or an adapter does, without waiting a fixed time for it to happen:
// the pending promises of waits, tasks and signals every conformance suite looks at.
import { setTimeout as sleep } from "node:timers/promises";

/** How a watched promise ended, and when (performance.now()). */
export type Outcome = { resolved: boolean; value: unknown; reason: unknown; at: number };

/** Watches a promise without letting its rejection go unhandled in the meantime. */
export function observe(promise: Promise<unknown>): {
  isSettled: () => boolean;
  outcome: Promise<Outcome>;
} {
  let settled = false;
  const settle = (resolved: boolean, value: unknown, reason: unknown): Outcome => {
    settled = true;
    return { resolved, value, reason, at: performance.now() };
  };
  return {
    isSettled: () => settled,
    outcome: promise.then(
      (value) => settle(true, value, undefined),
      (reason: unknown) => settle(false, undefined, reason),
    ),
  };
}

/** What a wait ended with (a hand-off, or nothing when woken or timed out), or "pending" after `ms`. */
export async function endOf<T>(waiting: Promise<T>, ms: number): Promise<T | "pending"> {
  const timer = new AbortController();
  try {
    return await Promise.race([waiting, sleep(ms, "pending" as const, { signal: timer.signal })]);
  } finally {
    timer.abort();
  }
}

/**
 * How `task` ended and how long it took, or "still pending" after `limit` ms (so that a
 * primitive that hangs fails the test rather than the run).
 */
export async function outcomeWithin(
  task: PromiseLike<unknown>,
  limit = 5_000,
): Promise<{ value?: unknown; error?: unknown; pending?: true; took: number }> {
  const start = performance.now();
  const outcome = await Promise.race([
    Promise.resolve(task).then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    ),
    sleep(limit).then(() => ({ pending: true as const })),
  ]);
  return { ...outcome, took: performance.now() - start };
}

/** Resolves when `signal` aborts, or after `limit` ms (so a broken primitive fails, not hangs). */
export async function abortedWithin(signal: AbortSignal, limit = 5_000): Promise<boolean> {
  if (!signal.aborted) {
    await Promise.race([
      new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true })),
      sleep(limit),
    ]);
  }
  return signal.aborted;
}

/**
 * Starts a lazy task now (a `Task` runs once awaited), so a test can act while it runs. Its
 * rejection counts as handled: a test may await other things before looking at it (an aborted
 * wait of a backend that queues rejects while the test awaits the release).
 */
export function started<T>(task: PromiseLike<T>): Promise<T> {
  const running = Promise.resolve(task);
  running.catch(() => {});
  return running;
}

/** A signal nothing aborts. */
export function neverAborted(): AbortSignal {
  return new AbortController().signal;
}
