// RedisSemaphoreAdapter against Redis itself: what the conformance suite cannot see (the keys,
// their hash slot and expiry, a restart, a forged message), and the hand-off rules tried hard.
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { redisHashTag } from "../../src/backends/redis/redis-client.js";
import { FENCE_GRACE_MS } from "../../src/backends/redis/redis-fence.js";
import { decodeWaitEntry } from "../../src/backends/wait-queue/wait-entry.js";
import { InvalidArgumentError } from "../../src/errors/invalid-argument-error.js";
import { RedisSemaphoreAdapter } from "../../src/semaphore/adapters/redis/redis-semaphore-adapter.js";
import type { RedisSemaphoreCommands } from "../../src/semaphore/adapters/redis/redis-semaphore-commands.js";
import type {
  SemaphoreAcquireResult,
  SemaphoreWaitClaim,
  SemaphoreWaitResult,
} from "../../src/semaphore/contracts/semaphore-adapter.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { createRedisClient, describeWithBackend, uniqueName } from "../harness/backends.js";
import { PrivateRedisServer } from "../harness/private-redis.js";

const LONG = TimeSpan.fromMinutes(1);
const never = () => new AbortController().signal;

/** Asks `condition` every 5 ms until it holds (10 s at most, then fails). */
async function until(what: string, condition: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!(await condition())) {
    if (performance.now() > deadline) {
      throw new Error(`gave up waiting until ${what}`);
    }
    await sleep(5);
  }
}

function tokenOf(result: SemaphoreAcquireResult | SemaphoreWaitResult): number {
  if (result === undefined || !result.acquired) {
    throw new Error(`not acquired: ${JSON.stringify(result)}`);
  }
  return result.fencingToken;
}

/** Redis Cluster's hash slot of a key: CRC16 (XMODEM) of its hash tag, or of the whole key. */
function keySlot(key: string): number {
  const open = key.indexOf("{");
  const close = open < 0 ? -1 : key.indexOf("}", open + 1);
  const hashed = Buffer.from(close > open + 1 ? key.slice(open + 1, close) : key);
  let crc = 0;
  for (const byte of hashed) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit += 1) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc % 16_384;
}

/** A promise's state without waiting for it. */
function track<T>(promise: Promise<T>): { settled: () => boolean; value: Promise<T> } {
  let settled = false;
  const value = promise.finally(() => {
    settled = true;
  });
  value.catch(() => {});
  return { settled: () => settled, value };
}

