// The Redis baseline: what a careful user writes with ioredis alone. `SET key id NX PX ttl` to
// take, a compare-and-delete script (defineCommand, so EVALSHA) to release, and a poll every
// 10 ms while the key is held. Its semaphore: a sorted set of slot ids scored by their expiry
// (server clock), one script that drops the expired and adds the caller below the limit, `ZREM`
// to release, the same polling.

import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import { countCommands, createRedisClient, deleteKeysContaining } from "../redis.js";
import type { LockClient, SubjectDefinition, SubjectEnvironment } from "../types.js";
import { type PolledSteps, runPolled, tryPolled } from "./polled-section.js";

const POLL_MS = 10;

const COMPARE_AND_DELETE = `if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end`;

/**
 * KEYS[1] the semaphore's sorted set (member: slot id, score: expiry in ms, server clock);
 * ARGV[1] slot id, ARGV[2] limit, ARGV[3] TTL ms. Returns 1 when the slot was taken, else 0.
 * Every slot has the same TTL, so the set expires with its last slot.
 */
const TAKE_SLOT = `local t = redis.call('time')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('zremrangebyscore', KEYS[1], '-inf', now)
if redis.call('zcard', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('zadd', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('pexpire', KEYS[1], ARGV[3])
  return 1
end
return 0`;

type RawCommands = {
  benchRawRelease(key: string, id: string): Promise<number>;
  benchRawTakeSlot(key: string, id: string, limit: number, ttlMs: number): Promise<number>;
};

function rawClient(client: Redis, env: SubjectEnvironment): LockClient {
  const commands = client as unknown as RawCommands;
  const take = async (key: string, id: string) => {
    env.counters.attempts += 1;
    return (await client.set(key, id, "PX", env.ttlMs, "NX")) === "OK";
  };
  const release = async (key: string, id: string) =>
    (await commands.benchRawRelease(key, id)) === 1;
  /** One holder's attempt at a slot of `key`, and its release (the semaphore scenarios). */
  const slot = (key: string, limit: number): PolledSteps => {
    const full = `${env.prefix}:${key}`;
    const id = randomUUID();
    return {
      take: async () => {
        env.counters.attempts += 1;
        return (await commands.benchRawTakeSlot(full, id, limit, env.ttlMs)) === 1;
      },
      release: () => client.zrem(full, id),
    };
  };
  return {
    async tryAcquire(key) {
      const full = `${env.prefix}:${key}`;
      const id = randomUUID();
      return (await take(full, id)) ? { release: () => release(full, id) } : null;
    },
    async runExclusive(key, section) {
      const full = `${env.prefix}:${key}`;
      const id = randomUUID();
      const deadline = performance.now() + env.blockingTimeMs;
      while (!(await take(full, id))) {
        if (performance.now() >= deadline) {
          throw new Error(`raw-redis: "${key}" not acquired within ${env.blockingTimeMs} ms`);
        }
        await sleep(POLL_MS);
      }
      try {
        await section();
      } finally {
        await release(full, id);
      }
    },
    runLimited(key, limit, section) {
      return runPolled("raw-redis", key, env, { ...slot(key, limit), section });
    },
    tryLimited: (key, limit) => tryPolled(slot(key, limit)),
  };
}

export const rawRedis: SubjectDefinition = {
  name: "raw-redis",
  backend: "redis",
  baseline: true,
  description: "ioredis alone: SET NX PX, compare-and-delete script (EVALSHA), 10 ms polling",
  semaphore:
    "a sorted set of slot ids scored by expiry (server TIME): one script (drop expired, ZCARD < limit: ZADD, PEXPIRE), ZREM to release, 10 ms polling",
  async setup(env) {
    const url = env.redisUrl;
    if (url === undefined) {
      throw new Error("raw-redis needs Redis");
    }
    const clients: Redis[] = [];
    return {
      async connect() {
        const client = createRedisClient(url);
        clients.push(client);
        client.defineCommand("benchRawRelease", { numberOfKeys: 1, lua: COMPARE_AND_DELETE });
        client.defineCommand("benchRawTakeSlot", { numberOfKeys: 1, lua: TAKE_SLOT });
        await client.ping();
        countCommands(client, env.counters);
        return rawClient(client, env);
      },
      async close() {
        await Promise.all(clients.map((client) => client.quit()));
        await deleteKeysContaining(url, env.prefix);
      },
    };
  },
};
