// SemaphoreProvider over RedisSemaphoreAdapter, as an application uses it: several adapters
// (each its own client and subscriber, as processes would have) contend for a small limit.
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, expect, test } from "vitest";
import { Namespace } from "../../src/namespace/namespace.js";
import { RedisSemaphoreAdapter } from "../../src/semaphore/adapters/redis/redis-semaphore-adapter.js";
import { SemaphoreProvider } from "../../src/semaphore/semaphore-provider.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { createRedisClient, describeWithBackend, uniqueName } from "../harness/backends.js";

describeWithBackend("redis", (url) => {
  const clients: Redis[] = [];
  const adapters: RedisSemaphoreAdapter[] = [];
  let namespace: Namespace;

  beforeAll(() => {
    namespace = new Namespace([uniqueName("i20-redis-sem-provider")]);
  });

  afterAll(async () => {
    await Promise.all(adapters.map((adapter) => adapter.close()));
    await Promise.all(clients.map((client) => client.quit()));
  });

  function provider(): SemaphoreProvider {
    const client = createRedisClient(url);
    clients.push(client);
    const adapter = new RedisSemaphoreAdapter(client);
    adapters.push(adapter);
    return new SemaphoreProvider({ adapter, namespace });
  }

  test("24 workers on 4 adapters, limit 3: never more than 3 inside, every worker served, tokens unique and above every slot released before the acquire began", async () => {
    const providers = [provider(), provider(), provider(), provider()];
    const key = "storm";
    let inside = 0;
    let most = 0;
    /** The greatest token of a slot whose release had returned: every later acquire is above it. */
    let released = 0;
    const entered: number[] = [];
    const rounds = 4;
    const worker = async (index: number) => {
      const semaphore = providers[index % providers.length]?.create(key, {
        limit: 3,
        ttl: TimeSpan.fromSeconds(30),
      });
      if (semaphore === undefined) {
        throw new Error("no provider");
      }
      for (let round = 0; round < rounds; round += 1) {
        const before = released;
        const token = await semaphore.acquireBlockingOrFail({ time: TimeSpan.fromSeconds(60) });
        inside += 1;
        most = Math.max(most, inside);
        expect(token).toBeGreaterThan(before);
        entered.push(token);
        await sleep(2);
        inside -= 1;
        expect(await semaphore.release()).toBe(true);
        released = Math.max(released, token);
      }
    };
    await Promise.all(Array.from({ length: 24 }, (_, index) => worker(index)));
    expect(most).toBeLessThanOrEqual(3);
    expect(most).toBe(3);
    expect(entered).toHaveLength(24 * rounds);
    expect(new Set(entered).size).toBe(entered.length);
    const state = await providers[0]?.create(key, { limit: 3 }).getState();
    expect(state?.type).toBe("EXPIRED");
  });
});
