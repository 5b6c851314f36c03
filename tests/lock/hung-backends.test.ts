// Backends that stop answering rather than fail: a Redis stopped with SIGSTOP (or killed, with
// ioredis queueing commands while it reconnects), a PostgreSQL statement blocked on a row lock.
// A run's signal must abort when its hold may have ended, and a blocking acquire must return
// by its time plus the slack, leaving no claim behind.

import { type AddressInfo, createServer, type Socket } from "node:net";
import { Redis } from "ioredis";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, expect, test, vi } from "vitest";
import {
  KyselyLockAdapter,
  storedKey,
} from "../../src/lock/adapters/kysely/kysely-lock-adapter.js";
import {
  RedisLockAdapter,
  redisHoldKey,
} from "../../src/lock/adapters/redis/redis-lock-adapter.js";
import { FailedAcquireLockError, LockLostError } from "../../src/lock/contracts/lock-errors.js";
import { LOCK_STATE } from "../../src/lock/contracts/lock-state.js";
import { LockProvider } from "../../src/lock/lock-provider.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { BLOCKING_SLACK_MS } from "../../src/primitive/blocking-deadline.js";
import { CLOCK_DRIFT_FACTOR, CLOCK_DRIFT_MS } from "../../src/primitive/keep-alive.js";
import { TimeoutError } from "../../src/resilience/resilience-errors.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { describeWithBackend, uniqueName } from "../harness/backends.js";
import { PrivateRedisServer } from "../harness/private-redis.js";

const ms = (milliseconds: number) => TimeSpan.fromMilliseconds(milliseconds);
const LONG = TimeSpan.fromSeconds(30);
/** The blocking time of the acquires that meet a hung backend. */
const TIME = 500;
/** How much later than `TIME` + the slack a blocking acquire may return on a busy machine. */
const MARGIN = 1_500;

/** Resolves when `signal` aborts, or after `limit` ms. */
async function abortedWithin(signal: AbortSignal, limit: number): Promise<boolean> {
  if (!signal.aborted) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      timer = setTimeout(resolve, limit);
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
    clearTimeout(timer);
  }
  return signal.aborted;
}

type Outcome = { value?: unknown; error?: unknown; pending?: true; took: number };

/** How `task` ended and how long it took, or `pending` after `limit` ms. */
async function outcomeWithin(task: PromiseLike<unknown>, limit = 10_000): Promise<Outcome> {
  const start = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race<Omit<Outcome, "took">>([
    Promise.resolve(task).then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    ),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve({ pending: true }), limit);
    }),
  ]);
  clearTimeout(timer);
  return { ...outcome, took: performance.now() - start };
}

/** The three blocking forms, each by a lock of its own, against a key held by another. */
async function blockingAcquiresOf(provider: LockProvider, key: string) {
  const settings = { time: ms(TIME), interval: ms(50) };
  const fn = vi.fn();
  const waiters = [0, 1, 2].map(() => provider.create(key, { ttl: LONG }));
  const [w0, w1, w2] = waiters as [(typeof waiters)[0], (typeof waiters)[0], (typeof waiters)[0]];
  const [acquired, orFail, run] = await Promise.all([
    outcomeWithin(w0.acquireBlocking(settings)),
    outcomeWithin(w1.acquireBlockingOrFail(settings)),
    outcomeWithin(w2.runBlocking(fn, settings)),
  ]);
  expect(acquired.value).toBe(false);
  expect(orFail.error).toBeInstanceOf(FailedAcquireLockError);
  expect((orFail.error as Error).cause).toBeInstanceOf(TimeoutError);
  expect(run.value).toEqual([false, null]);
  for (const { took } of [acquired, orFail, run]) {
    expect(took).toBeGreaterThanOrEqual(TIME);
    expect(took).toBeLessThan(TIME + BLOCKING_SLACK_MS + MARGIN);
  }
  expect(fn).not.toHaveBeenCalled();
  return waiters;
}

/**
 * After the holder released: the key ends free, none of the waiters that gave up holds it, and
 * a newcomer takes it (no claim of theirs was left to be handed the key).
 */
