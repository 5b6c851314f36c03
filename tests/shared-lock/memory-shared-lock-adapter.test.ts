import { describe, expect, test } from "vitest";
import { MemorySharedLockAdapter } from "../../src/shared-lock/adapters/memory/memory-shared-lock-adapter.js";
import { sharedLockAdapterTestSuite } from "../../src/shared-lock/test-suites/shared-lock-adapter-test-suite.js";
import { TimeSpan } from "../../src/time-span/time-span.js";

sharedLockAdapterTestSuite({
  createAdapter: () => new MemorySharedLockAdapter(),
  instancesShareBackend: false,
});

const LONG_TTL = TimeSpan.fromMinutes(1);
const never = () => new AbortController().signal;

describe("MemorySharedLockAdapter", () => {
  test("nothing stays once the last holder and the last waiter leave", async () => {
    const adapter = new MemorySharedLockAdapter();
    await adapter.acquireReader("a", "r1", 2, LONG_TTL);
    await adapter.acquireReader("a", "r2", 2, null);
    await adapter.acquireWriter("b", "w", null, null);
    expect(adapter.size).toBe(2);
    const controller = new AbortController();
    const aborted = adapter.waitForRelease("a", LONG_TTL, controller.signal, {
      side: "writer",
      lockId: "w2",
      ttl: LONG_TTL,
    });
    const handedOver = adapter.waitForRelease("a", LONG_TTL, never(), {
      side: "writer",
      lockId: "w3",
      ttl: LONG_TTL,
    });
    controller.abort(new Error("gave up"));
    await expect(aborted).rejects.toThrow("gave up");
    await adapter.releaseReader("a", "r1");
    expect(adapter.size).toBe(2);
    await adapter.releaseReader("a", "r2");
    await expect(handedOver).resolves.toMatchObject({ acquired: true });
    await adapter.releaseWriter("a", "w3");
    await adapter.forceRelease("b");
    expect(adapter.size).toBe(0);
  });
});
