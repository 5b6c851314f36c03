import { describe, expect, test } from "vitest";
import { NoOpSemaphoreAdapter } from "../../src/semaphore/adapters/no-op/no-op-semaphore-adapter.js";
import { SemaphoreProvider } from "../../src/semaphore/semaphore-provider.js";
import { TimeSpan } from "../../src/time-span/time-span.js";

// Not run through the conformance suites: this adapter limits nothing on purpose (every acquire
// is granted and nothing is stored), so the limit they specify does not apply. These tests pin
// down what it promises instead.

const TTL = TimeSpan.fromSeconds(10);

describe("NoOpSemaphoreAdapter", () => {
  test("every acquire is granted, far past any limit, with growing safe-integer tokens", async () => {
    const adapter = new NoOpSemaphoreAdapter();
    const tokens: number[] = [];
    for (const id of ["a", "b", "c", "a"]) {
      const result = await adapter.acquire("k", id, 1, TTL);
      expect(result.acquired).toBe(true);
      tokens.push(result.acquired ? result.fencingToken : Number.NaN);
    }
    for (const [i, token] of tokens.entries()) {
      expect(Number.isSafeInteger(token)).toBe(true);
      if (i > 0) {
        expect(token).toBeGreaterThan(tokens[i - 1]!);
      }
    }
  });

  test("release, forceReleaseAll and refresh always succeed; getState says no slot is live", async () => {
    const adapter = new NoOpSemaphoreAdapter();
    expect(await adapter.release("k", "a")).toBe(true);
    expect(await adapter.forceReleaseAll("k")).toBe(true);
    expect(await adapter.refresh("k", "a", TTL)).toBe(true);
    await adapter.acquire("k", "a", 1, TTL);
    expect(await adapter.getState("k", "a")).toBeNull();
  });

  test("through a provider: every semaphore acquires, runs and releases", async () => {
    const provider = new SemaphoreProvider({ adapter: new NoOpSemaphoreAdapter() });
    const semaphores = [1, 2, 3].map(() => provider.create("k", { limit: 1 }));
    for (const semaphore of semaphores) {
      expect(await semaphore.acquire()).toBe(true);
    }
    expect(await semaphores[0]!.run(() => "ran")).toEqual([true, "ran"]);
    expect(await semaphores[1]!.acquireBlockingOrFail()).toEqual(expect.any(Number));
    expect(await semaphores[2]!.release()).toBe(true);
  });
});
