import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe } from "vitest";
import { redisHashTag } from "../../src/backends/redis/redis-client.js";
import { RedisSemaphoreAdapter } from "../../src/semaphore/adapters/redis/redis-semaphore-adapter.js";
import { semaphoreAdapterTestSuite } from "../../src/semaphore/test-suites/semaphore-adapter-test-suite.js";
import { createRedisClient, describeWithBackend, uniqueName } from "../harness/backends.js";

describeWithBackend("redis", (url) => {
  let client: Redis;
  const adapters: RedisSemaphoreAdapter[] = [];
  const newAdapter = () => {
    const adapter = new RedisSemaphoreAdapter(client);
    adapters.push(adapter);
    return adapter;
  };

  beforeAll(() => {
    client = createRedisClient(url);
  });

  afterAll(async () => {
    await Promise.all(adapters.map((adapter) => adapter.close()));
    await client.quit();
  });

  describe("adapter conformance", () => {
    semaphoreAdapterTestSuite({
      createAdapter: newAdapter,
      keyPrefix: `${uniqueName("i20-redis-sem")}:`,
      queuedWaits: (key) => client.llen(`${redisHashTag(key)}:queue`),
    });
  });
});