async function expectLeftFree(
  provider: LockProvider,
  holder: { getState(): PromiseLike<{ type: string }> },
  waiters: ReadonlyArray<{ readonly fencingToken: number | null }>,
): Promise<void> {
  await vi.waitFor(async () => expect((await holder.getState()).type).toBe(LOCK_STATE.EXPIRED), {
    timeout: 5_000,
    interval: 50,
  });
  for (const waiter of waiters) {
    expect(waiter.fencingToken).toBeNull();
  }
  const newcomer = provider.create("busy", { ttl: LONG });
  expect(await newcomer.acquire()).toBe(true);
  expect(await newcomer.release()).toBe(true);
}

describeWithBackend("redis", () => {
  let redis: PrivateRedisServer;
  const clients: Redis[] = [];
  const adapters: RedisLockAdapter[] = [];

  beforeAll(async () => {
    redis = await PrivateRedisServer.start();
  });

  afterAll(async () => {
    redis.resume();
    for (const adapter of adapters) {
      await adapter.close();
    }
    for (const client of clients) {
      client.disconnect();
    }
    await redis.stop();
  });

  /** ioredis with its default settings: commands wait while it reconnects (20 retries). */
  function setup() {
    const client = new Redis({ host: "127.0.0.1", port: redis.port });
    // Connection errors are expected here; without a listener ioredis prints each one.
    client.on("error", () => {});
    const adapter = new RedisLockAdapter(client);
    const namespace = new Namespace(uniqueName("hung"));
    clients.push(client);
    adapters.push(adapter);
    return {
      client,
      provider: new LockProvider({ adapter, namespace }),
      hold: (key: string) => redisHoldKey(namespace.create(key).toString()),
    };
  }

  const untilReady = (client: Redis) =>
    vi.waitFor(() => expect(client.status).toBe("ready"), { timeout: 15_000, interval: 50 });

  for (const fault of ["killed", "stopped (SIGSTOP)"] as const) {
    test(`a run with a 1 s TTL on a Redis ${fault}: fn's signal aborts with LockLostError when the hold may have ended, not when ioredis gives up`, async () => {
      const { client, provider } = setup();
      await client.ping();
      const ttl = 1_000;
      const lock = provider.create("lease", { ttl: ms(ttl) });
      const start = performance.now();
      let seen!: (outcome: { aborted: boolean; reason: unknown; at: number }) => void;
      const outcome = new Promise<{ aborted: boolean; reason: unknown; at: number }>((resolve) => {
        seen = resolve;
      });
      // The run itself ends once Redis answers its release again: awaited after the restore.
      const run = Promise.resolve(
        lock.run(async ({ signal }) => {
          if (fault === "killed") {
            await redis.stop();
          } else {
            redis.pause();
          }
          const aborted = await abortedWithin(signal, 8_000);
          seen({ aborted, reason: signal.reason, at: performance.now() - start });
        }),
      );
      try {
        const { aborted, reason, at } = await outcome;
        expect(aborted).toBe(true);
        expect(reason).toBeInstanceOf(LockLostError);
        // From before the acquire was sent: the TTL less the drift margin, and not much more
        // (ioredis's retries alone would take about 10 s).
        expect(at).toBeGreaterThanOrEqual(ttl - (ttl * CLOCK_DRIFT_FACTOR + CLOCK_DRIFT_MS));
        expect(at).toBeLessThan(ttl + 1_500);
      } finally {
        if (fault === "killed") {
          await redis.start();
        } else {
          redis.resume();
        }
        await untilReady(client);
        await run;
      }
    }, 30_000);
  }

  test("a blocking acquire against a stopped Redis returns false by its time plus the slack, and leaves no live claim", async () => {
    const { client, provider, hold } = setup();
    const holder = provider.create("busy", { ttl: LONG });
    expect(await holder.acquire()).toBe(true);
    redis.pause();
    let waiters: Awaited<ReturnType<typeof blockingAcquiresOf>>;
    try {
      waiters = await blockingAcquiresOf(provider, "busy");
    } finally {
      redis.resume();
    }
    // Once Redis answers again, the queued waits leave (or run out on the server): no claim of
    // the waiters has a deadline ahead.
    const ids = new Set(waiters.map((waiter) => waiter.id));
    await vi.waitFor(
      async () => {
        const [seconds = "0", micros = "0"] = (await client.time()) as unknown as string[];
        const now = Number(seconds) * 1_000 + Number(micros) / 1_000;
        const entries = await client.lrange(`${hold("busy")}:queue`, 0, -1);
        const live = entries.filter((entry) => {
          const owner = entry.split(":").at(-1) ?? "";
          return ids.has(owner) && Number(entry.split(":")[0]) > now;
        });
        expect(live).toEqual([]);
      },
      { timeout: 10_000, interval: 50 },
    );
    // The holder's release hands the key to nobody: it is free, and no waiter holds it.
    expect(await holder.release()).toBe(true);
    await expectLeftFree(provider, holder, waiters);
  }, 30_000);
});

