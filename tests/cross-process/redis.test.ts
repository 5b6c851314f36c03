import { fileURLToPath } from "node:url";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, expect, test } from "vitest";
import { redisHoldKey } from "../../src/lock/adapters/redis/redis-lock-adapter.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { createRedisClient, describeWithBackend, uniqueName } from "../harness/backends.js";
import { checkSections, type Section, startWorker } from "./worker-process.js";

const WORKERS = 4;
const SECTIONS = 50;
const WORKER = fileURLToPath(new URL("./fixtures/redis-worker.ts", import.meta.url));

describeWithBackend("redis", (url) => {
  let client: Redis;

  beforeAll(() => {
    client = createRedisClient(url);
  });

  afterAll(async () => {
    await client.quit();
  });

  test(`${WORKERS} processes x ${SECTIONS} sections on one key: no lost update, increasing tokens, no overlap`, async () => {
    const namespace = uniqueName("xproc");
    const key = "job";
    const counterKey = `${namespace}:counter`;
    const logKey = `${namespace}:sections`;
    const hold = redisHoldKey(new Namespace(namespace).create(key).toString());
    const epoch = process.hrtime.bigint();
    const workers = Array.from({ length: WORKERS }, () =>
      startWorker(WORKER, [url, namespace, key, String(SECTIONS), String(epoch)]),
    );
    try {
      await Promise.all(workers.map((worker) => worker.ready));
      for (const worker of workers) {
        worker.child.stdin?.write("go\n");
      }
      const exits = await Promise.all(workers.map((worker) => worker.exited));
      expect(exits, workers.map((worker) => worker.stderr()).join("\n")).toEqual(
        Array.from({ length: WORKERS }, () => 0),
      );

      const total = WORKERS * SECTIONS;
      // No lost update: every read-modify-write saw the previous one's write.
      expect(await client.get(counterKey)).toBe(String(total));

      const log = (await client.lrange(logKey, 0, -1)).map((line) => JSON.parse(line) as Section);
      const handoffs = checkSections(
        log,
        workers.map((worker) => worker.child.pid ?? 0),
        SECTIONS,
      );
      console.log(
        `[cross-process redis] ${total} sections, ${handoffs} hand-offs between processes`,
      );
      expect(handoffs).toBeGreaterThanOrEqual(WORKERS);
    } finally {
      for (const worker of workers) {
        worker.kill();
      }
      await client.del(counterKey, logKey, hold, `${hold}:fence`);
    }
  }, 60_000);
});
