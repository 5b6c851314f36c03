// The Redis baseline: what a careful user writes with ioredis alone. `SET key id NX PX ttl` to
// take, a compare-and-delete script (defineCommand, so EVALSHA) to release, and a poll every
// 10 ms while the key is held.

import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import { countCommands, createRedisClient, deleteKeysContaining } from "../redis.js";
import type { LockClient, SubjectDefinition, SubjectEnvironment } from "../types.js";

const POLL_MS = 10;

const COMPARE_AND_DELETE = `if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end`;

type RawCommands = { benchRawRelease(key: string, id: string): Promise<number> };

function rawClient(client: Redis, env: SubjectEnvironment): LockClient {
  const commands = client as unknown as RawCommands;
  const take = async (key: string, id: string) => {
    env.counters.attempts += 1;
    return (await client.set(key, id, "PX", env.ttlMs, "NX")) === "OK";
  };
  const release = async (key: string, id: string) =>
    (await commands.benchRawRelease(key, id)) === 1;
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
  };
}

export const rawRedis: SubjectDefinition = {
  name: "raw-redis",
  backend: "redis",
  baseline: true,
  description: "ioredis alone: SET NX PX, compare-and-delete script (EVALSHA), 10 ms polling",
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
