import { setTimeout as sleep } from "node:timers/promises";
import { Kysely, MysqlDialect, PostgresDialect } from "kysely";
import mysql from "mysql2";
import type { RowDataPacket } from "mysql2/promise";
import pg from "pg";
import { afterAll, beforeAll, expect, test, vi } from "vitest";
import { KyselyLockAdapter } from "../../src/lock/adapters/kysely/kysely-lock-adapter.js";
import type { ILockAdapter } from "../../src/lock/contracts/lock-adapter.js";
import { LockBackendError } from "../../src/lock/contracts/lock-errors.js";
import { LOCK_EVENTS } from "../../src/lock/contracts/lock-events.js";
import { LockProvider } from "../../src/lock/lock-provider.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { createMysqlPool, describeWithBackend, uniqueName } from "../harness/backends.js";

const TTL = TimeSpan.fromSeconds(2);
const BLOCKING = { time: TimeSpan.fromSeconds(30) };
/** Sections every worker must complete after the last fault. */
const AFTER = 3;

type Failure = { worker: number; operation: string; error: unknown };

/**
 * Workers of this process taking turns on one key until stopped, each through its own provider:
 * acquire (blocking), a short section with a refresh in it, release. A holder variable shared
 * by every worker and the tokens in the order the sections began catch any double hold; every
 * failed call is kept for the test to judge, and the worker goes on.
 */
function contend(providers: LockProvider[], key: string) {
  let holder: number | null = null;
  let stopped = false;
  const tokens: number[] = [];
  const violations: string[] = [];
  const failures: Failure[] = [];
  const sections = providers.map(() => 0);

  const work = async (worker: number, provider: LockProvider) => {
    while (!stopped) {
      const lock = provider.create(key, { ttl: TTL });
      let token: number;
      try {
        token = await lock.acquireBlockingOrFail(BLOCKING);
      } catch (error) {
        failures.push({ worker, operation: "acquire", error });
        await sleep(10);
        continue;
      }
      if (holder !== null) {
        violations.push(`worker ${worker} (token ${token}) entered while worker ${holder} held`);
      }
      const last = tokens.at(-1);
      if (last !== undefined && token <= last) {
        violations.push(`worker ${worker}: token ${token} after ${last}`);
      }
      tokens.push(token);
      holder = worker;
      await sleep(1 + Math.floor(Math.random() * 2));
      try {
        await lock.refreshOrFail();
      } catch (error) {
        failures.push({ worker, operation: "refresh", error });
      }
      await sleep(1);
      if (holder !== worker) {
        violations.push(`worker ${worker} (token ${token}) lost its hold to worker ${holder}`);
      }
      holder = null;
      sections[worker] = (sections[worker] ?? 0) + 1;
      try {
        await lock.releaseOrFail();
      } catch (error) {
        failures.push({ worker, operation: "release", error });
      }
      await sleep(1);
    }
  };

  const done = Promise.all(providers.map((provider, worker) => work(worker, provider)));
  return {
    tokens,
    violations,
    failures,
    sections,
    /** Resolves once every worker has completed `count` more sections than now. */
    async completeMore(count: number) {
      const mark = [...sections];
      await vi.waitFor(
        () => {
          sections.forEach((done, worker) => {
            expect(done, `worker ${worker}`).toBeGreaterThanOrEqual((mark[worker] ?? 0) + count);
          });
        },
        { timeout: 30_000, interval: 50 },
      );
    },
    async stop() {
      stopped = true;
      await done;
    },
  };
}

/**
 * The checks every fault run ends with: never two holders, increasing tokens, faults seen as
 * LockBackendErrors carrying the driver's error, and nothing else going wrong.
 */
