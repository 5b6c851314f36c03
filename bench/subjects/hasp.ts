// hasp through its public API: `LockProvider.create`, `acquire`/`release` for the cycle
// scenarios, `runBlockingOrFail` for the contended ones (and `SemaphoreProvider`'s for the
// semaphore scenario, hasp-semaphore.ts). The adapter is wrapped only to count
// acquire attempts (the wrapper adds no await).

import type { Redis } from "ioredis";
import { MemoryLockAdapter } from "../../src/lock/adapters/memory/index.js";
import { RedisLockAdapter } from "../../src/lock/adapters/redis/index.js";
import type { ILockAdapter } from "../../src/lock/contracts/index.js";
import { LockProvider } from "../../src/lock/index.js";
import { Namespace } from "../../src/namespace/index.js";
import { MemorySemaphoreAdapter } from "../../src/semaphore/adapters/memory/index.js";
import { RedisSemaphoreAdapter } from "../../src/semaphore/adapters/redis/index.js";
import { TimeSpan } from "../../src/time-span/index.js";
import { countCommands, createRedisClient, deleteKeysContaining } from "../redis.js";
import type { Counters, LockClient, SubjectDefinition, SubjectEnvironment } from "../types.js";
import { withSemaphore } from "./hasp-semaphore.js";

/**
 * The adapter, counting acquire attempts (the wrapper adds no await); a wait that acquires
 * (`waitAcquires`) counts as one too. Its capabilities (`waitAcquires`, `waitsPastExpiry`) pass
 * through: hiding one would bench another path than users run.
 */
export function countingAdapter(adapter: ILockAdapter, counters: Counters): ILockAdapter {
  const acquires = adapter.waitAcquires === true;
  const wait = adapter.waitForRelease?.bind(adapter);
  return {
    acquire: (key, lockId, ttl) => {
      counters.attempts += 1;
      return adapter.acquire(key, lockId, ttl);
    },
    release: (key, lockId) => adapter.release(key, lockId),
    forceRelease: (key) => adapter.forceRelease(key),
    refresh: (key, lockId, ttl) => adapter.refresh(key, lockId, ttl),
    getState: (key) => adapter.getState(key),
    ...(wait === undefined
      ? {}
      : {
          waitAcquires: acquires,
          ...(adapter.waitsPastExpiry === undefined
            ? {}
            : { waitsPastExpiry: adapter.waitsPastExpiry }),
          waitForRelease: acquires
            ? (key, maxWait, signal, claim) => {
                counters.attempts += 1;
                return wait(key, maxWait, signal, claim);
              }
            : wait,
        }),
  };
}

/**
 * One client of hasp over `adapter`. `pollMs`: the blocking interval, for adapters without a
 * release signal (the library default otherwise).
 */
export function haspClient(
  adapter: ILockAdapter,
  env: SubjectEnvironment,
  pollMs?: number,
): LockClient {
  const provider = new LockProvider({
    adapter: countingAdapter(adapter, env.counters),
    namespace: new Namespace([env.prefix]),
    defaultTtl: TimeSpan.fromMilliseconds(env.ttlMs),
    defaultBlockingTime: TimeSpan.fromMilliseconds(env.blockingTimeMs),
    ...(pollMs === undefined ? {} : { defaultBlockingInterval: TimeSpan.fromMilliseconds(pollMs) }),
  });
  return {
    async tryAcquire(key) {
      const lock = provider.create(key);
      return (await lock.acquire()) ? { release: () => lock.release() } : null;
    },
    async runExclusive(key, section) {
      // A lock (an owner id) per section: workers sharing a client must not share an owner,
      // since an owner's acquire of its own live hold succeeds again.
      await provider.create(key).runBlockingOrFail(() => section());
    },
  };
}

export const haspRedis: SubjectDefinition = {
  name: "hasp-redis",
  backend: "redis",
  baseline: false,
  description:
    "LockProvider + RedisLockAdapter, one ioredis client (and its subscriber) per client",
  semaphore:
    "SemaphoreProvider + RedisSemaphoreAdapter on the same client (its own subscriber): one script per operation, a release hands the slot to the oldest waiter",
  async setup(env) {
    const url = env.redisUrl;
    if (url === undefined) {
      throw new Error("hasp-redis needs Redis");
    }
    const opened: Array<{ client: Redis; adapters: Array<{ close(): Promise<void> }> }> = [];
    return {
      async connect() {
        const client = createRedisClient(url);
        const adapter = new RedisLockAdapter(client);
        const adapters: Array<{ close(): Promise<void> }> = [adapter];
        opened.push({ client, adapters });
        await client.ping();
        countCommands(client, env.counters);
        return withSemaphore(
          haspClient(adapter, env),
          async () => {
            const semaphores = new RedisSemaphoreAdapter(client);
            adapters.push(semaphores);
            return semaphores;
          },
          env,
        );
      },
      async close() {
        await Promise.all(
          opened.map(async ({ client, adapters }) => {
            await Promise.all(adapters.map((adapter) => adapter.close()));
            await client.quit();
          }),
        );
        await deleteKeysContaining(url, env.prefix);
      },
    };
  },
};

export const haspMemory: SubjectDefinition = {
  name: "hasp-memory",
  backend: "memory",
  baseline: false,
  description: "LockProvider + MemoryLockAdapter, one adapter shared by the child's clients",
  semaphore:
    "SemaphoreProvider + MemorySemaphoreAdapter, one adapter shared by the child's clients: a release hands the slot to the oldest waiter",
  async setup(env) {
    env.counters.commands = -1;
    const adapter = new MemoryLockAdapter();
    const semaphores = new MemorySemaphoreAdapter();
    return {
      async connect() {
        return withSemaphore(haspClient(adapter, env), async () => semaphores, env);
      },
      async close() {},
    };
  },
};
