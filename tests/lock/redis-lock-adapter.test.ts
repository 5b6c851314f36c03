import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { FENCE_GRACE_MS } from "../../src/backends/redis/redis-fence.js";
import { InvalidArgumentError } from "../../src/errors/invalid-argument-error.js";
import {
  RedisLockAdapter,
  type RedisLockAdapterSettings,
  RedisReplicaAckError,
  redisHoldKey,
} from "../../src/lock/adapters/redis/redis-lock-adapter.js";
import { LockProvider } from "../../src/lock/lock-provider.js";
import { lockAdapterTestSuite } from "../../src/lock/test-suites/lock-adapter-test-suite.js";
import { lockProviderTestSuite } from "../../src/lock/test-suites/lock-provider-test-suite.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { createRedisClient, describeWithBackend, uniqueName } from "../harness/backends.js";
import { PrivateRedisServer } from "../harness/private-redis.js";

/** Adapters on the client `client()` gives, closed together by `closeAll`. */
function adaptersOn(client: () => Redis) {
  const adapters: RedisLockAdapter[] = [];
  return {
    newAdapter: (settings: Omit<RedisLockAdapterSettings, "database"> = {}) => {
      const adapter = new RedisLockAdapter({ database: client(), ...settings });
      adapters.push(adapter);
      return adapter;
    },
    closeAll: () => Promise.all(adapters.map((adapter) => adapter.close())),
  };
}

