import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { redisHashTag } from "../../src/backends/redis/redis-client.js";
import { FENCE_GRACE_MS } from "../../src/backends/redis/redis-fence.js";
import { RedisSharedLockAdapter } from "../../src/shared-lock/adapters/redis/redis-shared-lock-adapter.js";
import { defineRedisSharedLockCommands } from "../../src/shared-lock/adapters/redis/redis-shared-lock-commands.js";
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

  // F4: a wait's leave ("release": aborted, or its adapter closed) frees a hold only when the
  // serving handed it to that very wait (the hold is marked with the wait until its next write).
  // The scripts are driven directly, so that an entry can lapse with no process paused.
  describe("RedisSharedLockAdapter: an aborted wait frees only what was handed to it", () => {
    const INBOX = "b3-test-inbox";
    const LONG_MS = "60000";
    const serverMs = async () => {
      const [seconds, micros] = await client.time();
      return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    };
    /** Queues a claim of `lockId` on `key` ("" limit: a writer's), lapsing after `maxWaitMs`. */
    const queue = async (key: string, lockId: string, limit: string, maxWaitMs: string) => {
      const hash = redisHashTag(key);
      const reply = await defineRedisSharedLockCommands(client).hasp_shared_lock_wait(
        hash,
        `${hash}:queue`,
        lockId,
        LONG_MS,
        maxWaitMs,
        INBOX,
        `wait-${lockId}`,
        limit,
      );
      if (typeof reply === "number") {
        throw new Error(`the claim was not queued: ${reply}`);
      }
      return reply[0];
    };
    const leave = (key: string, entry: string, lockId: string, mode: "keep" | "release") => {
      const hash = redisHashTag(key);
      return defineRedisSharedLockCommands(client).hasp_shared_lock_leave(
        hash,
        `${hash}:queue`,
        entry,
        lockId,
        mode,
      );
    };

    for (const side of ["writer", "reader"] as const) {
      const limit = side === "writer" ? "" : "2";
      const takeDirectly = (adapter: RedisSharedLockAdapter, key: string) =>
        side === "writer"
          ? adapter.acquireWriter(key, "owner-7", TimeSpan.fromMinutes(1), null)
          : adapter.acquireReader(key, "owner-7", 2, TimeSpan.fromMinutes(1));

      test(`${side}: the hold a serving handed the wait is freed by its leave`, async () => {
        const adapter = newAdapter();
        const key = uniqueName(`i21-redis-sl-f4-${side}`);
        await adapter.acquireWriter(key, "holder", TimeSpan.fromMinutes(1), null);
        const entry = await queue(key, "owner-7", limit, LONG_MS);
        expect(await adapter.releaseWriter(key, "holder")).toBe(true);
        const handed = await adapter.getState(key, "owner-7");
        expect(handed).not.toBeNull();
        expect(await leave(key, entry, "owner-7", "release")).toBe(0);
        expect(await adapter.getState(key, "owner-7")).toBeNull();
      });

      test(`${side}: a wait whose entry lapsed leaves the hold its owner took meanwhile`, async () => {
        const adapter = newAdapter();
        const key = uniqueName(`i21-redis-sl-f4-lapse-${side}`);
        await adapter.acquireWriter(key, "holder", TimeSpan.fromMinutes(1), null);
        const entry = await queue(key, "owner-7", limit, "200");
        const deadline = Number(entry.slice(0, entry.indexOf(":")));
        await vi.waitFor(async () => expect(await serverMs()).toBeGreaterThan(deadline), {
          timeout: 5_000,
        });
        // The release drops the lapsed entry; owner-7 then takes the key's side itself.
        expect(await adapter.releaseWriter(key, "holder")).toBe(true);
        expect(await client.llen(`${redisHashTag(key)}:queue`)).toBe(0);
        const taken = await takeDirectly(adapter, key);
        expect(taken).toMatchObject({ acquired: true });
        expect(await leave(key, entry, "owner-7", "release")).toBe(0);
        const state = await adapter.getState(key, "owner-7");
        const token = taken.acquired ? taken.fencingToken : undefined;
        if (side === "writer") {
          expect(state).toMatchObject({ heldBy: "writer", owner: "owner-7", fencingToken: token });
        } else {
          expect(state).toMatchObject({ heldBy: "readers", slot: { fencingToken: token } });
        }
        await adapter.forceRelease(key);
      });
    }
  });
});