describeWithBackend("postgres", (url) => {
  let pool: pg.Pool;
  let listener: pg.Pool;
  let kysely: Kysely<unknown>;
  let table: string;
  const adapters: KyselyLockAdapter[] = [];

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: url, max: 10 });
    listener = new pg.Pool({ connectionString: url, max: 2 });
    kysely = new Kysely({ dialect: new PostgresDialect({ pool }) });
    table = uniqueName("hung");
    await new KyselyLockAdapter({ kysely, tableName: table }).init();
  });

  afterAll(async () => {
    await Promise.all(adapters.map((adapter) => adapter.close()));
    await new KyselyLockAdapter({ kysely, tableName: table }).dropSchema();
    await kysely.destroy();
    await listener.end();
  });

  for (const listening of [false, true]) {
    test(`a blocking acquire whose statement waits on a row lock returns false by its time plus the slack (${listening ? "with" : "without"} a listener), and leaves no claim`, async () => {
      const adapter = new KyselyLockAdapter({
        kysely,
        tableName: table,
        ...(listening ? { listener } : {}),
      });
      adapters.push(adapter);
      const namespace = new Namespace(uniqueName("rowlock"));
      const provider = new LockProvider({ adapter, namespace });
      const holder = provider.create("busy", { ttl: LONG });
      expect(await holder.acquire()).toBe(true);
      const key = storedKey(namespace.create("busy").toString());
      // Another session holds the key's row lock in an open transaction: every statement on
      // the row waits for it, as behind a slow migration or a stuck session.
      const blocker = await pool.connect();
      let waiters: Awaited<ReturnType<typeof blockingAcquiresOf>>;
      try {
        await blocker.query("BEGIN");
        await blocker.query(`SELECT 1 FROM "${table}" WHERE lock_key = $1 FOR UPDATE`, [key]);
        waiters = await blockingAcquiresOf(provider, "busy");
      } finally {
        await blocker.query("ROLLBACK");
        blocker.release();
      }
      // The statements that waited ran, and no claim of the waiters is left in the row.
      await vi.waitFor(
        async () => {
          // (A statement woken by the ROLLBACK is still active, not waiting, until it ends.)
          const { rows: running } = await pool.query(
            `SELECT query FROM pg_stat_activity
             WHERE state = 'active' AND pid <> pg_backend_pid() AND query LIKE $1`,
            [`%${table}%`],
          );
          expect(running).toEqual([]);
          const { rows } = await pool.query<{ waiters: string[] | null }>(
            `SELECT waiters FROM "${table}" WHERE lock_key = $1`,
            [key],
          );
          const left = (rows[0]?.waiters ?? []).filter((entry) =>
            waiters.some((waiter) => entry.includes(waiter.id)),
          );
          expect(left).toEqual([]);
        },
        { timeout: 10_000, interval: 50 },
      );
      expect(await holder.release()).toBe(true);
      await expectLeftFree(provider, holder, waiters);
    }, 30_000);
  }
});

test("statements queued against a PostgreSQL server that never answers ask for connections in parallel (one per 8 queued), and all fail once connecting fails", async () => {
  // A server that accepts connections and never answers: every connect hangs until cut.
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const pool = new pg.Pool({ host: "127.0.0.1", port, user: "hasp", max: 10 });
  const kysely = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
  const adapter = new KyselyLockAdapter({ kysely, tableName: uniqueName("unanswered") });
  try {
    const settled = Array.from({ length: 24 }, (_, index) =>
      adapter.acquire(`key-${index}`, `owner-${index}`, LONG).then(
        () => "answered",
        () => "failed",
      ),
    );
    // One request per lease's worth (8) of queued statements: 3 connects at once, not 1.
    await expect.poll(() => sockets.size, { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
    server.close();
    for (const socket of sockets) {
      socket.destroy();
    }
    expect(await Promise.all(settled)).toEqual(Array.from({ length: 24 }, () => "failed"));
  } finally {
    server.close();
    await kysely.destroy().catch(() => {});
  }
});