describeWithBackend("redis", (url) => {
  let client: Redis;
  const { newAdapter, closeAll } = adaptersOn(() => client);

  beforeAll(() => {
    client = createRedisClient(url);
  });

  afterAll(async () => {
    await closeAll();
    await client.quit();
  });

  /** The waits queued on a key: the length of its queue list (see redis-lock-scripts.ts). */
  const queuedWaits = (key: string) => client.llen(`${redisHoldKey(key)}:queue`);

  describe("adapter conformance", () => {
    lockAdapterTestSuite({
      createAdapter: newAdapter,
      keyPrefix: `${uniqueName("adapter")}:`,
      queuedWaits,
    });
  });

  describe("provider conformance", () => {
    lockProviderTestSuite({ createAdapter: newAdapter, queuedWaits });
  });

  // On a server of its own: MONITOR on the shared server floods when another process drives it
  // hard, and ioredis then fails with "Command queue state error".
  describe("Redis specifics", () => {
    let server: PrivateRedisServer;
    let url: string;
    let client: Redis;
    const { newAdapter, closeAll } = adaptersOn(() => client);

    beforeAll(async () => {
      server = await PrivateRedisServer.start();
      url = server.url;
      client = createRedisClient(url);
    });

    afterAll(async () => {
      await closeAll();
      await client.quit();
      await server.stop();
    });

    /**
     * Runs `fn` with MONITOR on, and hands `onCommand` every command Redis ran meanwhile, up to
     * the end: MONITOR output trails the replies, so the end is a command sent after `fn`, which
     * Redis lists after everything `fn` sent.
     */
    async function monitorDuring(
      fn: () => Promise<unknown>,
      onCommand: (args: string[], source: string) => void,
    ): Promise<void> {
      const monitor = await new Redis(url).monitor();
      const end = uniqueName("monitor-end");
      let ended = false;
      monitor.on("monitor", (_time: string, args: string[], source: string) => {
        if (args.includes(end)) {
          ended = true;
        } else if (!ended) {
          onCommand(args, source);
        }
      });
      try {
        await fn();
        await client.exists(end);
        await vi.waitFor(() => expect(ended, "MONITOR listed the end").toBe(true), {
          timeout: 10_000,
          interval: 5,
        });
      } finally {
        monitor.disconnect();
      }
    }

    /** Runs `fn` and returns the commands Redis received meanwhile for keys containing `marker`. */
    async function commandsDuring(marker: string, fn: () => Promise<unknown>): Promise<string[]> {
      const seen: string[] = [];
      await monitorDuring(fn, (args, source) => {
        // Commands a script runs are listed too, with the source "lua": they are not round trips.
        if (source !== "lua" && args.some((arg) => arg.includes(marker))) {
          seen.push(args.map((arg) => arg.toLowerCase()).join(" "));
        }
      });
      return seen.filter((line) => !line.startsWith("script") && !line.startsWith("exists"));
    }

    /** Like commandsDuring, with the commands the scripts ran ("lua: ..."), for keys containing `marker`. */
    async function scriptCommandsDuring(
      marker: string,
      fn: () => Promise<unknown>,
    ): Promise<string[]> {
      const seen: string[] = [];
      await monitorDuring(fn, (args, source) => {
        if (args.some((arg) => arg.includes(marker))) {
          const command = args.map((arg) => arg.toLowerCase()).join(" ");
          seen.push(source === "lua" ? `lua: ${command}` : command);
        }
      });
      return seen;
    }

    const SECONDS_5 = TimeSpan.fromSeconds(5);
    const queueOf = (key: string) => `${redisHoldKey(key)}:queue`;
    const never = () => new AbortController().signal;

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

    describe("durations beyond what Lua prints exactly", () => {
      /** The scripts as the adapter defined them on the client, called with raw arguments. */
      type RawCommands = {
        hasp_lock_acquire(...args: string[]): Promise<unknown>;
        hasp_lock_refresh(...args: string[]): Promise<unknown>;
        hasp_lock_wait(...args: string[]): Promise<unknown>;
      };
      const raw = () => client as unknown as RawCommands;
      const keysOf = (key: string) => {
        const hold = redisHoldKey(key);
        return { hold, fence: `${hold}:fence`, queue: `${hold}:queue` };
      };
      const HUGE = ["100000000000000000", "1e17", "10000000000000", "0", "-5", "1.5", " 5"];
      const failure = (reply: Promise<unknown>) =>
        reply.then(
          (value) => `answered ${JSON.stringify(value)}`,
          (error: unknown) => String(error),
        );

      test("ACQUIRE refuses a ttl that is not 1 to 13 digits, before writing anything", async () => {
        newAdapter();
        const { hold, fence } = keysOf(uniqueName("huge-acquire"));
        for (const ttl of HUGE) {
          const error = await failure(raw().hasp_lock_acquire(hold, fence, "a", ttl));
          expect(await client.exists(hold, fence), `${ttl}: written before ${error}`).toBe(0);
          expect(error, ttl).toMatch(
            /^ReplyError: ERR hasp: ttl must be a positive whole number of ms of at most 13 digits, or ""$/,
          );
        }
        // The longest the scripts take: the hold and its fence both get it.
        expect(await raw().hasp_lock_acquire(hold, fence, "a", "9999999999999")).toEqual(
          expect.any(Number),
        );
        expect(await client.pttl(hold)).toBeGreaterThan(9_999_999_000_000);
        expect(await client.pttl(fence)).toBeGreaterThan(9_999_999_000_000);
        await client.del(hold, fence);
      });

      test("REFRESH refuses such a ttl before writing: the hold's TTL is unchanged", async () => {
        const adapter = newAdapter();
        const key = uniqueName("huge-refresh");
        const { hold, fence } = keysOf(key);
        await adapter.acquire(key, "a", SECONDS_5);
        const before = await client.pexpiretime(hold);
        const fenceBefore = await client.pexpiretime(fence);
        for (const ttl of [...HUGE, ""]) {
          const error = await failure(raw().hasp_lock_refresh(hold, fence, "a", ttl));
          expect(await client.pexpiretime(hold), `${ttl}: changed before ${error}`).toBe(before);
          expect(await client.pexpiretime(fence), `${ttl}: changed before ${error}`).toBe(
            fenceBefore,
          );
          expect(error, ttl).toMatch(
            /^ReplyError: ERR hasp: ttl must be a positive whole number of ms of at most 13 digits$/,
          );
        }
        await adapter.forceRelease(key);
      });

      test("WAIT refuses such a claim ttl or max wait before queueing: no ghost claim is left to be handed the key", async () => {
        const adapter = newAdapter();
        const key = uniqueName("huge-wait");
        const { hold, fence, queue } = keysOf(key);
        await adapter.acquire(key, "holder", null);
        for (const value of HUGE) {
          const maxWaitError = await failure(
            raw().hasp_lock_wait(hold, fence, queue, "waiter", "5000", value, "inbox", "w1"),
          );
          expect(await client.exists(queue), `${value}: queued before ${maxWaitError}`).toBe(0);
          expect(maxWaitError, value).toMatch(
            /^ReplyError: ERR hasp: max wait must be a positive whole number of ms of at most 13 digits$/,
          );
          const ttlError = await failure(
            raw().hasp_lock_wait(hold, fence, queue, "waiter", value, "1000", "inbox", "w1"),
          );
          expect(await client.exists(queue), `${value}: queued: ${ttlError}`).toBe(0);
          expect(ttlError, value).toMatch(/^ReplyError: ERR hasp: ttl must be .*, or "", or "-"$/);
        }
        // Released, the key goes to nobody: no claim was queued.
        expect(await adapter.release(key, "holder")).toBe(true);
        expect(await adapter.getState(key)).toBeNull();
      });

      test("the adapter refuses a duration above 100 years with InvalidArgumentError, sending nothing", async () => {
        const adapter = newAdapter();
        const key = uniqueName("huge-adapter");
        const huge = TimeSpan.fromMilliseconds(1e17);
        await adapter.acquire(key, "holder", SECONDS_5);
        const seen = await commandsDuring(key, async () => {
          const attempts: Array<[Promise<unknown>, RegExp]> = [
            [adapter.acquire(key, "other", huge), /ttl: must be at most 100 years/],
            [adapter.refresh(key, "holder", huge), /ttl: must be at most 100 years/],
            [adapter.waitForRelease(key, huge, never()), /maxWait: must be at most 100 years/],
            [
              adapter.waitForRelease(key, SECONDS_5, never(), { lockId: "w", ttl: huge }),
              /claim\.ttl: must be at most 100 years/,
            ],
          ];
          for (const [attempt, message] of attempts) {
            const error = await attempt.then(
              () => null,
              (e: unknown) => e,
            );
            expect(error).toBeInstanceOf(InvalidArgumentError);
            expect(String(error)).toMatch(message);
          }
        });
        expect(seen).toEqual([]);
        expect(await client.exists(queueOf(key))).toBe(0);
        expect(await adapter.getState(key)).toMatchObject({ owner: "holder" });
        await adapter.forceRelease(key);
      });
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
            waitForReplicas: { count: 0, timeout: TimeSpan.fromMilliseconds(1) },
          }),
      ).toThrow(/waitForReplicas/);
    });

    test("8 blocked waiters: each release hands the key to one of them, so attempts stay close to sections", async () => {
      const adapter = newAdapter();
      let attempts = 0;
      const counting = new Proxy(adapter, {
        get(target, property) {
          if (property === "acquire" || property === "waitForRelease") {
            const method = Reflect.get(target, property) as (...args: unknown[]) => unknown;
            return (...args: unknown[]) => {
              attempts += 1;
              return method.apply(target, args);
            };
          }
          const value = Reflect.get(target, property);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
      const provider = new LockProvider({
        adapter: counting,
        namespace: new Namespace(uniqueName("handoff")),
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
      console.log(`[redis hand-off] ${sections} sections, ${attempts} acquires and waits`);
      // A section costs one call, a wait that takes the key or queues: a queued waiter is
      // handed the key, with no attempt of its own (waking every waiter would cost up to 8 per
      // section, polling more).
      expect(attempts).toBeLessThanOrEqual(sections + 8);
    });

    test("a release with nobody waiting looks for a queue with one LPOP, publishes nothing, and writes only the hold's DEL", async () => {
      const adapter = newAdapter();
      const key = uniqueName("cheap");
      await adapter.acquire(key, "warm", SECONDS_5);
      await adapter.release(key, "warm");
      await adapter.acquire(key, "a", SECONDS_5);
      const fenceExpiry = await client.pexpiretime(`${redisHoldKey(key)}:fence`);
      const seen = await scriptCommandsDuring(key, () => adapter.release(key, "a"));
      const hold = redisHoldKey(key).toLowerCase();
      expect(seen.filter((line) => !line.startsWith("lua: "))).toHaveLength(1);
      // The fence of an expiring hold already outlives it by FENCE_GRACE_MS: left as it is.
      expect(seen.filter((line) => line.startsWith("lua: "))).toEqual([
        `lua: get ${hold}`,
        `lua: lpop ${hold}:queue`,
        `lua: pttl ${hold}`,
        `lua: del ${hold}`,
      ]);
      expect(await client.pexpiretime(`${redisHoldKey(key)}:fence`)).toBe(fenceExpiry);
    });

    test("the release of a hold that never expires gives the fence its grace", async () => {
      const adapter = newAdapter();
      const key = uniqueName("forever-fence");
      await adapter.acquire(key, "a", null);
      const fence = `${redisHoldKey(key)}:fence`;
      expect(await client.pttl(fence)).toBe(-1);
      expect(await adapter.release(key, "a")).toBe(true);
      const pttl = await client.pttl(fence);
      expect(pttl).toBeGreaterThan(FENCE_GRACE_MS - 1_000);
      expect(pttl).toBeLessThanOrEqual(FENCE_GRACE_MS);
      await adapter.acquire(key, "b", null);
      expect(await adapter.forceRelease(key)).toBe(true);
      expect(await client.pttl(fence)).toBeGreaterThan(FENCE_GRACE_MS - 1_000);
    });

    test("a blocking acquire on a held key is one wait script (it queues), the release hands it the key, and the waiter checks its grant: no acquire", async () => {
      const holderAdapter = newAdapter();
      const waiterAdapter = newAdapter();
      const namespace = new Namespace(uniqueName("handed"));
      const key = namespace.create("job").toString();
      // Warm up both clients' scripts and the waiter's subscriber.
      await holderAdapter.acquire(key, "warm", SECONDS_5);
      const warm = waiterAdapter.waitForRelease(key, SECONDS_5, never(), {
        lockId: "warm-waiter",
        ttl: SECONDS_5,
      });
      await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(1), {
        timeout: 10_000,
      });
      await holderAdapter.release(key, "warm");
      expect(await warm).toMatchObject({ acquired: true });
      await waiterAdapter.release(key, "warm-waiter");

      const holder = new LockProvider({ adapter: holderAdapter, namespace }).create("job", {
        lockId: "holder",
        ttl: SECONDS_5,
      });
      const waiter = new LockProvider({ adapter: waiterAdapter, namespace }).create("job", {
        lockId: "waiter",
        ttl: SECONDS_5,
      });
      expect(await holder.acquire()).toBe(true);
      const seen = await commandsDuring(key, async () => {
        const acquired = waiter.acquireBlocking({ time: SECONDS_5 }).then((value) => value);
        await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(1), {
          timeout: 10_000,
        });
        expect(await holder.release()).toBe(true);
        expect(await acquired).toBe(true);
      });
      // The LLEN of the test itself is not the adapters'.
      // wait, release, then the waiter's check (a message proves nothing): no acquire.
      const scripts = seen.filter((line) => line.startsWith("evalsha "));
      expect(scripts).toHaveLength(3);
      expect(seen.filter((line) => line.startsWith("llen ")).length).toBe(seen.length - 3);
      expect(await waiter.getState()).toMatchObject({ type: "ACQUIRED" });
      expect(waiter.fencingToken).toBe((await holderAdapter.getState(key))?.fencingToken);
      expect(await waiter.release()).toBe(true);
      expect(await client.exists(queueOf(key))).toBe(0);
    });

    test("claims of waiters in different adapters (processes) are handed the key in arrival order", async () => {
      const key = uniqueName("order");
      const holder = newAdapter();
      await holder.acquire(key, "holder", SECONDS_5);
      const adapters = [newAdapter(), newAdapter(), newAdapter()];
      const waits = [];
      for (const [index, adapter] of adapters.entries()) {
        waits.push(
          adapter.waitForRelease(key, SECONDS_5, never(), {
            lockId: `w${index}`,
            ttl: SECONDS_5,
          }),
        );
        await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(index + 1), {
          timeout: 10_000,
        });
      }
      let current = "holder";
      let previousToken = 0;
      for (const [index, wait] of waits.entries()) {
        expect(await holder.release(key, current)).toBe(true);
        const handOff = await wait;
        expect(handOff, `w${index}`).toMatchObject({ acquired: true });
        const state = await holder.getState(key);
        expect(state?.owner).toBe(`w${index}`);
        expect(state?.fencingToken).toBe(handOff?.fencingToken);
        expect(state?.fencingToken ?? 0).toBeGreaterThan(previousToken);
        previousToken = state?.fencingToken ?? 0;
        current = `w${index}`;
      }
      expect(await holder.release(key, current)).toBe(true);
      expect(await holder.getState(key)).toBeNull();
    });

    test("the claim of a waiter that departed is skipped once its deadline has passed", async () => {
      const adapter = newAdapter();
      const key = uniqueName("departed");
      await adapter.acquire(key, "holder", SECONDS_5);
      // What a waiter whose process died leaves behind: an entry whose deadline has passed.
      const now = Number((await client.time())[0]) * 1000;
      await client.rpush(queueOf(key), `${now - 1_000}:5000:hasp-lock-inbox-gone:1::ghost`);
      const waiting = adapter.waitForRelease(key, SECONDS_5, never(), {
        lockId: "alive",
        ttl: SECONDS_5,
      });
      await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(2), {
        timeout: 10_000,
      });
      expect(await adapter.release(key, "holder")).toBe(true);
      expect(await waiting).toMatchObject({ acquired: true });
      expect((await adapter.getState(key))?.owner).toBe("alive");
      expect(await client.exists(queueOf(key))).toBe(0);
      await adapter.release(key, "alive");
    });

    test("the claim of a waiter that died before its deadline is handed the key, which it holds for its claim's TTL at most", async () => {
      const adapter = newAdapter();
      const key = uniqueName("dead");
      await adapter.acquire(key, "holder", SECONDS_5);
      const now = Number((await client.time())[0]) * 1000;
      await client.rpush(queueOf(key), `${now + 10_000}:300:hasp-lock-inbox-gone:1::ghost`);
      expect(await adapter.release(key, "holder")).toBe(true);
      const state = await adapter.getState(key);
      expect(state?.owner).toBe("ghost");
      expect(state?.remainingTime?.toMilliseconds()).toBeLessThanOrEqual(300);
      // A blocked acquire behind it gets the key when that hold expires.
      const namespace = new Namespace(uniqueName("dead"));
      const fullKey = namespace.create("job").toString();
      await adapter.forceRelease(key);
      await adapter.acquire(fullKey, "holder", SECONDS_5);
      await client.rpush(queueOf(fullKey), `${now + 10_000}:300:hasp-lock-inbox-gone:1::ghost`);
      expect(await adapter.release(fullKey, "holder")).toBe(true);
      const lock = new LockProvider({ adapter, namespace }).create("job", { ttl: SECONDS_5 });
      const startedAt = performance.now();
      expect(await lock.acquireBlocking({ time: SECONDS_5 })).toBe(true);
      expect(performance.now() - startedAt).toBeLessThan(2_000);
      await lock.release();
    });

    test("the queue expires with its latest deadline, so a departed waiter's entry does not stay", async () => {
      const adapter = newAdapter();
      const key = uniqueName("expiry");
      await adapter.acquire(key, "holder", TimeSpan.fromSeconds(30));
      const controller = new AbortController();
      const waits = [2_000, 5_000, 1_000].map((ms, index) =>
        adapter
          .waitForRelease(key, TimeSpan.fromMilliseconds(ms), controller.signal, {
            lockId: `w${index}`,
            ttl: SECONDS_5,
          })
          .catch((error: unknown) => error),
      );
      await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(3), {
        timeout: 10_000,
      });
      const pttl = await client.pttl(queueOf(key));
      expect(pttl).toBeGreaterThan(4_000);
      expect(pttl).toBeLessThanOrEqual(5_000);
      controller.abort(new Error("done"));
      await Promise.all(waits);
      expect(await client.exists(queueOf(key))).toBe(0);

      // A waiter whose connection is gone cannot take its entry out: the key's expiry does.
      const departed = new Redis(url);
      const departing = new RedisLockAdapter(departed);
      const wait = departing
        .waitForRelease(key, TimeSpan.fromMilliseconds(300), never(), {
          lockId: "departed",
          ttl: SECONDS_5,
        })
        .catch((error: unknown) => error);
      await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(1), {
        timeout: 10_000,
      });
      departed.disconnect();
      await wait;
      await departing.close();
      await vi.waitFor(async () => expect(await client.exists(queueOf(key))).toBe(0), {
        timeout: 10_000,
        interval: 20,
      });
      await adapter.release(key, "holder");
    });

    /** Queues a claim for `lockId` whose hand-off message nobody will hear (its inbox is changed). */
    async function claimWithLostMessage(
      adapter: RedisLockAdapter,
      key: string,
      lockId: string,
      maxWait: TimeSpan,
      signal = never(),
    ) {
      const length = await client.llen(queueOf(key));
      const waiting = adapter.waitForRelease(key, maxWait, signal, { lockId, ttl: SECONDS_5 });
      await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(length + 1), {
        timeout: 10_000,
      });
      const entry = (await client.lindex(queueOf(key), length)) ?? "";
      const [deadline, ttl, , ...rest] = entry.split(":");
      await client.lset(
        queueOf(key),
        length,
        [deadline, ttl, "hasp-lock-inbox-nowhere", ...rest].join(":"),
      );
      return { waiting, entry };
    }

    test("a hand-off whose message was lost is found when the wait's time runs out: the waiter has the key", async () => {
      const adapter = newAdapter();
      const key = uniqueName("lost");
      await adapter.acquire(key, "holder", SECONDS_5);
      const startedAt = performance.now();
      const { waiting } = await claimWithLostMessage(
        adapter,
        key,
        "waiter",
        TimeSpan.fromMilliseconds(500),
      );
      expect(await adapter.release(key, "holder")).toBe(true);
      const handOff = await waiting;
      expect(performance.now() - startedAt).toBeGreaterThanOrEqual(480);
      expect(handOff).toMatchObject({ acquired: true });
      expect(await adapter.getState(key)).toMatchObject({
        owner: "waiter",
        fencingToken: handOff?.fencingToken,
      });
      await adapter.release(key, "waiter");
    });

    test("a waiter aborted after the key was handed to it passes it on to the next claim", async () => {
      const adapter = newAdapter();
      const key = uniqueName("pass");
      await adapter.acquire(key, "holder", SECONDS_5);
      const controller = new AbortController();
      const waiting = adapter.waitForRelease(key, SECONDS_5, controller.signal, {
        lockId: "quitter",
        ttl: SECONDS_5,
      });
      await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(1), {
        timeout: 10_000,
      });
      const next = adapter.waitForRelease(key, SECONDS_5, never(), {
        lockId: "next",
        ttl: SECONDS_5,
      });
      await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(2), {
        timeout: 10_000,
      });
      // The release hands the key to quitter; its leave goes out after it on the same connection,
      // before quitter can hear of the hand-off. (Its entry can no longer be made to lose the
      // message: a hold handed to a wait names that wait, and only its leave may free it.)
      const released = adapter.release(key, "holder");
      const reason = new Error("gave up");
      controller.abort(reason);
      expect(await released).toBe(true);
      await expect(waiting).rejects.toBe(reason);
      // Passed on at once: had the leave kept quitter's hold, next's wait would end before it
      // expires, without the key.
      expect(await next).toMatchObject({ acquired: true });
      expect((await adapter.getState(key))?.owner).toBe("next");
      await adapter.release(key, "next");
    });

    test("a waiter aborted after the key was handed to it leaves the hold alone once its owner re-took it", async () => {
      const adapter = newAdapter();
      const key = uniqueName("retaken");
      await adapter.acquire(key, "holder", SECONDS_5);
      const controller = new AbortController();
      const waiting = adapter.waitForRelease(key, SECONDS_5, controller.signal, {
        lockId: "owner-7",
        ttl: SECONDS_5,
      });
      await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(1), {
        timeout: 10_000,
      });
      // On one connection, in this order: the release hands the key to the wait; another lock of
      // owner-7 re-takes it (and is told it holds it); the wait, aborted before it heard of the
      // hand-off, leaves. The hold is the re-take's now, not the wait's to give back.
      const released = adapter.release(key, "holder");
      const retaken = adapter.acquire(key, "owner-7", SECONDS_5);
      const reason = new Error("gave up");
      controller.abort(reason);
      expect(await released).toBe(true);
      const retake = await retaken;
      expect(retake).toMatchObject({ acquired: true });
      await expect(waiting).rejects.toBe(reason);
      expect(await adapter.getState(key)).toMatchObject({
        owner: "owner-7",
        fencingToken: (retake as { fencingToken: number }).fencingToken,
      });
      expect(await adapter.acquire(key, "stranger", SECONDS_5)).toMatchObject({ acquired: false });
      await adapter.release(key, "owner-7");
    });

    test("a forged message on the inbox only makes the wait check: it is not granted, and the real hand-off's token comes from Redis", async () => {
      const holder = newAdapter();
      const waiter = newAdapter();
      const key = uniqueName("forged");
      const aliceToken = (await holder.acquire(key, "alice", SECONDS_5)) as {
        fencingToken: number;
      };
      const waiting = waiter
        .waitForRelease(key, TimeSpan.fromSeconds(10), never(), { lockId: "bob", ttl: SECONDS_5 })
        .then((handOff) => ({ handOff, at: performance.now() }));
      await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(1));
      // "<deadline>:<ttl>:<inbox>:<wait id>:<owner>": what anyone who can read the queue knows.
      const [entry = ""] = await client.lrange(queueOf(key), 0, 0);
      const [, , inbox = "", waitId = ""] = entry.split(":");
      const monitor = await new Redis(url).monitor();
      let checks = 0;
      monitor.on("monitor", (_time: string, args: string[], source: string) => {
        if (source !== "lua" && args.includes(entry)) {
          checks += 1;
        }
      });
      try {
        // The message format of a grant, with a token that was never issued; then the bare id.
        await client.publish(inbox, `${Number.MAX_SAFE_INTEGER}:${waitId}:bob`);
        await client.publish(inbox, waitId);
        await vi.waitFor(() => expect(checks).toBeGreaterThanOrEqual(1));
        // The check answered "still queued": the wait goes on, and alice still holds the key.
        await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(1));
        expect(await holder.getState(key)).toMatchObject({ owner: "alice" });
        const releasedAt = performance.now();
        expect(await holder.release(key, "alice")).toBe(true);
        const { handOff, at } = await waiting;
        expect(at, "the wait ended only after the real release").toBeGreaterThanOrEqual(releasedAt);
        const state = await holder.getState(key);
        expect(state).toMatchObject({ owner: "bob" });
        expect(handOff).toMatchObject({ acquired: true, fencingToken: state?.fencingToken });
        expect(handOff?.fencingToken).toBeGreaterThan(aliceToken.fencingToken);
        expect(handOff?.fencingToken).toBeLessThan(Number.MAX_SAFE_INTEGER);
        expect(await holder.release(key, "bob")).toBe(true);
      } finally {
        monitor.disconnect();
      }
    });

    test("a wait checks once at the holder's expiry, not again and again, when the next holder never expires", async () => {
      const adapter = newAdapter();
      const key = uniqueName("forever");
      await adapter.acquire(key, "alice", TimeSpan.fromMilliseconds(300));
      const bob = adapter.waitForRelease(key, TimeSpan.fromSeconds(10), never(), {
        lockId: "bob",
        ttl: null,
      });
      await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(1));
      let carolEnded = false;
      const carol = adapter
        .waitForRelease(key, TimeSpan.fromSeconds(10), never(), {
          lockId: "carol",
          ttl: SECONDS_5,
        })
        .finally(() => {
          carolEnded = true;
        });
      await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(2));
      // Alice's hold expires: bob is handed a hold that never expires, carol waits on.
      expect(await bob).toMatchObject({ acquired: true });
      const seen = await commandsDuring(key, () => sleep(1_000));
      // Carol checked at alice's expiry and was told bob's hold never expires: nothing since.
      expect(seen.filter((line) => line.startsWith("evalsha ")).length).toBeLessThanOrEqual(1);
      expect(carolEnded).toBe(false);
      expect(await adapter.release(key, "bob")).toBe(true);
      expect(await carol).toMatchObject({ acquired: true });
      await adapter.release(key, "carol");
    });

    test("a check sent again with the entry as the wait last knew it (its reply lost) finds the renewed entry: no second entry", async () => {
      type Check = (
        hold: string,
        fence: string,
        queue: string,
        entry: string,
        owner: string,
        left: string,
        serve: string,
      ) => Promise<[number, number, string]>;
      const check = (client as unknown as { hasp_lock_check: Check }).hasp_lock_check;
      const holder = newAdapter();
      const waiter = newAdapter();
      const key = uniqueName("renewed");
      await holder.acquire(key, "alice", SECONDS_5);
      const waiting = waiter.waitForRelease(key, TimeSpan.fromSeconds(10), never(), {
        lockId: "bob",
        ttl: SECONDS_5,
      });
      await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(1));
      const [first = ""] = await client.lrange(queueOf(key), 0, 0);
      const hold = redisHoldKey(key);
      const args = [hold, `${hold}:fence`, queueOf(key), first, "bob", "9000", "0"] as const;
      const [, , renewed] = await check.call(client, ...args);
      // The first reply is "lost": the same check again, with the old entry.
      const [state, , again] = await check.call(client, ...args);
      expect(state).toBe(0);
      expect(renewed.slice(renewed.indexOf(":"))).toBe(first.slice(first.indexOf(":")));
      expect(await client.lrange(queueOf(key), 0, -1)).toEqual([again]);
      // The release still hands the key to the one wait.
      expect(await holder.release(key, "alice")).toBe(true);
      expect(await waiting).toMatchObject({ acquired: true });
      expect(await client.llen(queueOf(key))).toBe(0);
      await holder.release(key, "bob");
    });

    /** Kills the subscriber connection of the client named `name`: it reconnects 300 ms later. */
    async function killSubscriber(name: string): Promise<void> {
      const list = (await client.call("CLIENT", "LIST")) as string;
      const subscriber = list
        .split("\n")
        .find((line) => line.includes(` name=${name} `) && / sub=[1-9]/.test(line));
      const id = /^id=(\d+)/.exec(subscriber ?? "")?.[1];
      expect(id).toBeDefined();
      await client.call("CLIENT", "KILL", "ID", id ?? "");
    }

    for (const [what, whileAway] of [
      [
        "a hand-off published while it was away is found at once",
        async (adapter: RedisLockAdapter, key: string) => {
          expect(await adapter.release(key, "holder")).toBe(true);
        },
      ],
      [
        "a wait whose entry a restart of Redis lost joins the queue again (the old holder may still be at work: the free key is not served), and the old holder's release hands it the key",
        async (adapter: RedisLockAdapter, key: string) => {
          // What a restart of a Redis that keeps nothing does to this lock.
          await client.del(redisHoldKey(key), queueOf(key), `${redisHoldKey(key)}:fence`);
          // The wait is back in the queue once the subscriber is.
          await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(1), {
            timeout: 5_000,
          });
          // The old holder finishes: its hold is gone, but the waiter gets the key.
          expect(await adapter.release(key, "holder")).toBe(false);
        },
      ],
    ] as const) {
      test(`after the subscriber reconnects, ${what}`, async () => {
        const name = uniqueName("reconnect");
        // Reconnects after 300 ms, so that what follows surely happens while it is away.
        const own = new Redis(url, { connectionName: name, retryStrategy: () => 300 });
        const adapter = new RedisLockAdapter(own);
        const key = uniqueName("reconnect");
        try {
          await adapter.acquire(key, "holder", SECONDS_5);
          const waiting = adapter.waitForRelease(key, TimeSpan.fromSeconds(10), never(), {
            lockId: "waiter",
            ttl: SECONDS_5,
          });
          await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(1), {
            timeout: 10_000,
          });
          await killSubscriber(name);
          const startedAt = performance.now();
          await whileAway(adapter, key);
          const handOff = await waiting;
          expect(handOff).toMatchObject({ acquired: true });
          // Far below the wait's 10 s: found when the subscriber came back.
          expect(performance.now() - startedAt).toBeLessThan(3_000);
          expect(await adapter.getState(key)).toMatchObject({
            owner: "waiter",
            fencingToken: handOff?.fencingToken,
          });
          await adapter.release(key, "waiter");
        } finally {
          await adapter.close();
          own.disconnect();
        }
      });
    }

    test("a release or forceRelease that finds the key free, with waits queued, gives it to them", async () => {
      const adapter = newAdapter();
      for (const end of ["release", "forceRelease"] as const) {
        const key = uniqueName(end);
        await adapter.acquire(key, "holder", SECONDS_5);
        const waiting = adapter.waitForRelease(key, SECONDS_5, never(), {
          lockId: "waiter",
          ttl: SECONDS_5,
        });
        await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(1), {
          timeout: 10_000,
        });
        // The hold ran out (or was forgotten) without a release.
        await client.del(redisHoldKey(key));
        expect(
          end === "release"
            ? await adapter.release(key, "holder")
            : await adapter.forceRelease(key),
        ).toBe(false);
        expect(await waiting).toMatchObject({ acquired: true });
        expect((await adapter.getState(key))?.owner).toBe("waiter");
        await adapter.release(key, "waiter");
      }
    });

    test("with waitForReplicas, a claim is not handed the key (the hand-off would skip WAIT): the waiter is woken to acquire, in turn", async () => {
      const adapter = newAdapter({
        waitForReplicas: { count: 1, timeout: TimeSpan.fromMilliseconds(20) },
      });
      const holder = newAdapter();
      const key = uniqueName("replicas-wait");
      await holder.acquire(key, "holder", SECONDS_5);
      const first = adapter.waitForRelease(key, SECONDS_5, never(), {
        lockId: "first",
        ttl: SECONDS_5,
      });
      await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(1), {
        timeout: 10_000,
      });
      const second = adapter.waitForRelease(key, SECONDS_5, never(), {
        lockId: "second",
        ttl: SECONDS_5,
      });
      await vi.waitFor(async () => expect(await client.llen(queueOf(key))).toBe(2), {
        timeout: 10_000,
      });
      expect(await holder.release(key, "holder")).toBe(true);
      expect(await first).toBeUndefined();
      // Woken, not handed: the key is free for the first waiter's own acquire (with WAIT).
      expect(await holder.getState(key)).toBeNull();
      expect(await client.llen(queueOf(key))).toBe(1);
      await holder.acquire(key, "holder", SECONDS_5);
      expect(await holder.release(key, "holder")).toBe(true);
      expect(await second).toBeUndefined();
      expect(await client.exists(queueOf(key))).toBe(0);
    });
  });
});
