// Peer: redis-semaphore's Mutex (issue 7), one ioredis client per client and a Mutex per cycle or
// section (its owner). `tryAcquire` with one attempt / `release` for the cycle scenarios,
// `acquire` (its retry loop, at its default 10 ms retryInterval, bounded by acquireTimeout) for
// the contended ones. Its default auto-refresh timer (every 0.8 × lockTimeout) runs while held.
// Acquire attempts are counted as its `SET NX PX` commands.
//
// Its `Semaphore` for the semaphore scenario: a sorted set scored by the acquire time (the
// client's clock, `Date.now()`), one acquire script (drop the expired, ZCARD < limit: ZADD,
// PEXPIRE), ZREM to release, `acquire` retrying at its default 10 ms. Its attempts are counted
// as its acquire script's calls (EVALSHA: sha, numkeys, the key and 4 arguments).

import type { Redis } from "ioredis";
import { Mutex, Semaphore } from "redis-semaphore";
import { countAttempts, countCommands, createRedisClient, deleteKeysContaining } from "../redis.js";
import type { LockClient, SubjectDefinition, SubjectEnvironment } from "../types.js";

function mutexClient(client: Redis, env: SubjectEnvironment): LockClient {
  const options = { lockTimeout: env.ttlMs, acquireTimeout: env.blockingTimeMs };
  return {
    async tryAcquire(key) {
      const mutex = new Mutex(client, `${env.prefix}:${key}`, {
        ...options,
        acquireAttemptsLimit: 1,
      });
      if (!(await mutex.tryAcquire())) {
        return null;
      }
      return {
        // Its release answers nothing (a lost hold is a no-op): true is all it can say.
        release: async () => {
          await mutex.release();
          return true;
        },
      };
    },
    async runExclusive(key, section) {
      const mutex = new Mutex(client, `${env.prefix}:${key}`, options);
      await mutex.acquire();
      try {
        await section();
      } finally {
        await mutex.release();
      }
    },
    async tryLimited(key, limit) {
      const semaphore = new Semaphore(client, `${env.prefix}:${key}`, limit, options);
      return (await semaphore.tryAcquire())
        ? {
            release: async () => {
              await semaphore.release();
              return true;
            },
          }
        : null;
    },
    async runLimited(key, limit, section) {
      const semaphore = new Semaphore(client, `${env.prefix}:${key}`, limit, options);
      await semaphore.acquire();
      try {
        await section();
      } finally {
        await semaphore.release();
      }
    },
  };
}

/** SET (the Mutex's attempt), or the Semaphore's acquire script: sha, numkeys, key and 4 more. */
function isAttempt(name: string, args: readonly unknown[]): boolean {
  return name === "set" || ((name === "evalsha" || name === "eval") && args.length === 7);
}

export const redisSemaphoreRedis: SubjectDefinition = {
  name: "redis-semaphore-redis",
  backend: "redis",
  baseline: false,
  description:
    "redis-semaphore Mutex, one ioredis client per client: SET NX PX, compare-and-delete script by EVALSHA, 10 ms retryInterval",
  semaphore:
    "redis-semaphore Semaphore: a sorted set scored by the client's clock, one acquire script by EVALSHA, ZREM, 10 ms retryInterval",
  async setup(env) {
    const url = env.redisUrl;
    if (url === undefined) {
      throw new Error("redis-semaphore-redis needs Redis");
    }
    const clients: Redis[] = [];
    return {
      async connect() {
        const client = createRedisClient(url);
        clients.push(client);
        await client.ping();
        countCommands(client, env.counters);
        countAttempts(client, env.counters, isAttempt);
        return mutexClient(client, env);
      },
      async close() {
        await Promise.all(clients.map((client) => client.quit()));
        await deleteKeysContaining(url, env.prefix);
      },
    };
  },
};
