// The memory baseline: a plain Map from key to owner id, shared by every client of the child,
// and a poll every 10 ms while the key is held (as the Redis baseline does).

import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { LockClient, SubjectDefinition, SubjectEnvironment } from "../types.js";

const POLL_MS = 10;

function mapClient(holds: Map<string, string>, env: SubjectEnvironment): LockClient {
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
  };
}

export const rawMemory: SubjectDefinition = {
  name: "raw-memory",
  backend: "memory",
  baseline: true,
  description: "a plain Map of owner ids in the process, 10 ms polling",
  async setup(env) {
    env.counters.commands = -1;
    const holds = new Map<string, string>();
    return {
      async connect() {
        return mapClient(holds, env);
      },
      async close() {
        holds.clear();
      },
    };
  },
};
