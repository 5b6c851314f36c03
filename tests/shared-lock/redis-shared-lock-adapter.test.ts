import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { redisHashTag } from "../../src/backends/redis/redis-client.js";
import { FENCE_GRACE_MS } from "../../src/backends/redis/redis-fence.js";
import { RedisSharedLockAdapter } from "../../src/shared-lock/adapters/redis/redis-shared-lock-adapter.js";
import { sharedLockAdapterTestSuite } from "../../src/shared-lock/test-suites/shared-lock-adapter-test-suite.js";
import { sharedLockProviderTestSuite } from "../../src/shared-lock/test-suites/shared-lock-provider-test-suite.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { createRedisClient, describeWithBackend, uniqueName } from "../harness/backends.js";

describeWithBackend("redis", (url) => {
  let client: Redis;
  const adapters: RedisSharedLockAdapter[] = [];
  const newAdapter = () => {
    const adapter = new RedisSharedLockAdapter(client);
    adapters.push(adapter);
    return adapter;
  };

  beforeAll(() => {
    client = createRedisClient(url);
  });

  afterAll(async () => {
    await Promise.all(adapters.map((adapter) => adapter.close()));
    await client.quit();
  });

  /** The waits queued on a key: the length of its queue list (see redis-shared-lock-scripts.ts). */
  const queuedWaits = (key: string) => client.llen(`${redisHashTag(key)}:queue`);

  describe("adapter conformance", () => {
    sharedLockAdapterTestSuite({
      createAdapter: newAdapter,
      keyPrefix: `${uniqueName("i21-redis-sl")}:`,
      queuedWaits,
    });
  });

  describe("provider conformance", () => {
    sharedLockProviderTestSuite({ createAdapter: newAdapter, queuedWaits });
  });

  describe("RedisSharedLockAdapter keys", () => {
    /** Every Redis key of the shared lock `key`, with its PTTL. */
    const keysOf = async (key: string) => {
      const names = await client.keys(`${redisHashTag(key)}*`);
      return Promise.all(
        names.sort().map(async (name) => [name, await client.pttl(name)] as const),
      );
    };

    test("every key has the hash tag, and expires with the last member (the fence's grace after it)", async () => {
      const adapter = newAdapter();
      const key = `${uniqueName("i21-redis-sl-keys")}:a:b`;
      const tag = redisHashTag(key);
      const short = TimeSpan.fromSeconds(2);
      const long = TimeSpan.fromSeconds(20);
      // Readers: one that never expires keeps the hash; the latest expiry decides once it goes.
      expect(await adapter.acquireReader(key, "r1", 3, short)).toMatchObject({ acquired: true });
      expect(await adapter.acquireReader(key, "r2", 3, null)).toMatchObject({ acquired: true });
      expect(await keysOf(key)).toEqual([[tag, -1]]);
      expect(await adapter.acquireReader(key, "r3", 3, long)).toMatchObject({ acquired: true });
      expect(await adapter.releaseReader(key, "r2")).toBe(true);
      const afterReaders = await client.pttl(tag);
      expect(afterReaders).toBeGreaterThan(long.toMilliseconds() + FENCE_GRACE_MS - 2_000);
      expect(afterReaders).toBeLessThanOrEqual(long.toMilliseconds() + FENCE_GRACE_MS);
      // A queued writer's claim: its list has the tag too, and expires with its deadline.
      const controller = new AbortController();
      const waiting = adapter.waitForRelease(key, long, controller.signal, {
        side: "writer",
        lockId: "w",
        ttl: null,
      });
      await expect.poll(() => client.llen(`${tag}:queue`)).toBe(1);
      const queued = await keysOf(key);
      expect(queued.map(([name]) => name)).toEqual([tag, `${tag}:queue`]);
      for (const [, pttl] of queued) {
        expect(pttl).toBeGreaterThan(0);
      }
      expect(await adapter.forceReleaseAllReaders(key)).toBe(true);
      // The writer handed the key never expires: neither does the hash, and the queue is gone.
      expect(await waiting).toMatchObject({ acquired: true });
      expect(await keysOf(key)).toEqual([[tag, -1]]);
      // Its release lets the hash expire a fence's grace from now.
      expect(await adapter.releaseWriter(key, "w")).toBe(true);
      expect((await keysOf(key)).map(([name]) => name)).toEqual([tag]);
      const afterWriter = await client.pttl(tag);
      expect(afterWriter).toBeGreaterThan(FENCE_GRACE_MS - 2_000);
      expect(afterWriter).toBeLessThanOrEqual(FENCE_GRACE_MS);
      // A writer with a TTL: the hash outlives it by the grace.
      expect(await adapter.acquireWriter(key, "w2", long, null)).toMatchObject({ acquired: true });
      const withWriter = await client.pttl(tag);
      expect(withWriter).toBeGreaterThan(long.toMilliseconds() + FENCE_GRACE_MS - 2_000);
      expect(await adapter.forceRelease(key)).toBe(true);
    });
  });
});
