// Peer: async-mutex (issue 7), in-process only: a Mutex per key in a Map shared by the child's
// clients, dropped when it is free and nobody waits (what a user of a keyed mutex writes).
// `tryAcquire(mutex).acquire()` for the cycle scenarios, `withTimeout(mutex).runExclusive` (its
// FIFO queue, no polling) for the contended ones.

import { E_ALREADY_LOCKED, Mutex, tryAcquire, withTimeout } from "async-mutex";
import type { LockClient, SubjectDefinition, SubjectEnvironment } from "../types.js";

function keyedClient(mutexes: Map<string, Mutex>, env: SubjectEnvironment): LockClient {
  const mutexFor = (key: string) => {
    let mutex = mutexes.get(key);
    if (mutex === undefined) {
      mutex = new Mutex();
      mutexes.set(key, mutex);
    }
    return mutex;
  };
  // A release hands the mutex to the next waiter at once, so a free one has no waiter left.
  const forget = (key: string, mutex: Mutex) => {
    if (!mutex.isLocked() && mutexes.get(key) === mutex) {
      mutexes.delete(key);
    }
  };
  return {
    async tryAcquire(key) {
      const full = `${env.prefix}:${key}`;
      const mutex = mutexFor(full);
      env.counters.attempts += 1;
      let releaser: () => void;
      try {
        releaser = await tryAcquire(mutex).acquire();
      } catch (error) {
        if (error === E_ALREADY_LOCKED) {
          return null;
        }
        throw error;
      }
      return {
        release: async () => {
          releaser();
          forget(full, mutex);
          return true;
        },
      };
    },
    async runExclusive(key, section) {
      const full = `${env.prefix}:${key}`;
      const mutex = mutexFor(full);
      env.counters.attempts += 1;
      try {
        await withTimeout(mutex, env.blockingTimeMs).runExclusive(section);
      } finally {
        forget(full, mutex);
      }
    },
  };
}

export const asyncMutexMemory: SubjectDefinition = {
  name: "async-mutex-memory",
  backend: "memory",
  baseline: false,
  description:
    "async-mutex: a Mutex per key in a Map shared by the child's clients, FIFO waiters (no TTL, no owner check)",
  async setup(env) {
    env.counters.commands = -1;
    const mutexes = new Map<string, Mutex>();
    return {
      async connect() {
        return keyedClient(mutexes, env);
      },
      async close() {
        mutexes.clear();
      },
    };
  },
};
