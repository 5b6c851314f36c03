import { describe, expect, test } from "vitest";
import { NoOpLockAdapter } from "../../src/lock/adapters/no-op/no-op-lock-adapter.js";
import type { ILockAdapter } from "../../src/lock/contracts/lock-adapter.js";
import { TimeSpan } from "../../src/time-span/time-span.js";

// Not run through lockAdapterTestSuite: this adapter gives no exclusion on purpose (every
// acquire succeeds and nothing is stored), so the guarantees the suite specifies do not apply.
// These tests pin down what it promises instead.

const TTL = TimeSpan.fromSeconds(10);

describe("NoOpLockAdapter", () => {
  test("every acquire succeeds, even of a key someone else just acquired", async () => {
    const adapter = new NoOpLockAdapter();
    expect(await adapter.acquire("a", "alice", TTL)).toMatchObject({ acquired: true });
    expect(await adapter.acquire("a", "bob", TTL)).toMatchObject({ acquired: true });
    expect(await adapter.acquire("a", "carol", null)).toMatchObject({ acquired: true });
  });

  test("fencing tokens are safe integers that increase with every acquire", async () => {
    const adapter = new NoOpLockAdapter();
    const tokens: number[] = [];
    for (const [key, id] of [
      ["a", "alice"],
      ["a", "alice"],
      ["a", "bob"],
      ["b", "alice"],
    ] as const) {
      const result = await adapter.acquire(key, id, TTL);
      tokens.push(result.acquired ? result.fencingToken : Number.NaN);
    }
    for (const [i, token] of tokens.entries()) {
      expect(Number.isSafeInteger(token)).toBe(true);
      if (i > 0) {
        expect(token).toBeGreaterThan(tokens[i - 1]!);
      }
    }
  });

  test("release, forceRelease and refresh always succeed, held or not", async () => {
    const adapter = new NoOpLockAdapter();
    expect(await adapter.release("free", "alice")).toBe(true);
    expect(await adapter.forceRelease("free")).toBe(true);
    expect(await adapter.refresh("free", "alice", TTL)).toBe(true);
    await adapter.acquire("a", "alice", TTL);
    expect(await adapter.release("a", "bob")).toBe(true);
    expect(await adapter.refresh("a", "bob", TTL)).toBe(true);
    expect(await adapter.forceRelease("a")).toBe(true);
  });

  test("getState always answers free, even right after an acquire", async () => {
    const adapter = new NoOpLockAdapter();
    expect(await adapter.getState("a")).toBeNull();
    await adapter.acquire("a", "alice", null);
    expect(await adapter.getState("a")).toBeNull();
  });

  test("it has no waitForRelease: there is never anything to wait for", () => {
    const adapter: ILockAdapter = new NoOpLockAdapter();
    expect(adapter.waitForRelease).toBeUndefined();
  });
});
