// An attack on the semaphore's queued waits, on memory, Redis and PostgreSQL with a listener: a
// second wait of one slot id whose queue entry lapsed before its abort (F4: failed on Redis
// and PostgreSQL before their fixes). The other attacks on these waits are in
// semaphoreAdapterTestSuite, which every adapter runs. This one stays here: it must send a
// release before pausing the process, which each backend does its own way (PostgreSQL: on a
// connection of its own, as the adapter's pooled statements go out ticks later).
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

/** What a backend gives the lapse test beyond its adapter. */
type LapseWorld = {
  adapter: ISemaphoreAdapter;
  prefix: string;
  /** Resolves once `count` waits are queued on `key` (memory queues in the call). */
  untilQueued(key: string, count: number): Promise<void>;
  /**
   * Sends, before returning, a release of `slotId`'s slot on `key` (which serves the queue, and
   * so drops the entries past their deadline), ordered before any command the adapter sends
   * after it.
   */
  releaseNow(key: string, slotId: string): void;
};

/** Blocks the event loop (no timer, no I/O callback runs) until `Date.now()` reaches `until`. */
function blockUntil(until: number): void {
  while (Date.now() < until) {
    // The waits' own timers must not run: the test plays a process paused past its deadline.
  }
}

/** Polls `check` until it holds (fails after 10 s). */
async function until(check: () => Promise<boolean>): Promise<void> {
  const giveUp = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > giveUp) {
      throw new Error("the state never came");
    }
    await sleep(5);
  }
}

/**
 * alice and carol hold both slots of `key` (limit 2); bob's first wait starts (10 s, never
 * aborted). Its claim, for a second wait of the same slot id, and the wait.
 */
async function fullThenBobWaits(adapter: ISemaphoreAdapter, key: string) {
  await adapter.acquire(key, "alice", 2, LONG);
  await adapter.acquire(key, "carol", 2, LONG);
  const claim: SemaphoreWaitClaim = { slotId: "bob", limit: 2, ttl: LONG };
  const first = adapter.waitForRelease!(
    key,
    TimeSpan.fromSeconds(10),
    new AbortController().signal,
    claim,
  );
  return { claim, first };
}

/** The second wait's max wait: its entry lapses this long after it was queued. */
const LAPSING_WAIT_MS = 1_500;

/**
 * Two waits of one slot id; a release hands the first a slot, and the first resolves with it.
 * The second stays queued, and its process is paused (the event loop blocked) past its entry's
 * deadline: the entry lapses, and another release, serving the queue, drops it. Then the
 * second is aborted. Its entry is gone, yet nothing was handed to it: its leaving must not free
 * the slot the first wait holds (F4: Redis's leave freed the slot id's slot, whichever wait it
 * was handed to).
 */
function lapsedSecondWaitOfOneSlotId(name: string, make: () => LapseWorld) {
  test(`${name}: a second wait of one slot id whose entry lapsed, then aborted, leaves the first wait's slot held`, async () => {
    // A busy machine may run the second wait's own deadline before the test blocks it: then
    // nothing was attacked, and the scenario runs again.
    for (let attempt = 1; ; attempt += 1) {
      const world = make();
      const attacked = await lapseThenAbort(world, `${world.prefix}lapse-${attempt}`);
      if (attacked || attempt === 3) {
        expect(attacked, "the second wait was aborted, not ended by its deadline").toBe(true);
        return;
      }
    }
  }, 30_000);
}