function expectCleanFailures(run: ReturnType<typeof contend>, label: string): void {
  expect(run.violations).toEqual([]);
  expect(run.failures.length, "a killed statement reached the caller").toBeGreaterThan(0);
  for (const { operation, error } of run.failures) {
    expect(error, `${operation}: ${String(error)}`).toBeInstanceOf(LockBackendError);
    const backendError = error as LockBackendError;
    // A blocking acquire also fails on its wait (the LISTEN connection's failure).
    expect([operation, ...(operation === "acquire" ? ["waitForRelease"] : [])]).toContain(
      backendError.operation,
    );
    expect(backendError.cause).toBeInstanceOf(Error);
    expect(backendError.message).toContain((backendError.cause as Error).message);
  }
  const byOperation = new Map<string, number>();
  for (const { operation } of run.failures) {
    byOperation.set(operation, (byOperation.get(operation) ?? 0) + 1);
  }
  const causes = new Set(
    run.failures.map(({ error }) => {
      const cause = (error as LockBackendError).cause as Error & { code?: unknown };
      return `${String(cause.code ?? "-")}: ${cause.message}`;
    }),
  );
  const counts = [...byOperation].map(([operation, count]) => `${operation} ${count}`);
  console.log(
    `[kysely faults ${label}] ${run.tokens.length} sections (${run.sections.join("/")} per worker), failed calls: ${counts.join(", ")}; causes: ${[...causes].join(" | ")}`,
  );
}

/** What `promise` settled to within 20 s, or "still waiting". */
async function within20s<T>(promise: Promise<T>) {
  const timer = new AbortController();
  try {
    return await Promise.race([
      promise.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
      sleep(20_000, "still waiting" as const, { signal: timer.signal }),
    ]);
  } finally {
    timer.abort();
  }
}

/** Every adapter method passed through, and the waits counted (one adapter, seen by the test). */
function observed(adapter: KyselyLockAdapter) {
  const counts = { waiting: 0, waits: 0 };
  const waitForRelease = adapter.waitForRelease;
  if (waitForRelease === undefined) {
    throw new Error("the adapter does not wait for releases");
  }
  const wrapped: ILockAdapter = {
    acquire: (...args) => adapter.acquire(...args),
    release: (...args) => adapter.release(...args),
    forceRelease: (...args) => adapter.forceRelease(...args),
    refresh: (...args) => adapter.refresh(...args),
    getState: (...args) => adapter.getState(...args),
    waitForRelease: async (...args) => {
      counts.waiting += 1;
      counts.waits += 1;
      try {
        return await waitForRelease(...args);
      } finally {
        counts.waiting -= 1;
      }
    },
  };
  return { adapter: wrapped, counts };
}

