// Adversarial: one owner waiting twice. A lock (or two locks given the same lockId) runs two
// blocking acquires while another lock holds the key; the release hands the key to the first
// wait; the second is aborted. Its leaving must not give away the hold the first wait was
// handed (the owner is the same: a leave that releases "the key if it was handed to this
// owner" frees the first wait's hold): a stranger's acquire must then fail.
import type { Redis } from "ioredis";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  KyselyLockAdapter,
  storedKey,
} from "../../src/lock/adapters/kysely/kysely-lock-adapter.js";
import { MemoryLockAdapter } from "../../src/lock/adapters/memory/memory-lock-adapter.js";
import {
  RedisLockAdapter,
  redisHoldKey,
} from "../../src/lock/adapters/redis/redis-lock-adapter.js";
import type { ILock } from "../../src/lock/contracts/lock.js";
import type { ILockAdapter, LockAcquireResult } from "../../src/lock/contracts/lock-adapter.js";
import { LOCK_STATE } from "../../src/lock/contracts/lock-state.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { createRedisClient, describeWithBackend, uniqueName } from "../harness/backends.js";
import { describeWorlds, eventually } from "./worlds.js";

const KEY = "double";
const LONG = TimeSpan.fromSeconds(30);

/** What a task settled with: its value, or its error. */
function outcome<T>(task: PromiseLike<T>): Promise<{ value: T } | { error: unknown }> {
  return Promise.resolve(task).then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

describeWorlds((fresh) => {
  for (const shape of ["one lock", "two locks with the same lockId"] as const) {
    test(`${shape}: two waits, the first handed the key, the second aborted: the first still holds it and a stranger cannot take it`, async () => {
      const world = fresh();
      const holder = world.provider().create(KEY, { ttl: LONG });
      const owners = world.provider();
      const first = owners.create(KEY, { ttl: LONG, lockId: "owner-7" });
      const second =
        shape === "one lock" ? first : owners.create(KEY, { ttl: LONG, lockId: "owner-7" });
      const stranger = world.provider().create(KEY, { ttl: LONG });
      await holder.acquireOrFail();

      const firstWait = outcome(first.acquireBlocking({ time: LONG }));
      await world.untilQueued(KEY, 1);
      const giveUp = new AbortController();
      const reason = new Error("the second wait gave up");
      const secondWait = outcome(second.acquireBlocking({ time: LONG }).withSignal(giveUp.signal));
      await world.untilQueued(KEY, 2);

      expect(await holder.release()).toBe(true);
      expect(await firstWait, "the first wait is handed the key").toEqual({ value: true });
      const token = first.fencingToken;
      expect(token).not.toBeNull();

      giveUp.abort(reason);
      // Aborted, or granted before the abort (the owner's own live hold): either is fine.
      const secondEnd = await secondWait;
      expect([reason, true]).toContainEqual(
        "error" in secondEnd ? secondEnd.error : secondEnd.value,
      );
      // The second wait has left the queue (its entry taken out in the step that decides
      // what its leaving does to the key).
      await eventually(async () => expect(await world.queued(KEY)).toBe(0));

      await expectHeldBy(first, token, stranger);
      expect(await first.release()).toBe(true);
    });
  }
});

/** `owner` holds the key with `token` and `stranger` cannot take it. */
async function expectHeldBy(owner: ILock, token: number | null, stranger: ILock): Promise<void> {
  expect(await stranger.acquire(), "a stranger takes the key its owner believes it holds").toBe(
    false,
  );
  expect(await owner.getState()).toMatchObject({ type: LOCK_STATE.ACQUIRED, fencingToken: token });
  expect(await stranger.getState()).toMatchObject({
    type: LOCK_STATE.UNAVAILABLE,
    owner: owner.id,
  });
}

// F4 on the lock: a wait whose queue entry lapsed (its process paused past the entry's deadline,
// a release then dropping the entry) and that is then aborted must not free a hold its owner took
// meanwhile. The lapse needs the process paused between commands it sent, so this runs on the
// adapters, each backend sending its commands its own way (lapseWorlds below).

/** What a backend gives the lapse test beyond its adapter. */
type LapseWorld = {
  adapter: ILockAdapter;
  /** Resolves once `count` waits are queued on `key` (memory queues in the call). */
  untilQueued(key: string, count: number): Promise<void>;
  /**
   * Sends, before returning, `holder`'s release of `key` (which serves the queue, and so drops
   * the entries past their deadline), then an acquire of the key for `owner`, ordered before any
   * command the adapter sends after it. Answers the acquire's token (null: not acquired).
   */
  releaseThenAcquire(key: string, holder: string, owner: string): Promise<number | null>;
};

/** Blocks the event loop (no timer, no I/O callback runs) until `Date.now()` reaches `until`. */
function blockUntil(until: number): void {
  while (Date.now() < until) {
    // The wait's own timers must not run: the test plays a process paused past its deadline.
  }
}

/** The lapsing wait's max wait: its entry lapses this long after it was queued. */
const LAPSING_WAIT_MS = 1_500;

/**
 * alice holds the key; owner-7 waits (a claim), and its process is paused (the event loop
 * blocked) past the entry's deadline. In the pause, alice's release drops the lapsed entry and
 * frees the key, and owner-7 takes it with an acquire (another lock of the same lockId, or the
 * same lock's next acquire: the hold that acquire reports is the owner's). Then the wait is
 * aborted. Its entry is gone, yet the key was never handed to it: its leaving must not free the
 * hold the acquire took (Redis's leave released the owner's hold whenever the entry was gone).
 */
function lapsedWaitThenAbort(name: string, make: () => LapseWorld) {
  test(`${name}: a wait whose entry lapsed, then aborted, leaves the hold its owner took meanwhile`, async () => {
    // A busy machine may run the wait's own deadline before the test blocks it: then nothing
    // was attacked, and the scenario runs again.
    for (let attempt = 1; ; attempt += 1) {
      const attacked = await lapseThenAbort(make(), uniqueName(`lockf4-lapse-${attempt}`));
      if (attacked || attempt === 3) {
        expect(attacked, "the wait was aborted, not ended by its deadline").toBe(true);
        return;
      }
    }
  }, 30_000);
}

/** One run of the lapse scenario on `key`: `false` when the abort came too late to attack. */
async function lapseThenAbort(world: LapseWorld, key: string): Promise<boolean> {
  const { adapter } = world;
  expect(await adapter.acquire(key, "alice", LONG)).toMatchObject({ acquired: true });
  const started = Date.now();
  const controller = new AbortController();
  const reason = new Error("the wait gave up");
  let settled = false;
  const wait = outcome(
    adapter.waitForRelease!(key, TimeSpan.fromMilliseconds(LAPSING_WAIT_MS), controller.signal, {
      lockId: "owner-7",
      ttl: LONG,
    }),
  ).then((end) => {
    settled = true;
    return end;
  });
  await world.untilQueued(key, 1);
  // The entry's deadline, on the server's clock (this machine's), is before this plus the wait.
  const lapsed = Date.now() + LAPSING_WAIT_MS + 50;
  let acquired: Promise<number | null>;
  if (!settled && Date.now() < started + LAPSING_WAIT_MS - 200) {
    blockUntil(lapsed);
    acquired = world.releaseThenAcquire(key, "alice", "owner-7");
    blockUntil(Date.now() + 200);
    controller.abort(reason);
  } else {
    controller.abort(reason);
    acquired = world.releaseThenAcquire(key, "alice", "owner-7");
  }
  const end = await wait;
  const token = await acquired;
  // Aborted; or handed the key when the release served the queue (memory does so at once,
  // having no lapse), the acquire then re-taking the owner's hold: both leave the key held.
  // Anything else (the wait ended by its deadline before the test could pause it) attacked
  // nothing.
  const handed = "value" in end && end.value?.acquired === true;
  if (!handed && !("error" in end && end.error === reason)) {
    await adapter.forceRelease(key);
    return false;
  }
  expect(token, "owner-7's acquire took the key").not.toBeNull();
  // owner-7 was told it holds the key: the key is still its, with that token.
  const state = await adapter.getState(key);
  const stranger = await adapter.acquire(key, "stranger", LONG);
  await adapter.forceRelease(key);
  expect(state, "the hold owner-7's acquire took").toMatchObject({
    owner: "owner-7",
    fencingToken: token,
  });
  expect(stranger, "a stranger takes the key owner-7 believes it holds").toMatchObject({
    acquired: false,
  });
  return true;
}

describe("memory (lapse)", () => {
  lapsedWaitThenAbort("memory", () => {
    const adapter = new MemoryLockAdapter();
    return {
      adapter,
      untilQueued: () => Promise.resolve(),
      releaseThenAcquire: (key, holder, owner) => {
        void adapter.release(key, holder);
        return adapter.acquire(key, owner, LONG).then(tokenOf);
      },
    };
  });
});

describeWithBackend("redis", (url) => {
  let client: Redis;
  const adapters: RedisLockAdapter[] = [];
  beforeAll(() => {
    client = createRedisClient(url);
  });
  afterAll(async () => {
    await Promise.all(adapters.map((adapter) => adapter.close()));
    await client.quit();
  });
  lapsedWaitThenAbort("redis", () => {
    const adapter = new RedisLockAdapter(client);
    adapters.push(adapter);
    return {
      adapter,
      untilQueued: (key, count) =>
        eventually(async () =>
          expect(await client.llen(`${redisHoldKey(key)}:queue`)).toBeGreaterThanOrEqual(count),
        ),
      // Both go out on the adapter's connection in the call, before its later commands.
      releaseThenAcquire: (key, holder, owner) => {
        void adapter.release(key, holder);
        return adapter.acquire(key, owner, LONG).then(tokenOf);
      },
    };
  });
});

describeWithBackend("postgres", (url) => {
  const table = uniqueName("lockf4_lapse");
  let kysely: Kysely<unknown>;
  let listener: pg.Pool;
  /** A connection of its own, whose query is written before `query` returns. */
  let direct: pg.Client;
  const adapters: KyselyLockAdapter[] = [];
  const make = () => {
    const adapter = new KyselyLockAdapter({ kysely, tableName: table, listener });
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
  const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;
  lapsedWaitThenAbort("postgres with a listener", () => ({
    adapter: make(),
    untilQueued: (key, count) =>
      eventually(async () => {
        const { rows } = await direct.query<{ n: number | null }>(
          `SELECT cardinality(waiters) AS n FROM "${table}" WHERE lock_key = $1`,
          [storedKey(key)],
        );
        expect(rows[0]?.n ?? 0).toBeGreaterThanOrEqual(count);
      }),
    // The release and the acquire procedures in one query on the direct connection: written
    // before the adapter's leave (on a pooled connection, ticks later), and run in the pause
    // that follows.
    releaseThenAcquire: async (key, holder, owner) => {
      const stored = literal(storedKey(key));
      const results = (await direct.query(
        `CALL "${table}:release"(${stored}, ${literal(holder)}, NULL::bigint);
CALL "${table}:acquire"(${stored}, ${literal(owner)}, ${LONG.toMilliseconds()}::bigint, NULL::text, NULL::bigint, NULL::bigint)`,
      )) as unknown as pg.QueryResult<{ owner: string | null; token: string | null }>[];
      const row = results[1]?.rows[0];
      return row?.owner === owner && row.token !== null ? Number(row.token) : null;
    },
  }));
});

/** An acquire's token, null when not acquired. */
function tokenOf(result: LockAcquireResult): number | null {
  return result.acquired ? result.fencingToken : null;
}
