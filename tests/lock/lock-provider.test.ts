import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { MemoryLockAdapter } from "../../src/lock/adapters/memory/memory-lock-adapter.js";
import type { ILockAdapter } from "../../src/lock/contracts/lock-adapter.js";
import { LOCK_EVENTS } from "../../src/lock/contracts/lock-events.js";
import { LOCK_STATE } from "../../src/lock/contracts/lock-state.js";
import { LockProvider } from "../../src/lock/lock-provider.js";
import { lockProviderTestSuite } from "../../src/lock/test-suites/lock-provider-test-suite.js";
import { CLOCK_DRIFT_FACTOR, CLOCK_DRIFT_MS } from "../../src/primitive/keep-alive.js";
import { timeout } from "../../src/resilience/timeout.js";
import { Task } from "../../src/task/task.js";
import { TimeSpan } from "../../src/time-span/time-span.js";

const ms = (milliseconds: number) => TimeSpan.fromMilliseconds(milliseconds);
const DAY_MS = 24 * 60 * 60 * 1_000;

/** Resolves once `done()`; fails naming `what` after 10 s (generous: the host may be busy). */
async function waitedFor(done: () => boolean, what: string): Promise<void> {
  await vi.waitFor(() => expect(done(), what).toBe(true), { timeout: 10_000, interval: 5 });
}

/** The memory adapter without its release signal: blocking acquires poll at their interval. */
function polling(adapter: MemoryLockAdapter): ILockAdapter {
  return {
    acquire: (key, lockId, ttl) => adapter.acquire(key, lockId, ttl),
    release: (key, lockId) => adapter.release(key, lockId),
    forceRelease: (key) => adapter.forceRelease(key),
    refresh: (key, lockId, ttl) => adapter.refresh(key, lockId, ttl),
    getState: (key) => adapter.getState(key),
  };
}

describe("MemoryLockAdapter", () => {
  lockProviderTestSuite({ createAdapter: () => new MemoryLockAdapter() });
});

describe("MemoryLockAdapter without waitForRelease (blocking acquires poll)", () => {
  lockProviderTestSuite({ createAdapter: () => polling(new MemoryLockAdapter()) });
});