describeWithBackend("postgres", (url) => {
  let admin: pg.Pool;

  beforeAll(() => {
    admin = new pg.Pool({ connectionString: url, max: 3, application_name: uniqueName("admin") });
  });

  afterAll(async () => {
    await admin.end();
  });

  /** Terminates the backends of one application name; answers how many. */
  async function terminate(applicationName: string): Promise<number> {
    const { rows } = await admin.query<{ terminated: boolean }>(
      `SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = $1`,
      [applicationName],
    );
    return rows.filter((row) => row.terminated).length;
  }

  async function backends(applicationName: string, where = "true"): Promise<number[]> {
    const { rows } = await admin.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
       WHERE datname = current_database() AND application_name = $1 AND ${where}`,
      [applicationName],
    );
    return rows.map((row) => row.pid);
  }

  /** Pools with a name of their own in pg_stat_activity, and two adapters on one table. */
  function setup() {
    const application = uniqueName("pool");
    const listenerApplication = uniqueName("listen");
    const table = uniqueName("faults");
    const pool = new pg.Pool({ connectionString: url, max: 8, application_name: application });
    // pg reports a lost connection as an 'error' event, and one nobody listens to ends the
    // process: on the pool for an idle client, on the client itself while it is checked out
    // (pg-pool leaves those to the holder, and Kysely adds no listener). A termination read
    // together with a statement's last reply arrives before Kysely gives the client back, so
    // an application needs both listeners, as this one has.
    let poolErrors = 0;
    let clientErrors = 0;
    pool.on("error", () => {
      poolErrors += 1;
    });
    pool.on("connect", (client) => {
      client.on("error", () => {
        clientErrors += 1;
      });
    });
    // No error listener here: the adapter keeps its LISTEN client checked out and handles it.
    const listener = new pg.Pool({
      connectionString: url,
      max: 4,
      application_name: listenerApplication,
    });
    const kysely = new Kysely({ dialect: new PostgresDialect({ pool }) });
    const adapters = [0, 1].map(
      () => new KyselyLockAdapter({ kysely, tableName: table, listener }),
    ) as [KyselyLockAdapter, KyselyLockAdapter];
    const namespace = new Namespace(table);
    return {
      application,
      listenerApplication,
      table,
      adapters,
      namespace,
      lost: () => `'error' events: ${poolErrors} on the pool, ${clientErrors} on its clients`,
      close: async () => {
        await Promise.all(adapters.map((adapter) => adapter.close()));
        await adapters[0].dropSchema();
        await kysely.destroy();
        await listener.end();
      },
    };
  }

  test("the adapter pool's backends terminated while 6 workers contend: LockBackendErrors with pg's error as cause, never two holders, increasing tokens, work resumes on new connections", async () => {
    const { application, table, adapters, namespace, lost, close } = setup();
    try {
      await adapters[0].init();
      const providers = Array.from(
        { length: 6 },
        (_, i) => new LockProvider({ adapter: adapters[i % 2] as KyselyLockAdapter, namespace }),
      );
      const unexpectedErrors: unknown[] = [];
      for (const provider of providers) {
        await provider.addListener(LOCK_EVENTS.UNEXPECTED_ERROR, (event) => {
          unexpectedErrors.push(event.error);
        });
      }
      const run = contend(providers, "job");
      try {
        await run.completeMore(2);
        let terminated = 0;
        for (let round = 0; round < 3; round++) {
          // Anywhere: mostly idle pool connections, sometimes a statement on its way.
          await sleep(100 + Math.random() * 200);
          terminated += await terminate(application);
          // Surely in flight: a row lock held here makes the next lock statement wait in the
          // server, where its backend is terminated.
          await sleep(100 + Math.random() * 200);
          const client = await admin.connect();
          try {
            await client.query("BEGIN");
            await client.query(`SELECT lock_key FROM "${table}" FOR UPDATE`);
            await vi.waitFor(
              async () =>
                expect(await backends(application, "wait_event_type = 'Lock'")).not.toEqual([]),
              { timeout: 10_000, interval: 20 },
            );
            terminated += await terminate(application);
          } finally {
            await client.query("ROLLBACK");
            client.release();
          }
        }
        // Work resumes: the pool opens new connections, holds orphaned by a lost answer expire.
        await run.completeMore(AFTER);
        expect(terminated).toBeGreaterThanOrEqual(3);
        console.log(
          `[kysely faults postgres] ${terminated} backends terminated, ${lost()}, ${unexpectedErrors.length} UNEXPECTED_ERROR events`,
        );
      } finally {
        await run.stop();
      }
      expectCleanFailures(run, "postgres");
      // Each failed call was also reported as UNEXPECTED_ERROR, with the same cause.
      await vi.waitFor(() => expect(unexpectedErrors).toHaveLength(run.failures.length));
    } finally {
      await close();
    }
  }, 60_000);

  test("the LISTEN connection terminated while 3 waiters wait: they listen again on a new connection, a release meanwhile is not lost, and each is handed the lock in turn", async () => {
    const { listenerApplication, adapters, namespace, close } = setup();
    try {
      await adapters[0].init();
      const { adapter, counts } = observed(adapters[0]);
      // Holds and waits far longer than the test: only release notifications let them in.
      const ttl = TimeSpan.fromSeconds(120);
      const holder = new LockProvider({ adapter, namespace }).create("job", { ttl });
      const first = await holder.acquireOrFail();
      let inside: number | null = null;
      const violations: string[] = [];
      const tokens: number[] = [];
      const waiters = [0, 1, 2].map((worker) =>
        Promise.resolve(
          new LockProvider({ adapter, namespace }).create("job", { ttl }).runBlockingOrFail(
            async ({ fencingToken }) => {
              if (inside !== null) {
                violations.push(`waiter ${worker} entered while ${inside} held`);
              }
              inside = worker;
              tokens.push(fencingToken);
              await sleep(5);
              inside = null;
            },
            { time: TimeSpan.fromSeconds(120) },
          ),
        ),
      );
      try {
        await vi.waitFor(() => expect(counts.waiting).toBe(3), { timeout: 10_000 });
        const [before, ...others] = await backends(listenerApplication);
        expect(others).toEqual([]);
        const waitsBefore = counts.waits;

        expect(await terminate(listenerApplication)).toBe(1);
        // The release right after the loss hands the key to the first waiter while nobody
        // listens: its notification is lost, and only asking (once listening again) tells it.
        expect(await holder.release()).toBe(true);
        await vi.waitFor(
          async () => {
            const now = await backends(listenerApplication, "query LIKE 'LISTEN %'");
            expect(now).toHaveLength(1);
            expect(now).not.toContain(before);
          },
          { timeout: 10_000, interval: 20 },
        );
        // Queued all along: none of them had to wait again.
        expect(counts.waits).toBe(waitsBefore);
        expect(await within20s(Promise.all(waiters))).toEqual({
          value: [undefined, undefined, undefined],
        });
        expect(violations).toEqual([]);
        expect(tokens).toHaveLength(3);
        expect(tokens[0]).toBeGreaterThan(first);
        expect(tokens).toEqual([...tokens].sort((a, b) => a - b));
      } finally {
        await holder.forceRelease();
        await Promise.allSettled(waiters);
      }
    } finally {
      await close();
    }
  }, 60_000);

  /**
   * Two waiters of one adapter (listening) on a key held, with no expiry, through another
   * adapter: only a release notification can wake them. `onNotification` sees the LISTEN
   * client's notifications before the adapter does.
   */
  async function twoWaiters(settings: { onNotification?: () => void; connectionTimeout?: number }) {
    const table = uniqueName("handon");
    const pool = new pg.Pool({
      connectionString: url,
      max: 1,
      ...(settings.connectionTimeout === undefined
        ? {}
        : { connectionTimeoutMillis: settings.connectionTimeout }),
    });
    const listener = new pg.Pool({ connectionString: url, max: 1 });
    if (settings.onNotification !== undefined) {
      const onNotification = settings.onNotification;
      listener.on("acquire", (client) => {
        client.on("notification", onNotification);
      });
    }
    let stateReads = 0;
    const kysely = new Kysely({
      dialect: new PostgresDialect({ pool }),
      log: (event) => {
        // A waiter queued in the key's row (the adapter's claim statement).
        if (event.query.sql.includes(`"${table}:claim"(`)) stateReads += 1;
      },
    });
    const other = new Kysely({ dialect: new PostgresDialect({ pool: admin }) });
    const waiting = new KyselyLockAdapter({ kysely, tableName: table, listener });
    const holding = new KyselyLockAdapter({ kysely: other, tableName: table });
    await holding.init();
    const namespace = new Namespace(table);
    const holder = new LockProvider({ adapter: holding, namespace }).create("job", { ttl: null });
    await holder.acquireOrFail();
    const waiter = () =>
      new LockProvider({ adapter: waiting, namespace }).create("job", { ttl: null });
    const [first, second] = [waiter(), waiter()];
    return {
      pool,
      holder,
      first,
      second,
      /** Resolves once `count` waiters are queued in the key's row. */
      asleep: (count: number) =>
        vi.waitFor(() => expect(stateReads).toBeGreaterThanOrEqual(count), { timeout: 10_000 }),
      close: async () => {
        await holder.forceRelease();
        await waiting.close();
        await holding.dropSchema();
        await kysely.destroy();
        await listener.end();
      },
    };
  }

  test("a waiter that gives up as the key is handed to it passes the key on: the next waiter gets it", async () => {
    const giveUp = new AbortController();
    // The first waiter is aborted just as the notification of its hand-off arrives.
    const { holder, first, second, asleep, close } = await twoWaiters({
      onNotification: () => giveUp.abort(new Error("gave up")),
    });
    try {
      const blocking = { time: TimeSpan.fromSeconds(120) };
      const firstWait = Promise.resolve(first.acquireBlocking(blocking).withSignal(giveUp.signal));
      firstWait.catch(() => {});
      // The first one in line is the one the release wakes.
      await asleep(1);
      const secondWait = Promise.resolve(second.acquireBlocking(blocking));
      await asleep(2);
      expect(await holder.release()).toBe(true);
      await expect(firstWait).rejects.toThrow("gave up");
      expect(await within20s(secondWait)).toEqual({ value: true });
    } finally {
      await close();
    }
  }, 30_000);

  test("a waiter is handed the key while its adapter has no free connection: the release statement does the work, and the waiter checks it once it has one", async () => {
    // The waiting adapter's only connection is taken when the release arrives.
    const { pool, holder, first, second, asleep, close } = await twoWaiters({
      connectionTimeout: 500,
    });
    try {
      const blocking = { time: TimeSpan.fromSeconds(120) };
      const firstWait = Promise.resolve(first.acquireBlocking(blocking));
      await asleep(1);
      const secondWait = Promise.resolve(second.acquireBlocking(blocking));
      await asleep(2);
      const taken = await pool.connect();
      try {
        expect(await holder.release()).toBe(true);
        // The release statement made the key the first waiter's; its adapter, without a
        // connection, cannot check that yet (a notification alone proves nothing).
        expect(await holder.getState()).toMatchObject({ type: "UNAVAILABLE", owner: first.id });
      } finally {
        taken.release();
      }
      expect(await within20s(firstWait)).toEqual({ value: true });
      expect(await holder.getState()).toMatchObject({ type: "UNAVAILABLE", owner: first.id });
      expect(await first.release()).toBe(true);
      expect(await within20s(secondWait)).toEqual({ value: true });
    } finally {
      await close();
    }
  }, 30_000);
});

describeWithBackend("mysql", (url) => {
  let admin: ReturnType<typeof createMysqlPool>;

  beforeAll(() => {
    admin = createMysqlPool(url);
  });

  afterAll(async () => {
    await admin.end();
  });

  test.each([
    { statements: "MariaDB's (RETURNING)", settings: {} },
    // Without RETURNING an acquire that finds the key held is two statements: either can die.
    { statements: "MySQL's (no RETURNING)", settings: { returning: false, prepared: false } },
  ])(
    "$statements statements: the adapter pool's connections KILLed while 6 workers contend: LockBackendErrors with mysql2's error as cause, never two holders, increasing tokens, work resumes on new connections",
    async ({ statements, settings }) => {
      const table = uniqueName("faults");
      // The pool's connections by id, for KILL (mysql2 reports each new one).
      const connectionIds = new Set<number>();
      const pool = mysql.createPool({ uri: url, connectionLimit: 8 });
      pool.on("connection", (connection) => {
        connectionIds.add(connection.threadId);
      });
      const kysely = new Kysely({ dialect: new MysqlDialect({ pool }) });
      const adapters = [0, 1].map(
        () => new KyselyLockAdapter({ kysely, tableName: table, ...settings }),
      );
      const namespace = new Namespace(table);

      const kill = async (): Promise<number> => {
        let killed = 0;
        for (const id of [...connectionIds]) {
          connectionIds.delete(id);
          try {
            await admin.query(`KILL CONNECTION ${id}`);
            killed += 1;
          } catch (error) {
            // ER_NO_SUCH_THREAD: that connection was gone already.
            if ((error as { errno?: unknown }).errno !== 1094) {
              throw error;
            }
          }
        }
        return killed;
      };

      try {
        await adapters[0]?.init();
        const providers = Array.from(
          { length: 6 },
          (_, i) =>
            new LockProvider({
              adapter: adapters[i % 2] as KyselyLockAdapter,
              namespace,
              defaultBlockingInterval: TimeSpan.fromMilliseconds(10),
            }),
        );
        const run = contend(providers, "job");
        try {
          await run.completeMore(2);
          let killed = 0;
          for (let round = 0; round < 3; round++) {
            await sleep(100 + Math.random() * 200);
            killed += await kill();
            // Surely in flight: a row lock held here makes the next lock statement wait in InnoDB,
            // where its connection is killed.
            await sleep(100 + Math.random() * 200);
            const connection = await admin.getConnection();
            try {
              await connection.query("START TRANSACTION");
              await connection.query(`SELECT lock_key FROM \`${table}\` FOR UPDATE`);
              await vi.waitFor(
                async () => {
                  // Every lock statement but getState writes the row, so it waits for the lock.
                  const [rows] = await admin.query<RowDataPacket[]>(
                    "SELECT id FROM information_schema.processlist WHERE command = 'Query' AND (info LIKE 'INSERT%' OR info LIKE 'UPDATE%')",
                  );
                  expect(rows.filter((row) => connectionIds.has(Number(row.id)))).not.toEqual([]);
                },
                { timeout: 10_000, interval: 20 },
              );
              killed += await kill();
            } finally {
              await connection.query("ROLLBACK");
              connection.release();
            }
          }
          await run.completeMore(AFTER);
          expect(killed).toBeGreaterThanOrEqual(3);
          console.log(`[kysely faults mysql, ${statements}] ${killed} connections killed`);
        } finally {
          await run.stop();
        }
        expectCleanFailures(run, `mysql, ${statements}`);
      } finally {
        await adapters[0]?.dropSchema();
        await kysely.destroy();
      }
    },
    60_000,
  );
});
