// Peer: redlock 5 (issue 7) on a single Redis instance, one Redlock (and ioredis client) per
// client. `acquire` with no retry / `Lock.release` for the cycle scenarios, `using` (its retry
// loop, with its automatic extension timer) for the contended ones. Retry delay 10 ms, the raw
// baseline's poll, with a jitter of ±5 ms (its defaults: 200 ± 100 ms, 10 retries); enough retries
// to cover the bench's blocking bound. Acquire attempts are counted as the EVALSHAs of its
// acquire script.

import type { Redis } from "ioredis";
import Redlock, { ExecutionError, ResourceLockedError } from "redlock";
import { countAttempts, countCommands, createRedisClient, deleteKeysContaining } from "../redis.js";
import type { LockClient, SubjectDefinition, SubjectEnvironment } from "../types.js";

const RETRY_DELAY_MS = 10;
const RETRY_JITTER_MS = 5;

/**
 * Whether an ExecutionError only says "held by someone else" (every vote against was a
 * ResourceLockedError), as opposed to a Redis failure, which the bench must see.
 */
async function onlyLocked(error: ExecutionError): Promise<boolean> {
  const stats = await Promise.all(error.attempts);
  return stats.every((attempt) =>
    [...attempt.votesAgainst.values()].every((cause) => cause instanceof ResourceLockedError),
  );
}

function redlockClient(redlock: Redlock, env: SubjectEnvironment): LockClient {
  const retryCount = Math.ceil(env.blockingTimeMs / RETRY_DELAY_MS);
  return {
    async tryAcquire(key) {
      let lock: Awaited<ReturnType<Redlock["acquire"]>>;
      try {
        lock = await redlock.acquire([`${env.prefix}:${key}`], env.ttlMs, { retryCount: 0 });
      } catch (error) {
        if (error instanceof ExecutionError && (await onlyLocked(error))) {
          return null;
        }
        throw error;
      }
      return {
        release: async () => {
          try {
            await lock.release();
            return true;
          } catch (error) {
            if (error instanceof ExecutionError && (await onlyLocked(error))) {
              return false;
            }
            throw error;
          }
        },
      };
    },
    async runExclusive(key, section) {
      await redlock.using([`${env.prefix}:${key}`], env.ttlMs, { retryCount }, () => section());
    },
  };
}

export const redlockRedis: SubjectDefinition = {
  name: "redlock-redis",
  backend: "redis",
  baseline: false,
  description: `redlock 5 on one Redis, one Redlock + ioredis client per client: acquire script (EXISTS, SET PX) and release script by EVALSHA, ${RETRY_DELAY_MS} ± ${RETRY_JITTER_MS} ms retry delay`,
  async setup(env) {
    const url = env.redisUrl;
    if (url === undefined) {
      throw new Error("redlock-redis needs Redis");
    }
    const clients: Redis[] = [];
    return {
      async connect() {
        const client = createRedisClient(url);
        clients.push(client);
        await client.ping();
        const redlock = new Redlock([client], {
          retryDelay: RETRY_DELAY_MS,
          retryJitter: RETRY_JITTER_MS,
        });
        const acquireScript = redlock.scripts.acquireScript.hash;
        countCommands(client, env.counters);
        countAttempts(
          client,
          env.counters,
          (name, args) => name === "evalsha" && args[0] === acquireScript,
        );
        return redlockClient(redlock, env);
      },
      async close() {
        await Promise.all(clients.map((client) => client.quit()));
        await deleteKeysContaining(url, env.prefix);
      },
    };
  },
};
