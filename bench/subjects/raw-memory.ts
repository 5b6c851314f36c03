// The memory baseline: a plain Map from key to owner id, shared by every client of the child,
// and a poll every 10 ms while the key is held (as the Redis baseline does). Its semaphore: a
// Map from key to the set of slot ids, polled the same way.

import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { LockClient, SubjectDefinition, SubjectEnvironment } from "../types.js";
import { type PolledSteps, runPolled, tryPolled } from "./polled-section.js";

const POLL_MS = 10;

function mapClient(
  holds: Map<string, string>,
  slots: Map<string, Set<string>>,
  env: SubjectEnvironment,
): LockClient {
  const take = async (key: string, id: string) => {
    env.counters.attempts += 1;
    if (holds.has(key)) {
      return false;
    }
    holds.set(key, id);
    return true;
  };
  const release = async (key: string, id: string) => {
    if (holds.get(key) !== id) {
      return false;
    }
    holds.delete(key);
    return true;
  };
  /** One holder's attempt at a slot of `key`, and its release (the semaphore scenarios). */
  const slot = (key: string, limit: number): PolledSteps => {
    const id = randomUUID();
    return {
      take: async () => {
        env.counters.attempts += 1;
        const taken = slots.get(key) ?? new Set<string>();
        if (taken.size >= limit) {
          return false;
        }
        slots.set(key, taken.add(id));
        return true;
      },
      release: async () => {
        const taken = slots.get(key);
        taken?.delete(id);
        if (taken?.size === 0) {
          slots.delete(key);
        }
      },
    };
  };
  return {
    async tryAcquire(key) {
      const id = randomUUID();
      return (await take(key, id)) ? { release: () => release(key, id) } : null;
    },
    async runExclusive(key, section) {
      const id = randomUUID();
      const deadline = performance.now() + env.blockingTimeMs;
      while (!(await take(key, id))) {
        if (performance.now() >= deadline) {
          throw new Error(`raw-memory: "${key}" not acquired within ${env.blockingTimeMs} ms`);
        }
        await sleep(POLL_MS);
      }
      try {
        await section();
      } finally {
        await release(key, id);
      }
    },
    runLimited(key, limit, section) {
      return runPolled("raw-memory", key, env, { ...slot(key, limit), section });
    },
    tryLimited: (key, limit) => tryPolled(slot(key, limit)),
  };
}

export const rawMemory: SubjectDefinition = {
  name: "raw-memory",
  backend: "memory",
  baseline: true,
  description: "a plain Map of owner ids in the process, 10 ms polling",
  semaphore: "a Map from key to its Set of slot ids in the process, 10 ms polling",
  async setup(env) {
    env.counters.commands = -1;
    const holds = new Map<string, string>();
    const slots = new Map<string, Set<string>>();
    return {
      async connect() {
        return mapClient(holds, slots, env);
      },
      async close() {
        holds.clear();
        slots.clear();
      },
    };
  },
};