/** One run of the lapse scenario on `key`: `false` when the abort came too late to attack. */
async function lapseThenAbort(world: LapseWorld, key: string): Promise<boolean> {
  const { adapter } = world;
  const { claim, first } = await fullThenBobWaits(adapter, key);
  await world.untilQueued(key, 1);
  const secondStarted = Date.now();
  const controller = new AbortController();
  const reason = new Error("the second wait gave up");
  let settled = false;
  const second = adapter.waitForRelease!(
    key,
    TimeSpan.fromMilliseconds(LAPSING_WAIT_MS),
    controller.signal,
    claim,
  ).then(
    (value) => {
      settled = true;
      return { value };
    },
    (error: unknown) => {
      settled = true;
      return { error };
    },
  );
  await world.untilQueued(key, 2);
  // The entry's deadline, on the server's clock (this machine's), is before this plus the wait.
  const lapsed = Date.now() + LAPSING_WAIT_MS + 50;
  expect(await adapter.release(key, "alice")).toBe(true);
  const handed = await first;
  expect(handed).toMatchObject({ acquired: true });
  const tooLate = Date.now() > secondStarted + LAPSING_WAIT_MS - 200;
  if (!settled && !tooLate) {
    blockUntil(lapsed);
    world.releaseNow(key, "carol");
    blockUntil(Date.now() + 200);
    controller.abort(reason);
  } else {
    controller.abort(reason);
    await adapter.release(key, "carol");
  }
  const end = await second;
  // Aborted; or answered with the slot id's live slot when a release served the queue (memory
  // does so at once, having no lapse): both leave the slot held. Anything else (the wait ended
  // by its deadline before the test could pause it) attacked nothing.
  const shared =
    "value" in end &&
    end.value?.acquired === true &&
    end.value.fencingToken === handed?.fencingToken;
  if (!shared && !("error" in end && end.error === reason)) {
    await adapter.forceReleaseAll(key);
    return false;
  }
  // bob was told it holds a slot: the key must still count it, with the first wait's token.
  const state = await adapter.getState(key, "bob");
  await adapter.forceReleaseAll(key);
  expect(state?.slot?.fencingToken).toBe(handed?.fencingToken);
  expect(state?.acquiredSlotsCount).toBe(1);
  return true;
}

describe("memory", () => {
  lapsedSecondWaitOfOneSlotId("memory", () => {
    const adapter = new MemorySemaphoreAdapter();
    return {
      adapter,
      prefix: "m:",
      untilQueued: () => Promise.resolve(),
      releaseNow: (key, slotId) => void adapter.release(key, slotId),
    };
  });
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
  lapsedSecondWaitOfOneSlotId("redis", () => {
    const { adapter } = makeRedis();
    return {
      adapter,
      prefix,
      untilQueued: (key, count) =>
        until(async () => (await client.llen(`{${key}}:queue`)) >= count),
      // The adapter's commands go on the same connection, after this one.
      releaseNow: (key, slotId) => void adapter.release(key, slotId),
    };
  });
});

describeWithBackend("postgres", (url) => {
  const table = uniqueName("i20review_sem");
  let kysely: Kysely<any>;
  let listener: pg.Pool;
  /** A connection of its own, whose query is written before `query` returns. */
  let direct: pg.Client;
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
    direct = new pg.Client({ connectionString: url });
    await direct.connect();
    await make().init();
  });
  afterAll(async () => {
    await Promise.all(adapters.map((adapter) => adapter.close()));
    await adapters[0]?.dropSchema();
    await kysely.destroy();
    await listener.end();
    await direct.end();
  });
  // F4 on PostgreSQL: "<table>:leave" freed the owner's live slot whenever the entry was gone,
  // whichever wait it was handed to; it now frees only a slot served to this very wait.
  lapsedSecondWaitOfOneSlotId("postgres with a listener", () => ({
    adapter: make(),
    prefix: "p:",
    untilQueued: (key, count) =>
      until(async () => {
        const { rows } = await direct.query<{ n: number | null }>(
          `SELECT cardinality(waiters) AS n FROM "${table}" WHERE sem_key = $1`,
          [key],
        );
        return (rows[0]?.n ?? 0) >= count;
      }),
    // The release procedure's statement, on the direct connection: written before the adapter's
    // leave (on a pooled connection, ticks later), and run in the pause that follows.
    releaseNow: (key, slotId) =>
      void direct
        .query(`CALL "${table}:release"($1::text, $2::text, NULL::bigint)`, [key, slotId])
        .catch(() => {}),
  }));
});