describeWithBackend("redis", (url) => {
  let client: Redis;
  const adapters: RedisSemaphoreAdapter[] = [];
  /** A new adapter, as another process would have, on its own client. */
  const newAdapter = (on: Redis = client) => {
    const adapter = new RedisSemaphoreAdapter({ database: on });
    adapters.push(adapter);
    return adapter;
  };
  const keyOf = (label: string) => uniqueName(`i20-redis-sem-${label}`);
  const queueOf = (key: string) => `${redisHashTag(key)}:queue`;
  const queued = (key: string) => client.llen(queueOf(key));
  const claim = (slotId: string, limit: number, ttl: TimeSpan | null = LONG) =>
    ({ slotId, limit, ttl }) satisfies SemaphoreWaitClaim;

  beforeAll(() => {
    client = createRedisClient(url);
  });

  afterAll(async () => {
    await Promise.all(adapters.map((adapter) => adapter.close()));
    await client.quit();
  });

  describe("construction and arguments", () => {
    test("takes a client, or { database: client }; anything else is an InvalidArgumentError", () => {
      expect(new RedisSemaphoreAdapter(client)).toBeInstanceOf(RedisSemaphoreAdapter);
      expect(new RedisSemaphoreAdapter({ database: client })).toBeInstanceOf(RedisSemaphoreAdapter);
      for (const bad of [undefined, {}, { database: {} }, { database: client, extra: 1 }]) {
        expect(
          () => new RedisSemaphoreAdapter(bad as unknown as Redis),
          JSON.stringify(bad),
        ).toThrow(InvalidArgumentError);
      }
    });

    test("a bad limit or a TTL above the bound is refused before Redis sees it", async () => {
      const adapter = newAdapter();
      const key = keyOf("args");
      for (const limit of [0, -1, 1.5, Number.NaN, 1e10]) {
        await expect(adapter.acquire(key, "a", limit, LONG), String(limit)).rejects.toThrow(
          InvalidArgumentError,
        );
        await expect(
          adapter.waitForRelease(key, LONG, never(), claim("a", limit)),
          String(limit),
        ).rejects.toThrow(InvalidArgumentError);
      }
      await expect(adapter.acquire(key, "a", 1, TimeSpan.fromDays(365 * 200))).rejects.toThrow(
        InvalidArgumentError,
      );
      await expect(adapter.refresh(key, "a", TimeSpan.fromDays(365 * 200))).rejects.toThrow(
        InvalidArgumentError,
      );
      expect(await client.exists(redisHashTag(key))).toBe(0);
      // The scripts guard themselves too: nothing is written.
      const commands = client as unknown as RedisSemaphoreCommands;
      const slots = redisHashTag(key);
      await expect(
        commands.hasp_semaphore_acquire(slots, `${slots}:queue`, "a", "0", "100"),
      ).rejects.toThrow(/limit must be/);
      await expect(
        commands.hasp_semaphore_acquire(slots, `${slots}:queue`, "a", "2", "1e5"),
      ).rejects.toThrow(/ttl must be/);
      expect(await client.exists(redisHashTag(key))).toBe(0);
    });

    test("its subscriber follows the client: when the client quits, a wait under way ends", async () => {
      const own = new Redis(url);
      const adapter = new RedisSemaphoreAdapter(own);
      const key = keyOf("quit");
      await adapter.acquire(key, "holder", 1, LONG);
      const waiting = adapter.waitForRelease(key, LONG, never(), claim("waiter", 1)).then(
        () => "ended",
        () => "failed",
      );
      await until("the wait is queued", async () => (await queued(key)) === 1);
      const inbox = decodeWaitEntry((await client.lindex(queueOf(key), 0)) ?? "")?.inbox ?? "";
      expect(await client.pubsub("CHANNELS", inbox)).toEqual([inbox]);
      await own.quit();
      expect(await waiting).toBe("failed");
      await expect(adapter.waitForRelease(key, LONG, never(), claim("late", 1))).rejects.toThrow(
        /has ended/,
      );
      await vi.waitFor(async () => expect(await client.pubsub("CHANNELS", inbox)).toEqual([]));
      await client.del(redisHashTag(key), queueOf(key));
    });
  });

  describe("slot ids", () => {
    test("a slot id may be 'fence', hold ':' or be another's prefix: each is its own slot, and the fence stays the fence", async () => {
      const adapter = newAdapter();
      const key = keyOf("ids");
      const ids = ["fence", ":fence", "a:b", "a", "a:b:c"];
      const tokens = [];
      for (const id of ids) {
        tokens.push(tokenOf(await adapter.acquire(key, id, 10, LONG)));
      }
      expect(new Set(tokens).size).toBe(ids.length);
      expect(Number(await client.hget(redisHashTag(key), "fence"))).toBe(tokens.at(-1));
      expect(await adapter.getState(key, "a")).toMatchObject({
        acquiredSlotsCount: ids.length,
        slot: { fencingToken: tokens[3] },
      });
      expect(await adapter.release(key, "a:b")).toBe(true);
      expect(await adapter.release(key, "a:b")).toBe(false);
      expect(await adapter.getState(key, "a:b:c")).toMatchObject({
        acquiredSlotsCount: ids.length - 1,
        slot: { fencingToken: tokens[4] },
      });
      await adapter.forceReleaseAll(key);
      // A claim whose slot id holds ':' is handed a slot under its own id.
      tokenOf(await adapter.acquire(key, "x", 1, LONG));
      const waiting = adapter.waitForRelease(key, LONG, never(), claim("w:1:2", 10));
      await until("the wait is queued", async () => (await queued(key)) === 1);
      await adapter.release(key, "x");
      const token = tokenOf(await waiting);
      expect(await adapter.getState(key, "w:1:2")).toMatchObject({ slot: { fencingToken: token } });
      expect(token).toBeGreaterThan(Math.max(...tokens));
      await adapter.forceReleaseAll(key);
    });
  });

  describe("keys", () => {
    test("every key of a semaphore is in one hash slot, and there are only two", async () => {
      const adapter = newAdapter();
      const key = keyOf("slot");
      await adapter.acquire(key, "a", 1, LONG);
      const waiting = adapter.waitForRelease(key, LONG, never(), claim("b", 1));
      await until("the wait is queued", async () => (await queued(key)) === 1);
      const keys = await client.keys(`*${key}*`);
      expect(keys.sort()).toEqual([redisHashTag(key), queueOf(key)].sort());
      expect(new Set(keys.map(keySlot)).size).toBe(1);
      expect(keySlot("{user1000}.following")).toBe(keySlot("{user1000}.followers"));
      expect(keySlot("123456789")).toBe(12_739);
      await adapter.release(key, "a");
      tokenOf(await waiting);
      await adapter.forceReleaseAll(key);
    });

    test("the slots' hash expires with its latest slot, the fence's grace after it", async () => {
      const adapter = newAdapter();
      const key = keyOf("expiry");
      await adapter.acquire(key, "a", 3, TimeSpan.fromSeconds(5));
      await adapter.acquire(key, "b", 3, TimeSpan.fromSeconds(20));
      await adapter.acquire(key, "c", 3, TimeSpan.fromSeconds(10));
      const pttl = await client.pttl(redisHashTag(key));
      expect(pttl).toBeGreaterThan(19_000 + FENCE_GRACE_MS);
      expect(pttl).toBeLessThanOrEqual(20_000 + FENCE_GRACE_MS);
      // A refresh past the latest expiry carries the hash with it.
      await adapter.refresh(key, "a", TimeSpan.fromSeconds(40));
      expect(await client.pttl(redisHashTag(key))).toBeGreaterThan(39_000 + FENCE_GRACE_MS);
      await adapter.forceReleaseAll(key);
    });

    test("a slot that never expires keeps the hash; once it is released, the hash expires again", async () => {
      const adapter = newAdapter();
      const key = keyOf("persist");
      await adapter.acquire(key, "short", 2, TimeSpan.fromSeconds(5));
      await adapter.acquire(key, "forever", 2, null);
      expect(await client.pttl(redisHashTag(key))).toBe(-1);
      await adapter.release(key, "forever");
      const pttl = await client.pttl(redisHashTag(key));
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(5_000 + FENCE_GRACE_MS);
      // A holder whose slot never expired re-acquires it with a TTL: the hash expires again.
      await adapter.acquire(key, "forever", 2, null);
      expect(await client.pttl(redisHashTag(key))).toBe(-1);
      await adapter.acquire(key, "forever", 2, TimeSpan.fromSeconds(5));
      expect(await client.pttl(redisHashTag(key))).toBeGreaterThan(0);
      await adapter.release(key, "forever");
      // forceReleaseAll of a key whose only slot never expires: the hash gets the grace.
      await adapter.acquire(key, "forever", 2, null);
      await adapter.forceReleaseAll(key);
      const left = await client.pttl(redisHashTag(key));
      expect(left).toBeGreaterThan(0);
      expect(left).toBeLessThanOrEqual(5_000 + FENCE_GRACE_MS);
    });

    test("an abandoned semaphore leaves no key without an expiry (daiso-core's stay forever)", async () => {
      const adapter = newAdapter();
      const key = keyOf("abandoned");
      await adapter.acquire(key, "a", 2, TimeSpan.fromMilliseconds(200));
      await adapter.acquire(key, "b", 2, TimeSpan.fromMilliseconds(300));
      const controller = new AbortController();
      const waiting = track(
        adapter.waitForRelease(key, TimeSpan.fromSeconds(2), controller.signal, claim("c", 1)),
      );
      await until("the wait is queued", async () => (await queued(key)) === 1);
      // Every key has an expiry; the queue's is no later than its latest deadline.
      for (const name of [redisHashTag(key), queueOf(key)]) {
        expect(await client.pttl(name), name).toBeGreaterThan(0);
      }
      expect(await client.pttl(queueOf(key))).toBeLessThanOrEqual(2_000);
      expect(await client.pttl(redisHashTag(key))).toBeLessThanOrEqual(300 + FENCE_GRACE_MS);
      controller.abort();
      await waiting.value.catch(() => {});
      await adapter.forceReleaseAll(key);
    });
  });

  describe("invariants under a storm", () => {
    /**
     * Read in one atomic step: the live slots (by the server's clock), how many exceed the
     * smallest limit among them, and whether the fence is at least every live token.
     */
    const CHECK = `local time = redis.call('TIME')
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local count, minLimit, fence, maxToken = 0, nil, 0, 0
for i = 1, #all, 2 do
  if all[i] == 'fence' then
    fence = tonumber(all[i + 1])
  else
    local e, l, t = string.match(all[i + 1], '^(%d+):(%d+):(%d+)')
    if tonumber(e) == 0 or tonumber(e) > nowMs then
      count = count + 1
      if not minLimit or tonumber(l) < minLimit then minLimit = tonumber(l) end
      if tonumber(t) > maxToken then maxToken = tonumber(t) end
    end
  end
end
return {count, minLimit or 0, fence >= maxToken and 1 or 0}`;

    test("random acquires (limits 1 to 4), releases, refreshes, force releases, expiries and waits from 4 adapters: live slots never exceed the smallest live limit, the fence covers every token", async () => {
      const key = keyOf("storm");
      const seed = Date.now() % 100_000;
      let state = seed;
      const random = () => {
        state = (state * 48_271) % 2_147_483_647;
        return state / 2_147_483_647;
      };
      const own = [0, 1, 2, 3].map(() => createRedisClient(url));
      const workers = own.map((on) => newAdapter(on));
      let running = true;
      let checks = 0;
      let full = 0;
      const violations: string[] = [];
      const checker = (async () => {
        while (running) {
          const [count, minLimit, fenced] = (await client.eval(
            CHECK,
            1,
            redisHashTag(key),
          )) as number[];
          checks += 1;
          if (count !== 0 && count === minLimit) {
            full += 1;
          }
          if ((count as number) > (minLimit as number) || fenced !== 1) {
            violations.push(`count ${count}, smallest limit ${minLimit}, fence ok ${fenced}`);
          }
        }
      })();
      const tokens = new Map<string, number>();
      const step = async (adapter: RedisSemaphoreAdapter, worker: number, n: number) => {
        const slot = `s${worker}-${Math.floor(random() * 3)}`;
        const limit = 1 + Math.floor(random() * 4);
        const ttl = TimeSpan.fromMilliseconds(20 + Math.floor(random() * 80));
        const roll = random();
        if (roll < 0.4) {
          const result = await adapter.acquire(key, slot, limit, ttl);
          if (result.acquired) {
            tokens.set(`${slot}@${n}`, result.fencingToken);
          }
        } else if (roll < 0.6) {
          await adapter.release(key, slot);
        } else if (roll < 0.7) {
          await adapter.refresh(key, slot, ttl);
        } else if (roll < 0.72) {
          await adapter.forceReleaseAll(key);
        } else {
          const controller = new AbortController();
          const waiting = adapter.waitForRelease(
            key,
            TimeSpan.fromMilliseconds(50),
            controller.signal,
            claim(slot, limit, ttl),
          );
          if (random() < 0.3) {
            setTimeout(() => controller.abort(), Math.floor(random() * 20));
          }
          await waiting.catch(() => undefined);
        }
      };
      await Promise.all(
        workers.map(async (adapter, worker) => {
          for (let n = 0; n < 150; n += 1) {
            await step(adapter, worker, n);
          }
        }),
      );
      running = false;
      await checker;
      expect(violations, `seed ${seed}`).toEqual([]);
      expect(checks).toBeGreaterThan(10);
      expect(tokens.size).toBeGreaterThan(10);
      // The limit was reached, so the rule was put to the test.
      expect(full).toBeGreaterThan(0);
      await workers[0]?.forceReleaseAll(key);
      await Promise.all(workers.map((adapter) => adapter.close()));
      await Promise.all(own.map((on) => on.quit()));
    });
  });

  describe("fencing", () => {
    test("tokens stay above the last one across a restart of a Redis that keeps nothing", async () => {
      const server = await PrivateRedisServer.start();
      const own = new Redis(server.url, { maxRetriesPerRequest: 1 });
      own.on("error", () => {});
      try {
        const adapter = newAdapter(own);
        const key = keyOf("restart");
        const tokens = [tokenOf(await adapter.acquire(key, "a", 2, LONG))];
        tokens.push(tokenOf(await adapter.acquire(key, "b", 2, LONG)));
        await server.stop();
        await server.start();
        await until(
          "the client is back",
          async () => (await own.ping().catch(() => "")) === "PONG",
        );
        expect(await own.exists(redisHashTag(key))).toBe(0);
        tokens.push(tokenOf(await adapter.acquire(key, "c", 2, LONG)));
        tokens.push(tokenOf(await adapter.acquire(key, "a", 2, LONG)));
        await adapter.release(key, "c");
        tokens.push(tokenOf(await adapter.acquire(key, "d", 2, LONG)));
        for (const [index, token] of tokens.entries()) {
          expect(Number.isSafeInteger(token)).toBe(true);
          if (index > 0) {
            expect(token).toBeGreaterThan(tokens[index - 1] as number);
          }
        }
        await adapter.close();
      } finally {
        own.disconnect();
        await server.stop();
      }
    });

    test("after a restart that lost the slots and the queue, a wait goes back in line and takes a slot only once the slots it knew of would have expired", async () => {
      const server = await PrivateRedisServer.start();
      const own = new Redis(server.url, { maxRetriesPerRequest: 1 });
      own.on("error", () => {});
      try {
        const adapter = newAdapter(own);
        const key = keyOf("restart-wait");
        const ttlMs = 2_000;
        const acquiredAt = performance.now();
        const held = tokenOf(
          await adapter.acquire(key, "old", 1, TimeSpan.fromMilliseconds(ttlMs)),
        );
        const waiting = track(adapter.waitForRelease(key, LONG, never(), claim("waiter", 1)));
        const queuedThere = () => own.llen(queueOf(key)).catch(() => 0);
        await until("the wait is queued", async () => (await queuedThere()) === 1);
        await server.stop();
        await server.start();
        // The wait's check after the reconnect puts it back in the queue, and serves nothing:
        // the old holder may still be at work.
        await until("the wait is queued again", async () => (await queuedThere()) === 1);
        expect(await own.exists(redisHashTag(key))).toBe(0);
        expect(waiting.settled()).toBe(false);
        const token = tokenOf(await waiting.value);
        expect(performance.now() - acquiredAt).toBeGreaterThanOrEqual(ttlMs - 50);
        expect(token).toBeGreaterThan(held);
        await adapter.close();
      } finally {
        own.disconnect();
        await server.stop();
      }
    });

    test("the fence outlives the slots: a token after a release, a force release and an expiry is greater", async () => {
      const adapter = newAdapter();
      const key = keyOf("fence");
      const tokens = [tokenOf(await adapter.acquire(key, "a", 1, TimeSpan.fromMilliseconds(50)))];
      await until("the slot expired", async () => (await adapter.getState(key, "a")) === null);
      tokens.push(tokenOf(await adapter.acquire(key, "b", 1, LONG)));
      await adapter.forceReleaseAll(key);
      tokens.push(tokenOf(await adapter.acquire(key, "c", 1, LONG)));
      await adapter.release(key, "c");
      tokens.push(tokenOf(await adapter.acquire(key, "d", 1, LONG)));
      expect([...tokens].sort((x, y) => x - y)).toEqual(tokens);
      expect(new Set(tokens).size).toBe(tokens.length);
      expect(Number(await client.hget(redisHashTag(key), "fence"))).toBe(tokens.at(-1));
      await adapter.forceReleaseAll(key);
    });
  });

  describe("hand-off", () => {
    test("a forged PUBLISH on a waiter's inbox is only a wake-up: no slot, no forged token", async () => {
      const holder = newAdapter();
      const waiter = newAdapter();
      const key = keyOf("forged");
      // A second wait of the same adapter (inbox), on another key: once the real release of
      // that key reached it, the forged messages sent before on the channel were heard, and
      // the checks they caused answered (one client, in order).
      const marker = keyOf("marker");
      await holder.acquire(marker, "holder", 1, LONG);
      const marked = waiter.waitForRelease(marker, LONG, never(), claim("marker", 1));
      await until("the marker is queued", async () => (await queued(marker)) === 1);
      const held = tokenOf(await holder.acquire(key, "holder", 1, LONG));
      const waiting = track(waiter.waitForRelease(key, LONG, never(), claim("waiter", 1)));
      await until("the wait is queued", async () => (await queued(key)) === 1);
      const entry = decodeWaitEntry((await client.lindex(queueOf(key), 0)) ?? "");
      expect(entry?.claim).toEqual({ owner: "waiter", ttlMs: 60_000, limit: 1 });
      const attacker = createRedisClient(url);
      try {
        const inbox = entry?.inbox ?? "";
        expect(await attacker.publish(inbox, entry?.waitId ?? "")).toBe(1);
        expect(await attacker.publish(inbox, `${entry?.waitId}:${Number.MAX_SAFE_INTEGER}`)).toBe(
          1,
        );
        await holder.release(marker, "holder");
        tokenOf(await marked);
      } finally {
        attacker.disconnect();
      }
      expect(waiting.settled()).toBe(false);
      expect(await waiter.getState(key, "waiter")).toMatchObject({
        acquiredSlotsCount: 1,
        slot: null,
      });
      await holder.release(key, "holder");
      const token = tokenOf(await waiting.value);
      expect(token).toBeGreaterThan(held);
      expect(token).toBeLessThan(Number.MAX_SAFE_INTEGER);
      await holder.forceReleaseAll(key);
      await holder.forceReleaseAll(marker);
    });

    test("releases serve the waits first come, first served, across adapters (processes)", async () => {
      const holder = newAdapter();
      const key = keyOf("fifo");
      await holder.acquire(key, "h1", 2, LONG);
      await holder.acquire(key, "h2", 2, LONG);
      const order: string[] = [];
      const waits = [];
      for (const name of ["w1", "w2", "w3", "w4"]) {
        const adapter = newAdapter();
        waits.push(
          adapter.waitForRelease(key, LONG, never(), claim(name, 2)).then((result) => {
            order.push(name);
            return tokenOf(result);
          }),
        );
        await until(`${name} is queued`, async () => (await queued(key)) === waits.length);
      }
      // A newcomer's acquire finds no free slot: each release went to a waiter.
      await holder.release(key, "h1");
      await until("w1 is served", async () => order.length === 1);
      expect((await newAdapter().acquire(key, "newcomer", 2, LONG)).acquired).toBe(false);
      await holder.release(key, "h2");
      await until("w2 is served", async () => order.length === 2);
      await holder.forceReleaseAll(key);
      const tokens = await Promise.all(waits);
      // One force release served w3 and w4 in one script, in queue order: their tokens say so
      // (their adapters hear of it in any order).
      expect(order.slice(0, 2)).toEqual(["w1", "w2"]);
      expect([...tokens].sort((x, y) => x - y)).toEqual(tokens);
      expect(await queued(key)).toBe(0);
      await holder.forceReleaseAll(key);
    });

    test("a refresh while waits queue reorders nothing and hands nothing over", async () => {
      const holder = newAdapter();
      const key = keyOf("refresh");
      await holder.acquire(key, "h", 1, TimeSpan.fromMilliseconds(400));
      const first = track(newAdapter().waitForRelease(key, LONG, never(), claim("first", 1)));
      await until("first is queued", async () => (await queued(key)) === 1);
      const second = track(newAdapter().waitForRelease(key, LONG, never(), claim("second", 1)));
      await until("second is queued", async () => (await queued(key)) === 2);
      const before = await client.lrange(queueOf(key), 0, -1);
      // Refreshed past its former expiry three times: the waits check at each expiry they knew.
      for (let round = 0; round < 3; round += 1) {
        expect(await holder.refresh(key, "h", TimeSpan.fromMilliseconds(400))).toBe(true);
        await sleep(200);
      }
      expect(first.settled() || second.settled()).toBe(false);
      const after = await client.lrange(queueOf(key), 0, -1);
      expect(after.map((entry) => decodeWaitEntry(entry)?.claim?.owner)).toEqual(
        before.map((entry) => decodeWaitEntry(entry)?.claim?.owner),
      );
      await holder.release(key, "h");
      tokenOf(await first.value);
      expect(second.settled()).toBe(false);
      await holder.release(key, "first");
      tokenOf(await second.value);
      await holder.forceReleaseAll(key);
    });

    test("different limits on one key: never more live slots than the smallest limit among them", async () => {
      const adapter = newAdapter();
      const key = keyOf("limits");
      expect((await adapter.acquire(key, "a", 3, LONG)).acquired).toBe(true);
      expect((await adapter.acquire(key, "b", 3, LONG)).acquired).toBe(true);
      // A deploy lowers the limit to 2: the two live slots stay, a third is refused.
      expect(await adapter.acquire(key, "c", 2, LONG)).toMatchObject({
        acquired: false,
        limit: 2,
        acquiredSlotsCount: 2,
      });
      // A holder of limit 1 cannot join two live slots; and once a slot of limit 2 is live, a
      // caller with limit 3 is held to 2.
      expect((await adapter.acquire(key, "one", 1, LONG)).acquired).toBe(false);
      await adapter.release(key, "b");
      expect((await adapter.acquire(key, "c", 2, LONG)).acquired).toBe(true);
      expect(await adapter.acquire(key, "d", 3, LONG)).toMatchObject({
        acquired: false,
        limit: 2,
        acquiredSlotsCount: 2,
      });
      expect(await adapter.getState(key, "a")).toMatchObject({ limit: 2, acquiredSlotsCount: 2 });
      // A queued claim of limit 1 waits for an empty key, and holds back a claim of limit 3
      // behind it (first come, first served), even when the release frees a slot that claim
      // could take.
      const small = track(newAdapter().waitForRelease(key, LONG, never(), claim("small", 1)));
      await until("small is queued", async () => (await queued(key)) === 1);
      const big = track(newAdapter().waitForRelease(key, LONG, never(), claim("big", 3)));
      await until("big is queued", async () => (await queued(key)) === 2);
      await adapter.release(key, "c");
      expect(await adapter.getState(key, "a")).toMatchObject({ acquiredSlotsCount: 1 });
      expect(small.settled() || big.settled()).toBe(false);
      await adapter.release(key, "a");
      tokenOf(await small.value);
      expect(await adapter.getState(key, "small")).toMatchObject({
        limit: 1,
        acquiredSlotsCount: 1,
      });
      expect(big.settled()).toBe(false);
      await adapter.release(key, "small");
      tokenOf(await big.value);
      expect(await adapter.getState(key, "big")).toMatchObject({ limit: 3, acquiredSlotsCount: 1 });
      await adapter.forceReleaseAll(key);
    });

    test("two waits of one slot id: the first is handed the slot, the second stays queued (its abort frees nothing), the claims behind it are served", async () => {
      const adapter = newAdapter();
      const key = keyOf("twice");
      await adapter.acquire(key, "h1", 2, LONG);
      await adapter.acquire(key, "h2", 2, LONG);
      const first = track(adapter.waitForRelease(key, LONG, never(), claim("same", 2)));
      await until("first is queued", async () => (await queued(key)) === 1);
      const controller = new AbortController();
      const second = track(adapter.waitForRelease(key, LONG, controller.signal, claim("same", 2)));
      await until("second is queued", async () => (await queued(key)) === 2);
      const other = track(newAdapter().waitForRelease(key, LONG, never(), claim("other", 2)));
      await until("other is queued", async () => (await queued(key)) === 3);
      await adapter.release(key, "h1");
      const token = tokenOf(await first.value);
      // The second wait of "same" is passed over and keeps its place, ahead of "other".
      const owners = async () =>
        (await client.lrange(queueOf(key), 0, -1)).map((e) => decodeWaitEntry(e)?.claim?.owner);
      expect(await owners()).toEqual(["same", "other"]);
      await adapter.release(key, "h2");
      tokenOf(await other.value);
      expect(await owners()).toEqual(["same"]);
      // A newcomer's wait is not held up behind it while a slot is free.
      await adapter.release(key, "other");
      expect(
        tokenOf(await adapter.waitForRelease(key, LONG, never(), claim("late", 2))),
      ).toBeGreaterThan(token);
      expect(await owners()).toEqual(["same"]);
      controller.abort(new Error("gave up"));
      await expect(second.value).rejects.toThrow("gave up");
      expect(await adapter.getState(key, "same")).toMatchObject({
        acquiredSlotsCount: 2,
        slot: { fencingToken: token },
      });
      expect(await queued(key)).toBe(0);
      await adapter.forceReleaseAll(key);
    });

    test("a wait without a claim is woken by a release, which keeps a slot free for it; the claim behind it waits", async () => {
      const adapter = newAdapter();
      const key = keyOf("woken");
      expect(await adapter.waitForRelease(key, LONG, never())).toBeUndefined();
      await adapter.acquire(key, "h", 1, LONG);
      const woken = track(adapter.waitForRelease(key, LONG, never()));
      await until("the wake-up is queued", async () => (await queued(key)) === 1);
      const claimed = track(newAdapter().waitForRelease(key, LONG, never(), claim("c", 1)));
      await until("the claim is queued", async () => (await queued(key)) === 2);
      await adapter.release(key, "h");
      expect(await woken.value).toBeUndefined();
      // The woken waiter's turn: the slot is free, and the claim behind it still queued.
      expect(await adapter.getState(key, "h")).toBeNull();
      expect(claimed.settled()).toBe(false);
      expect(await queued(key)).toBe(1);
      tokenOf(await adapter.acquire(key, "woken", 1, LONG));
      await adapter.release(key, "woken");
      tokenOf(await claimed.value);
      await adapter.forceReleaseAll(key);
    });

    test("a queue longer than the script's page is served past it by one release", async () => {
      const adapter = newAdapter();
      const key = keyOf("long");
      await adapter.acquire(key, "h", 1, LONG);
      const waits = Array.from({ length: 70 }, (_, index) =>
        adapter.waitForRelease(key, LONG, never(), claim(`w${index}`, 100)),
      );
      await until("every wait is queued", async () => (await queued(key)) === waits.length);
      await adapter.release(key, "h");
      const tokens = (await Promise.all(waits)).map(tokenOf);
      expect(new Set(tokens).size).toBe(70);
      expect(await adapter.getState(key, "w0")).toMatchObject({
        limit: 100,
        acquiredSlotsCount: 70,
      });
      expect(await queued(key)).toBe(0);
      await adapter.forceReleaseAll(key);
    });

    test("a slot that expired goes to the oldest wait, not to a newcomer's acquire", async () => {
      const adapter = newAdapter();
      const key = keyOf("expired");
      await adapter.acquire(key, "h", 1, TimeSpan.fromMilliseconds(150));
      const waiting = track(newAdapter().waitForRelease(key, LONG, never(), claim("waiter", 1)));
      await until("the wait is queued", async () => (await queued(key)) === 1);
      // Whoever comes first after the expiry, the waiter's own check or the newcomer, the
      // slot is the waiter's.
      await until(
        "the slot expired",
        async () => waiting.settled() || (await adapter.getState(key, "h")) === null,
      );
      expect((await adapter.acquire(key, "newcomer", 1, LONG)).acquired).toBe(false);
      tokenOf(await waiting.value);
      expect(await adapter.getState(key, "waiter")).toMatchObject({ acquiredSlotsCount: 1 });
      await adapter.forceReleaseAll(key);
    });

    test("one release serves as many waits as the slots freed, in order; a force release all of them", async () => {
      const adapter = newAdapter();
      const key = keyOf("many");
      for (const name of ["a", "b", "c"]) {
        await adapter.acquire(key, name, 3, LONG);
      }
      const waits: Array<{ name: string; wait: ReturnType<typeof track<SemaphoreWaitResult>> }> =
        [];
      // Queued one by one, so their order is known.
      for (const name of ["w1", "w2", "w3", "w4"]) {
        waits.push({
          name,
          wait: track(newAdapter().waitForRelease(key, LONG, never(), claim(name, 3))),
        });
        await until(`${name} is queued`, async () => (await queued(key)) === waits.length);
      }
      await adapter.forceReleaseAll(key);
      await Promise.all(waits.slice(0, 3).map(({ wait }) => wait.value));
      expect(await adapter.getState(key, "w1")).toMatchObject({ acquiredSlotsCount: 3 });
      expect(waits[3]?.wait.settled()).toBe(false);
      await adapter.release(key, "w2");
      tokenOf(await (waits[3]?.wait.value as Promise<SemaphoreWaitResult>));
      await adapter.forceReleaseAll(key);
    });
  });
});
