// Attacks on the semaphore's queued waits, on memory, Redis and PostgreSQL with a listener: a
// second wait of one slot id aborted in the grant's tick, and a newcomer trying to pass a claim
// its own smaller limit holds back (each failed on one backend before its fix).
import type { Redis } from "ioredis";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { KyselySemaphoreAdapter } from "../../src/semaphore/adapters/kysely/kysely-semaphore-adapter.js";
import { MemorySemaphoreAdapter } from "../../src/semaphore/adapters/memory/memory-semaphore-adapter.js";
import { RedisSemaphoreAdapter } from "../../src/semaphore/adapters/redis/redis-semaphore-adapter.js";
import type {
  ISemaphoreAdapter,
  SemaphoreWaitClaim,
} from "../../src/semaphore/contracts/semaphore-adapter.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { createRedisClient, describeWithBackend, uniqueName } from "../harness/backends.js";

const LONG = TimeSpan.fromSeconds(30);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Two waits of one slot id; a release serves the first; the second is aborted right after the
 * release returns (in the grant's tick, before its message is heard). The first wait was handed
 * the slot: it must still be live afterwards (the second's abort must not free it).
 */
function twoWaitsOfOneSlotId(
  name: string,
  make: () => { adapter: ISemaphoreAdapter; prefix: string },
) {
  test(`${name}: the second wait's abort in the grant's tick leaves the first wait's slot held`, async () => {
    const { adapter, prefix } = make();
    const key = `${prefix}two-waits`;
    await adapter.acquire(key, "alice", 2, LONG);
    await adapter.acquire(key, "carol", 2, LONG);
    const claim: SemaphoreWaitClaim = { slotId: "bob", limit: 2, ttl: LONG };
    const first = adapter.waitForRelease!(
      key,
      TimeSpan.fromSeconds(10),
      new AbortController().signal,
      claim,
    );
    const controller = new AbortController();
    const second = adapter.waitForRelease!(
      key,
      TimeSpan.fromSeconds(10),
      controller.signal,
      claim,
    ).then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    await sleep(300);
    expect(await adapter.release(key, "alice")).toBe(true);
    controller.abort(new Error("the second wait gave up"));
    const handed = await first;
    await second;
    expect(handed).toMatchObject({ acquired: true });
    // bob was told it holds a slot: the key must still count it.
    const state = await adapter.getState(key, "bob");
    expect(state?.slot?.fencingToken).toBe(handed?.fencingToken);
    expect(state?.acquiredSlotsCount).toBe(2);
    await adapter.forceReleaseAll(key);
  });
}

/**
 * A claim held back by its own smaller limit is queued first; a newcomer with the greater limit
 * must not take the slot that is free under its own limit (first come, first served: otherwise
 * the smaller-limit claim can be passed for ever while greater-limit users keep the count up).
 */
function noNewcomerPastASmallerLimitClaim(
  name: string,
  make: () => { adapter: ISemaphoreAdapter; prefix: string },
) {
  test(`${name}: a newcomer does not pass a queued claim held back by its smaller limit`, async () => {
    const { adapter, prefix } = make();
    const key = `${prefix}smaller-limit`;
    await adapter.acquire(key, "alice", 3, LONG);
    await adapter.acquire(key, "bob", 3, LONG);
    const controller = new AbortController();
    const carol = adapter.waitForRelease!(key, TimeSpan.fromSeconds(5), controller.signal, {
      slotId: "carol",
      limit: 2,
      ttl: LONG,
    }).then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    await sleep(300);
    const dave = await adapter.acquire(key, "dave", 3, LONG);
    controller.abort(new Error("done"));
    await carol;
    await adapter.forceReleaseAll(key);
    expect(dave).toMatchObject({ acquired: false });
  });
}

describe("memory", () => {
  twoWaitsOfOneSlotId("memory", () => ({ adapter: new MemorySemaphoreAdapter(), prefix: "m:" }));
  noNewcomerPastASmallerLimitClaim("memory", () => ({
    adapter: new MemorySemaphoreAdapter(),
    prefix: "m:",
  }));
});

describeWithBackend("redis", (url) => {
  let client: Redis;
  const adapters: RedisSemaphoreAdapter[] = [];
  beforeAll(() => {
    client = createRedisClient(url);
  });
  afterAll(async () => {
    await Promise.all(adapters.map((adapter) => adapter.close()));
    await client.quit();
  });
  const prefix = `${uniqueName("i20review")}:`;
  const makeRedis = () => {
    const adapter = new RedisSemaphoreAdapter(client);
    adapters.push(adapter);
    return { adapter, prefix };
  };
  twoWaitsOfOneSlotId("redis", makeRedis);
  noNewcomerPastASmallerLimitClaim("redis", makeRedis);
});

describeWithBackend("postgres", (url) => {
  const table = uniqueName("i20review_sem");
  let kysely: Kysely<any>;
  let listener: pg.Pool;
  const adapters: KyselySemaphoreAdapter[] = [];
  const make = () => {
    const adapter = new KyselySemaphoreAdapter({ kysely, tableName: table, listener });
    adapters.push(adapter);
    return adapter;
  };
  beforeAll(async () => {
    kysely = new Kysely({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 10 }) }),
    });
    listener = new pg.Pool({ connectionString: url, max: 5 });
    await make().init();
  });
  afterAll(async () => {
    await Promise.all(adapters.map((adapter) => adapter.close()));
    await adapters[0]?.dropSchema();
    await kysely.destroy();
    await listener.end();
  });
  twoWaitsOfOneSlotId("postgres with a listener", () => ({ adapter: make(), prefix: "p:" }));
  noNewcomerPastASmallerLimitClaim("postgres with a listener", () => ({
    adapter: make(),
    prefix: "p:",
  }));
});
