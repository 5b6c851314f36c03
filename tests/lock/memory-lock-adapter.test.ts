import { getEventListeners } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, test } from "vitest";
import { MemoryLockAdapter } from "../../src/lock/adapters/memory/memory-lock-adapter.js";
import { LOCK_EVENTS } from "../../src/lock/contracts/lock-events.js";
import { LockProvider } from "../../src/lock/lock-provider.js";
import { lockAdapterTestSuite } from "../../src/lock/test-suites/lock-adapter-test-suite.js";
import { TimeSpan } from "../../src/time-span/time-span.js";

lockAdapterTestSuite({
  createAdapter: () => new MemoryLockAdapter(),
  instancesShareBackend: false,
});

const SHORT_TTL = TimeSpan.fromMilliseconds(50);
const PAST_SHORT_TTL = 200;
const LONG_TTL = TimeSpan.fromMinutes(1);
const never = () => new AbortController().signal;

describe("MemoryLockAdapter", () => {
  test("a released key leaves no entry behind", async () => {
    const adapter = new MemoryLockAdapter();
    await adapter.acquire("a", "alice", LONG_TTL);
    await adapter.acquire("b", "bob", null);
    expect(adapter.size).toBe(2);
    await adapter.release("a", "alice");
    await adapter.release("b", "bob");
    expect(adapter.size).toBe(0);
  });

  test("a force-released key leaves no entry behind", async () => {
    const adapter = new MemoryLockAdapter();
    await adapter.acquire("a", "alice", LONG_TTL);
    await adapter.acquire("b", "bob", null);
    await adapter.forceRelease("a");
    await adapter.forceRelease("b");
    expect(adapter.size).toBe(0);
  });

  test("an expired hold is dropped when its key is next touched", async () => {
    const adapter = new MemoryLockAdapter();
    await adapter.acquire("a", "alice", SHORT_TTL);
    await sleep(PAST_SHORT_TTL);
    expect(await adapter.getState("a")).toBeNull();
    expect(adapter.size).toBe(0);
  });

  test("expired holds of keys nobody touches again are swept as other keys are written", async () => {
    const adapter = new MemoryLockAdapter();
    const expiring = 500;
    for (let i = 0; i < expiring; i += 1) {
      await adapter.acquire(`request:${i}`, "worker", SHORT_TTL);
    }
    await sleep(PAST_SHORT_TTL);
    // Each new key grows the map; a sweep must still come after about as many writes as there
    // are entries, or unique keys (one per request, say) would pile up forever.
    const live = 2 * expiring + 64;
    for (let i = 0; i < live; i += 1) {
      await adapter.acquire(`job:${i}`, "worker", LONG_TTL);
    }
    expect(adapter.size).toBe(live);
    for (let i = 0; i < live; i += 1) {
      await adapter.release(`job:${i}`, "worker");
    }
    expect(adapter.size).toBe(0);
  });

  test("a waiter that timed out or was aborted is gone: later releases do not reach it", async () => {
    // Checked by behaviour: the adapter exposes no count of waiters.
    const adapter = new MemoryLockAdapter();
    await adapter.acquire("a", "alice", LONG_TTL);
    await adapter.waitForRelease("a", TimeSpan.fromMilliseconds(20), never());
    const controller = new AbortController();
    const aborted = adapter.waitForRelease("a", LONG_TTL, controller.signal);
    controller.abort(new Error("gave up"));
    await expect(aborted).rejects.toThrow("gave up");

    expect(await adapter.release("a", "alice")).toBe(true);
    expect(adapter.size).toBe(0);
    await adapter.acquire("a", "alice", LONG_TTL);
    const waiting = adapter.waitForRelease("a", LONG_TTL, never());
    expect(await adapter.release("a", "alice")).toBe(true);
    await expect(waiting).resolves.toBeUndefined();
  });

  test("a waiter leaves nothing on the caller's signal, however it ends", async () => {
    // A caller may pass one long-lived signal (a process-wide shutdown signal) to every wait.
    const adapter = new MemoryLockAdapter();
    const shutdown = new AbortController();
    await adapter.acquire("a", "alice", LONG_TTL);
    await adapter.waitForRelease("a", TimeSpan.fromMilliseconds(1), shutdown.signal);
    const woken = adapter.waitForRelease("a", LONG_TTL, shutdown.signal);
    expect(getEventListeners(shutdown.signal, "abort").length).toBeLessThanOrEqual(1);
    await adapter.release("a", "alice");
    await woken;
    expect(getEventListeners(shutdown.signal, "abort")).toHaveLength(0);
  });

  test("each release wakes the longest-waiting waiter of its key, in arrival order", async () => {
    const adapter = new MemoryLockAdapter();
    await adapter.acquire("a", "alice", LONG_TTL);
    const woken: number[] = [];
    const waiters = [0, 1, 2, 3].map((i) =>
      adapter.waitForRelease("a", LONG_TTL, never()).then(() => woken.push(i)),
    );
    for (const [round, holder] of ["alice", "w0", "w1", "w2"].entries()) {
      expect(await adapter.release("a", holder)).toBe(true);
      await new Promise((resolve) => setImmediate(resolve));
      expect(woken).toEqual([0, 1, 2, 3].slice(0, round + 1));
      await adapter.acquire("a", `w${round}`, LONG_TTL);
    }
    await Promise.all(waiters);
    expect(woken).toEqual([0, 1, 2, 3]);
    await adapter.forceRelease("a");
  });

  test("two releases back to back wake two waiters, not the same one twice", async () => {
    const adapter = new MemoryLockAdapter();
    await adapter.acquire("a", "alice", LONG_TTL);
    const woken: number[] = [];
    const waiters = [0, 1].map((i) =>
      adapter.waitForRelease("a", LONG_TTL, never()).then(() => woken.push(i)),
    );
    // No await between them: the first woken waiter has not run yet when the second release comes.
    const first = adapter.release("a", "alice");
    const retake = adapter.acquire("a", "bob", LONG_TTL);
    const second = adapter.release("a", "bob");
    expect([await first, (await retake).acquired, await second]).toEqual([true, true, true]);
    await Promise.all(waiters);
    expect(woken).toEqual([0, 1]);
  });

  test("waiters of one key time out at their own deadlines, whatever their order", async () => {
    // One timer per key's queue: it must follow the earliest deadline, including a later
    // arrival's shorter one, and move on when the waiter it was armed for leaves early.
    const adapter = new MemoryLockAdapter();
    await adapter.acquire("a", "alice", LONG_TTL);
    const start = performance.now();
    const ended: Record<string, number> = {};
    const wait = (name: string, ms: number) =>
      adapter
        .waitForRelease("a", TimeSpan.fromMilliseconds(ms), never(), {
          lockId: name,
          ttl: LONG_TTL,
        })
        .then((handOff) => {
          ended[name] = performance.now() - start;
          return handOff;
        });
    const first = wait("first", 5_000);
    const late = wait("late", 300);
    const short = wait("short", 100);
    expect(await short).toBeUndefined();
    expect(ended.short).toBeGreaterThanOrEqual(99);
    expect(ended.short).toBeLessThan(250);
    expect(await adapter.release("a", "alice")).toBe(true);
    expect(await first).toMatchObject({ acquired: true });
    expect((await adapter.getState("a"))?.owner).toBe("first");
    expect(await late).toBeUndefined();
    expect(ended.late).toBeGreaterThanOrEqual(299);
    expect(ended.late).toBeLessThan(1_000);
    await adapter.release("a", "first");
    expect(adapter.size).toBe(0);
  });

  test("a release hands the key to the first waiter with a claim; one without is only woken", async () => {
    const adapter = new MemoryLockAdapter();
    await adapter.acquire("a", "alice", LONG_TTL);
    const plain = adapter.waitForRelease("a", LONG_TTL, never());
    const claimed = adapter.waitForRelease("a", LONG_TTL, never(), { lockId: "bob", ttl: null });
    expect(await adapter.release("a", "alice")).toBe(true);
    await expect(plain).resolves.toBeUndefined();
    // Woken, not served: the key is free, and the claim still waits for a release.
    expect(await adapter.getState("a")).toBeNull();
    await adapter.acquire("a", "carol", LONG_TTL);
    expect(await adapter.release("a", "carol")).toBe(true);
    expect(await claimed).toMatchObject({ acquired: true });
    expect(await adapter.getState("a")).toMatchObject({ owner: "bob", remainingTime: null });
    await adapter.forceRelease("a");
  });

  test("waiters on one signal share one abort listener, gone when the last one leaves", async () => {
    const adapter = new MemoryLockAdapter();
    const shared = new AbortController();
    await adapter.acquire("a", "alice", LONG_TTL);
    await adapter.acquire("b", "alice", LONG_TTL);
    const waits = ["a", "a", "b"].map((key) =>
      adapter.waitForRelease(key, LONG_TTL, shared.signal).then(
        () => "woken",
        (error: unknown) => error,
      ),
    );
    expect(getEventListeners(shared.signal, "abort")).toHaveLength(1);
    await adapter.release("a", "alice");
    const reason = new Error("shutting down");
    shared.abort(reason);
    expect(await Promise.all(waits)).toEqual(["woken", reason, reason]);
    expect(getEventListeners(shared.signal, "abort")).toHaveLength(0);
    await adapter.release("b", "alice");
    expect(adapter.size).toBe(0);
  });

  test("two adapters share nothing", async () => {
    const first = new MemoryLockAdapter();
    const second = new MemoryLockAdapter();
    await first.acquire("a", "alice", LONG_TTL);
    expect(await second.getState("a")).toBeNull();
    expect(await second.acquire("a", "bob", LONG_TTL)).toMatchObject({ acquired: true });
    expect((await first.getState("a"))?.owner).toBe("alice");
  });
});

