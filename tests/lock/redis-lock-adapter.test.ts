import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { InvalidArgumentError } from "../../src/errors/invalid-argument-error.js";
import {
  RedisLockAdapter,
  RedisReplicaAckError,
  redisHoldKey,
} from "../../src/lock/adapters/redis/redis-lock-adapter.js";
import { lockAdapterTestSuite } from "../../src/lock/test-suites/lock-adapter-test-suite.js";
import { lockProviderTestSuite } from "../../src/lock/test-suites/lock-provider-test-suite.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { createRedisClient, describeWithBackend, uniqueName } from "../harness/backends.js";

describeWithBackend("redis", (url) => {
  let client: Redis;
  const adapters: RedisLockAdapter[] = [];
  const newAdapter = () => {
    const adapter = new RedisLockAdapter(client);
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

  describe("adapter conformance", () => {
    lockAdapterTestSuite({ createAdapter: newAdapter, keyPrefix: `${uniqueName("adapter")}:` });
  });

  describe("provider conformance", () => {
    lockProviderTestSuite({ createAdapter: newAdapter });
  });

  describe("Redis specifics", () => {
    /** Runs `fn` and returns the commands Redis received meanwhile for keys containing `marker`. */
    async function commandsDuring(marker: string, fn: () => Promise<unknown>): Promise<string[]> {
      const monitor = await new Redis(url).monitor();
      const seen: string[] = [];
      monitor.on("monitor", (_time: string, args: string[], source: string) => {
        // Commands a script runs are listed too, with the source "lua": they are not round trips.
        if (source !== "lua" && args.some((arg) => arg.includes(marker))) {
          seen.push(args.map((arg) => arg.toLowerCase()).join(" "));
        }
      });
      try {
        await fn();
        // MONITOR output trails the replies a little.
        await new Promise((resolve) => setTimeout(resolve, 100));
      } finally {
        monitor.disconnect();
      }
      return seen.filter((line) => !line.startsWith("script") && !line.startsWith("exists"));
    }

    test("acquire, release, refresh, forceRelease and getState are one round trip each", async () => {
      const adapter = newAdapter();
      const key = uniqueName("rt");
      // Warm up: the first call of a script may be EVALSHA, NOSCRIPT, then EVAL.
      await adapter.getState(key);
      await adapter.acquire(key, "warm", TimeSpan.fromSeconds(5));
      await adapter.refresh(key, "warm", TimeSpan.fromSeconds(5));
      await adapter.release(key, "warm");
      await adapter.forceRelease(key);

      const ttl = TimeSpan.fromSeconds(5);
      for (const [name, operation] of [
        ["acquire", () => adapter.acquire(key, "a", ttl)],
        ["refresh", () => adapter.refresh(key, "a", ttl)],
        ["getState", () => adapter.getState(key)],
        ["release", () => adapter.release(key, "a")],
        [
          "acquire (held)",
          async () => {
            await adapter.acquire(key, "b", ttl);
            const seen = await commandsDuring(key, () => adapter.acquire(key, "c", ttl));
            expect(seen, "a failed acquire").toHaveLength(1);
          },
        ],
        ["forceRelease", () => adapter.forceRelease(key)],
      ] as const) {
        if (name === "acquire (held)") {
          await operation();
          continue;
        }
        const seen = await commandsDuring(key, operation);
        expect(seen, name).toHaveLength(1);
        expect(seen[0], name).toMatch(/^evalsha /);
      }
    });

    test("every key of a lock hashes to one slot (hash tag), whatever the key holds", async () => {
      const adapter = newAdapter();
      for (const userKey of ["order:42", "a{b}c", "{x}", "ключ", "a b"]) {
        const key = `${uniqueName("slot")}:${userKey}`;
        await adapter.acquire(key, "owner", TimeSpan.fromSeconds(5));
        const hold = redisHoldKey(key);
        const keys = [hold, `${hold}:fence`, `${hold}:released`];
        const slots = await Promise.all(
          keys.map((name) => client.call("CLUSTER", "KEYSLOT", name).catch(() => null)),
        );
        // CLUSTER KEYSLOT answers on a standalone server too (Redis 7); compute it otherwise.
        expect(new Set(slots).size, `${userKey}: ${slots.join(",")}`).toBe(1);
        expect(await client.exists(hold)).toBe(1);
        expect(await client.exists(`${hold}:fence`)).toBe(1);
        await adapter.forceRelease(key);
      }
    });

    test("the server's clock sets expiry: PTTL of the hold is the TTL", async () => {
      const adapter = newAdapter();
      const key = uniqueName("pttl");
      await adapter.acquire(key, "owner", TimeSpan.fromSeconds(30));
      const pttl = await client.pttl(redisHoldKey(key));
      expect(pttl).toBeGreaterThan(29_000);
      expect(pttl).toBeLessThanOrEqual(30_000);
      await adapter.forceRelease(key);
    });

    test("tokens stay above the last one after the fence key is gone (a restart without persistence)", async () => {
      const adapter = newAdapter();
      const key = uniqueName("fence");
      const first = await adapter.acquire(key, "a", TimeSpan.fromSeconds(5));
      await adapter.release(key, "a");
      // What a restart of a Redis that keeps nothing looks like: every key of the lock is gone.
      await client.del(redisHoldKey(key), `${redisHoldKey(key)}:fence`);
      const second = await adapter.acquire(key, "b", TimeSpan.fromSeconds(5));
      expect(first.acquired && second.acquired).toBe(true);
      if (first.acquired && second.acquired) {
        expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
        expect(Number.isSafeInteger(second.fencingToken)).toBe(true);
      }
      await adapter.forceRelease(key);
    });

    test("waitForReplicas: a grant no replica acknowledged is undone and fails with RedisReplicaAckError", async () => {
      // This server has no replicas, so WAIT 1 answers 0 after its timeout.
      const adapter = new RedisLockAdapter({
        database: client,
        waitForReplicas: { count: 1, timeout: TimeSpan.fromMilliseconds(20) },
      });
      const key = uniqueName("replicas");
      const error = await adapter
        .acquire(key, "a", TimeSpan.fromSeconds(5))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RedisReplicaAckError);
      expect((error as RedisReplicaAckError).message).toBe(
        `Redis lock "${key}": the acquire reached 0 of 1 replicas in time and was undone`,
      );
      expect(await adapter.getState(key)).toBeNull();
      // Held by someone else: an answer, not a replication failure.
      await newAdapter().acquire(key, "b", TimeSpan.fromSeconds(5));
      const held = await adapter.acquire(key, "a", TimeSpan.fromSeconds(5));
      expect(held).toMatchObject({ acquired: false, owner: "b" });
      await expect(adapter.refresh(key, "b", TimeSpan.fromSeconds(5))).rejects.toBeInstanceOf(
        RedisReplicaAckError,
      );
      await adapter.forceRelease(key);
      await adapter.close();
    });

    test("bad settings are refused", () => {
      expect(() => new RedisLockAdapter({} as never)).toThrow(
        /database: must be an ioredis client/,
      );
      expect(() => new RedisLockAdapter(null as never)).toThrow(InvalidArgumentError);
      expect(
        () =>
          new RedisLockAdapter({
            database: client,
            subscriptionLinger: TimeSpan.fromSeconds(-1),
          }),
      ).toThrow(/subscriptionLinger: must not be negative/);
      expect(
        () =>
          new RedisLockAdapter({
            database: client,
            waitForReplicas: { count: 0, timeout: TimeSpan.fromMilliseconds(1) },
          }),
      ).toThrow(/waitForReplicas/);
    });

    test("8 blocked waiters: a release wakes one of them, so attempts stay close to hand-offs", async () => {
      const adapter = newAdapter();
      let attempts = 0;
      const counting = new Proxy(adapter, {
        get(target, property, receiver) {
          if (property === "acquire") {
            return (...args: Parameters<RedisLockAdapter["acquire"]>) => {
              attempts += 1;
              return target.acquire(...args);
            };
          }
          const value = Reflect.get(target, property, receiver);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
      const { LockProvider } = await import("../../src/lock/lock-provider.js");
      const provider = new LockProvider({
        adapter: counting,
        namespace: new (await import("../../src/namespace/namespace.js")).Namespace(
          uniqueName("handoff"),
        ),
      });
      const sections = 8 * 5;
      let counter = 0;
      const workers = Array.from({ length: 8 }, async () => {
        for (let i = 0; i < 5; i++) {
          await provider.create("job", { ttl: TimeSpan.fromSeconds(10) }).runBlockingOrFail(
            async () => {
              const read = counter;
              await new Promise((resolve) => setTimeout(resolve, 2));
              counter = read + 1;
            },
            { time: TimeSpan.fromSeconds(30), interval: TimeSpan.fromSeconds(10) },
          );
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
      });
      await Promise.all(workers);
      expect(counter).toBe(sections);
      console.log(`[redis hand-off] ${sections} sections, ${attempts} acquire attempts`);
      // Each hand-off costs about one attempt (plus the first failed attempt of each waiter),
      // far from the 8 per hand-off of waking everyone, and from polling.
      expect(attempts).toBeLessThan(sections * 3);
    });
  });
});
