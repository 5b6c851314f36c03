// Peer: @databases/lock (issue 7). Despite the name it is an in-process lock (atdatabases uses it
// to run one query at a time on a connection), not a database lock: so it is a memory subject.
// `createLocksByKey` with a store of ours, shared by the child's clients; `withLock` (its FIFO
// queue, no polling) for the contended scenarios. It has no attempt without waiting: the cycle
// scenarios' `tryAcquire` reads the store (a key is in it exactly while held or awaited) and then
// calls `acquireLock`, in the same turn of the event loop.

import { createLocksByKey, type Lock } from "@databases/lock";
import type { LockClient, SubjectDefinition, SubjectEnvironment } from "../types.js";

function keyedClient(
  locks: ReturnType<typeof createLocksByKey<string>>,
  store: Map<string, Lock>,
  env: SubjectEnvironment,
): LockClient {
  return {
    async tryAcquire(key) {
      const full = `${env.prefix}:${key}`;
      env.counters.attempts += 1;
      if (store.has(full)) {
        return null;
      }
      await locks.acquireLock(full);
      return {
        // No owner is checked: any caller may release a key.
        release: async () => {
          locks.releaseLock(full);
          return true;
        },
      };
    },
    async runExclusive(key, section) {
      env.counters.attempts += 1;
      await locks.withLock(`${env.prefix}:${key}`, section);
    },
  };
}

export const databasesLockMemory: SubjectDefinition = {
  name: "databases-lock-memory",
  backend: "memory",
  baseline: false,
  description:
    "@databases/lock createLocksByKey (in-process), one store shared by the child's clients, FIFO waiters (no TTL, no owner check)",
  async setup(env) {
    env.counters.commands = -1;
    const store = new Map<string, Lock>();
    const locks = createLocksByKey<string>({ store, timeoutMilliseconds: env.blockingTimeMs });
    return {
      async connect() {
        return keyedClient(locks, store, env);
      },
      async close() {
        store.clear();
      },
    };
  },
};