describe("LockProvider on MemoryLockAdapter", () => {
  test("no entry is left behind by runs, blocking waiters, aborted waiters and expired holds", async () => {
    const adapter = new MemoryLockAdapter();
    const provider = new LockProvider({ adapter });
    const holder = provider.create("a", { ttl: ms(100) });
    await holder.acquire();
    const waiters = Array.from({ length: 5 }, () =>
      provider.create("a", { ttl: ms(5_000) }).runBlocking(() => sleep(5), {
        time: ms(5_000),
      }),
    );
    const aborted = provider
      .create("a")
      .acquireBlocking({ time: ms(5_000) })
      .pipe(timeout({ waitTime: ms(20) }));
    await expect(aborted).rejects.toThrow();
    const results = await Promise.all(waiters);
    expect(results.every(([acquired]) => acquired)).toBe(true);
    await provider.create("b").runOrFail(() => undefined);
    expect(adapter.size).toBe(0);
  });

  test("locks of one provider on one adapter take turns in arrival order once released", async () => {
    const memory = new MemoryLockAdapter();
    let waits = 0;
    const adapter: ILockAdapter = {
      ...polling(memory),
      waitForRelease: (...args) => {
        waits += 1;
        return memory.waitForRelease(...args);
      },
    };
    const provider = new LockProvider({ adapter });
    const holder = provider.create("k", { ttl: ms(5_000) });
    await holder.acquire();
    const order: number[] = [];
    const waiters = [0, 1, 2].map((n) =>
      provider.create("k", { ttl: ms(5_000) }).runBlockingOrFail(
        async () => {
          order.push(n);
          await sleep(5);
        },
        { time: ms(5_000) },
      ),
    );
    // Started (tasks are lazy) and queued: the memory adapter queues a wait in the call.
    const running = Promise.all(waiters);
    await waitedFor(() => waits === 3, "the three waits");
    await holder.release();
    await running;
    expect(order).toEqual([0, 1, 2]);
    expect(await holder.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
  });
});

describe("blocking acquires on MemoryLockAdapter are handed the key", () => {
  test("one attempt per waiting acquire, and a newcomer at the release does not jump the queue", async () => {
    const memory = new MemoryLockAdapter();
    let attempts = 0;
    let waits = 0;
    const adapter: ILockAdapter = {
      ...polling(memory),
      acquire: (key, lockId, ttl) => {
        attempts += 1;
        return memory.acquire(key, lockId, ttl);
      },
      waitForRelease: (...args) => {
        waits += 1;
        return memory.waitForRelease(...args);
      },
    };
    const provider = new LockProvider({ adapter });
    const holder = provider.create("k", { ttl: ms(5_000) });
    await holder.acquire();
    const order: number[] = [];
    const waiters = [0, 1, 2].map((n) =>
      provider.create("k", { ttl: ms(5_000) }).runBlockingOrFail(
        async () => {
          order.push(n);
          await sleep(5);
        },
        { time: ms(5_000) },
      ),
    );
    const running = Promise.all(waiters);
    await waitedFor(() => waits === 3, "the three waits");
    expect(attempts).toBe(4);
    await holder.release();
    const newcomer = provider.create("k");
    expect(await newcomer.acquire()).toBe(false);
    await running;
    expect(order).toEqual([0, 1, 2]);
    // The holder's and newcomer's attempts, and one per waiter: none was retried.
    expect(attempts).toBe(5);
    expect(memory.size).toBe(0);
  });
});

// The memory adapter and the lock both read performance.now(), so a fake clock can run
// days in milliseconds: what real time cannot show about TTLs beyond setTimeout's 2^31 ms.
describe("TTLs beyond the timer range, on a fake clock", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  test("a 30-day lock stays held through a 60-day run, refreshed every 10 days", async () => {
    const provider = new LockProvider({ adapter: new MemoryLockAdapter() });
    const refreshed: number[] = [];
    await provider.addListener(LOCK_EVENTS.REFRESHED, () => {
      refreshed.push(performance.now());
    });
    const lock = provider.create("k", { ttl: TimeSpan.fromDays(30) });
    const competitor = provider.create("k");
    const run = lock.runOrFail(async ({ signal }) => {
      await Task.delay(TimeSpan.fromDays(60));
      return { state: await lock.getState(), aborted: signal.aborted };
    });
    const settled = run.then((value) => value);
    await vi.advanceTimersByTimeAsync(45 * DAY_MS);
    expect(await competitor.acquire()).toBe(false);
    await vi.advanceTimersByTimeAsync(16 * DAY_MS);
    const result = await settled;
    expect(result.aborted).toBe(false);
    expect(result.state).toMatchObject({ type: LOCK_STATE.ACQUIRED });
    expect(refreshed.length).toBeGreaterThanOrEqual(5);
    expect(refreshed.length).toBeLessThanOrEqual(7);
  });

  // The "hold runs out" timer of the maxHoldTime cap is re-armed past the 2^31-1 ms timer range.
  test("with maxHoldTime, a 40-day hold is reported lost when it runs out, not at the 24.8-day timer limit", async () => {
    const provider = new LockProvider({ adapter: new MemoryLockAdapter() });
    const lock = provider.create("k", { ttl: TimeSpan.fromDays(40) });
    const start = performance.now();
    let abortedAfter: number | undefined;
    const run = lock.runOrFail(
      async ({ signal }) => {
        await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
        abortedAfter = performance.now() - start;
      },
      { autoRefresh: { interval: ms(10), maxHoldTime: ms(1) } },
    );
    const settled = run.then(() => undefined);
    await vi.advanceTimersByTimeAsync(30 * DAY_MS);
    expect(abortedAfter).toBeUndefined();
    expect((await lock.getState()).type).toBe(LOCK_STATE.ACQUIRED);
    await vi.advanceTimersByTimeAsync(11 * DAY_MS);
    await settled;
    // When the hold may have ended by the lock's own reckoning: 40 days less the drift margin.
    const holdEnd = 40 * DAY_MS * (1 - CLOCK_DRIFT_FACTOR) - CLOCK_DRIFT_MS;
    expect(abortedAfter).toBeGreaterThanOrEqual(holdEnd - 1_000);
    expect(abortedAfter).toBeLessThan(40 * DAY_MS);
  });
});
