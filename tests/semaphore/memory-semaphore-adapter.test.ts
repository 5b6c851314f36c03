import { describe, expect, test } from "vitest";
import { MemorySemaphoreAdapter } from "../../src/semaphore/adapters/memory/memory-semaphore-adapter.js";
import { semaphoreAdapterTestSuite } from "../../src/semaphore/test-suites/semaphore-adapter-test-suite.js";
import { TimeSpan } from "../../src/time-span/time-span.js";

semaphoreAdapterTestSuite({
  createAdapter: () => new MemorySemaphoreAdapter(),
  instancesShareBackend: false,
});

const LONG_TTL = TimeSpan.fromMinutes(1);
const never = () => new AbortController().signal;

describe("MemorySemaphoreAdapter", () => {
  test("a key whose slots were released leaves no entry behind", async () => {
    const adapter = new MemorySemaphoreAdapter();
    await adapter.acquire("a", "alice", 2, LONG_TTL);
    await adapter.acquire("a", "bob", 2, null);
    await adapter.acquire("b", "bob", 1, null);
    expect(adapter.size).toBe(2);
    await adapter.release("a", "alice");
    expect(adapter.size).toBe(2);
    await adapter.release("a", "bob");
    await adapter.forceReleaseAll("b");
    expect(adapter.size).toBe(0);
  });

  test("nothing stays once the last holder and the last waiter leave", async () => {
    const adapter = new MemorySemaphoreAdapter();
    await adapter.acquire("a", "alice", 1, LONG_TTL);
    const controller = new AbortController();
    const aborted = adapter.waitForRelease("a", LONG_TTL, controller.signal, {
      slotId: "carol",
      limit: 1,
      ttl: LONG_TTL,
    });
    const handedOver = adapter.waitForRelease("a", LONG_TTL, never(), {
      slotId: "bob",
      limit: 1,
      ttl: LONG_TTL,
    });
    controller.abort(new Error("gave up"));
    await expect(aborted).rejects.toThrow("gave up");
    await adapter.release("a", "alice");
    await expect(handedOver).resolves.toMatchObject({ acquired: true });
    expect(adapter.size).toBe(1);
    await adapter.release("a", "bob");
    expect(adapter.size).toBe(0);
  });

  test("expired slots of keys nobody touches again are swept as other keys are written", async () => {
    const adapter = new MemorySemaphoreAdapter();
    for (let i = 0; i < 200; i += 1) {
      await adapter.acquire(`request:${i}`, "worker", 2, TimeSpan.fromMilliseconds(20));
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (let i = 0; i < 600; i += 1) {
      await adapter.acquire(`job:${i}`, "worker", 2, LONG_TTL);
    }
    expect(adapter.size).toBeLessThan(800);
    for (let i = 0; i < 600; i += 1) {
      await adapter.release(`job:${i}`, "worker");
    }
    expect(adapter.size).toBeLessThan(200);
  });
});