describe("MemoryLockAdapter behind a LockProvider", () => {
  test("waiters keep their order while the holder's run() refreshes, and no newcomer gets the key", async () => {
    const provider = new LockProvider({ adapter: new MemoryLockAdapter() });
    // The run refreshes every third of the TTL, past its former expiries. 1 s: a busy machine
    // that delays a refresh past a shorter TTL ends the run, and no refresh would come again.
    const ttl = TimeSpan.fromSeconds(1);
    const served: string[] = [];
    const refreshes: Array<() => void> = [];
    await provider.addListener(LOCK_EVENTS.REFRESHED, () => {
      for (const next of refreshes.splice(0)) {
        next();
      }
    });
    const nextRefresh = () => new Promise<void>((resolve) => refreshes.push(resolve));
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => {
      stop = resolve;
    });
    // Tasks are lazy: `then` starts each one now.
    const holding = provider
      .create("report", { ttl })
      .run(() => stopped)
      .then((result) => result);
    let newcomerWins = 0;
    let hammering = true;
    const newcomer = (async () => {
      while (hammering) {
        const lock = provider.create("report", { ttl });
        if (await lock.acquire()) {
          // Once the last waiter was served, the key is anyone's.
          newcomerWins += served.length < 5 ? 1 : 0;
          await lock.release();
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    // One waiter joins after each refresh, so each expects the holder at a different time.
    const waiters: Array<PromiseLike<unknown>> = [];
    for (const name of ["w1", "w2", "w3", "w4", "w5"]) {
      await nextRefresh();
      waiters.push(
        provider
          .create("report", { ttl, lockId: name })
          .runBlocking(
            () => {
              served.push(name);
            },
            { time: TimeSpan.fromSeconds(20) },
          )
          .then((result) => result),
      );
    }
    await nextRefresh();
    await nextRefresh();
    stop();
    expect(await holding).toEqual([true, undefined]);
    await Promise.all(waiters);
    hammering = false;
    await newcomer;
    expect(served).toEqual(["w1", "w2", "w3", "w4", "w5"]);
    expect(newcomerWins, "a newcomer took the key from a queued waiter").toBe(0);
  });
});
