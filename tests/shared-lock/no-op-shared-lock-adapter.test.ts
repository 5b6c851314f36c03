import { describe, expect, test } from "vitest";
import { NoOpSharedLockAdapter } from "../../src/shared-lock/adapters/no-op/no-op-shared-lock-adapter.js";
import type { ISharedLockAdapter } from "../../src/shared-lock/contracts/shared-lock-adapter.js";
import { SharedLockProvider } from "../../src/shared-lock/shared-lock-provider.js";
import { TimeSpan } from "../../src/time-span/time-span.js";

// Not run through the conformance suites: this adapter excludes nothing on purpose (every
// acquire is granted and nothing is stored), so the exclusion they specify does not apply. These
// tests pin down what it promises instead.

const TTL = TimeSpan.fromSeconds(10);

describe("NoOpSharedLockAdapter", () => {
  test("every acquire of either side is granted, writers beside readers, with growing safe-integer tokens", async () => {
    const adapter = new NoOpSharedLockAdapter();
    const tokens: number[] = [];
    for (const [side, id] of [
      ["writer", "a"],
      ["writer", "b"],
      ["reader", "c"],
      ["reader", "d"],
      ["writer", "a"],
    ] as const) {
      const result =
        side === "writer"
          ? await adapter.acquireWriter("k", id, TTL, null)
          : await adapter.acquireReader("k", id, 1, TTL);
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

  test("releases, refreshes and force releases always succeed; getState says nobody holds the key", async () => {
    const adapter = new NoOpSharedLockAdapter();
    expect(await adapter.releaseWriter("k", "a")).toBe(true);
    expect(await adapter.releaseReader("k", "a")).toBe(true);
    expect(await adapter.refreshWriter("k", "a", TTL)).toBe(true);
    expect(await adapter.refreshReader("k", "a", TTL)).toBe(true);
    expect(await adapter.forceReleaseWriter("k")).toBe(true);
    expect(await adapter.forceReleaseAllReaders("k")).toBe(true);
    expect(await adapter.forceRelease("k")).toBe(true);
    await adapter.acquireWriter("k", "a", TTL, null);
    expect(await adapter.getState("k", "a")).toBeNull();
    expect((adapter as ISharedLockAdapter).waitForRelease).toBeUndefined();
  });

  test("through a provider: every shared lock takes either side, runs and releases", async () => {
    const provider = new SharedLockProvider({ adapter: new NoOpSharedLockAdapter() });
    const sharedLocks = [1, 2, 3].map(() => provider.create("k", { limit: 1 }));
    expect(await sharedLocks[0]!.acquireWriter()).toBe(true);
    expect(await sharedLocks[1]!.acquireWriter()).toBe(true);
    expect(await sharedLocks[2]!.acquireReader()).toBe(true);
    expect(await sharedLocks[0]!.runReader(() => "read")).toEqual([true, "read"]);
    expect(await sharedLocks[1]!.acquireWriterBlockingOrFail()).toEqual(expect.any(Number));
    expect(await sharedLocks[2]!.releaseReader()).toBe(true);
    expect(await sharedLocks[1]!.forceRelease()).toBe(true);
    expect(sharedLocks[1]!.fencingToken).toBeNull();
    await provider.close();
  });
});
