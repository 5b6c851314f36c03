import Database from "better-sqlite3";
import { Kysely, SqliteDialect, sql } from "kysely";
import { afterAll, beforeAll, describe, expect, onTestFinished, test, vi } from "vitest";
import { storedKey } from "../../src/backends/kysely/stored-key.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { KyselySemaphoreAdapter } from "../../src/semaphore/adapters/kysely/kysely-semaphore-adapter.js";
import { mysqlSemaphoreStatements } from "../../src/semaphore/adapters/kysely/mysql/mysql-semaphore-statements.js";
import { postgresSemaphoreStatements } from "../../src/semaphore/adapters/kysely/postgres/postgres-semaphore-statements.js";
import { sqliteSemaphoreStatements } from "../../src/semaphore/adapters/kysely/sqlite/sqlite-semaphore-statements.js";
import { SemaphoreProvider } from "../../src/semaphore/semaphore-provider.js";
import { semaphoreAdapterTestSuite } from "../../src/semaphore/test-suites/semaphore-adapter-test-suite.js";
import { semaphoreProviderTestSuite } from "../../src/semaphore/test-suites/semaphore-provider-test-suite.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { type BackendName, describeWithBackend, uniqueName } from "../harness/backends.js";
import {
  type OpenedDatabase,
  openMysql,
  openPostgres,
  openSqlite,
  sqliteFile,
} from "../harness/kysely-databases.js";

type Configuration = {
  name: string;
  backend?: BackendName;
  open: (url: string) => OpenedDatabase;
  /**
   * REPEATABLE READ by default on PostgreSQL: an acquire that loses the key's row to a
   * concurrent one fails with a serialization failure, run again up to 12 times; under a storm on
   * one key some still fail (a backend error, never a slot past the limit). Only the SQL
   * specifics run, counting those failures.
   */
  serializationFailures?: boolean;
  /** Also run the provider suite (slower); every other configuration runs the adapter suite. */
  provider?: boolean;
};

const CONFIGURATIONS: readonly Configuration[] = [
  {
    name: "PostgreSQL, LISTEN/NOTIFY",
    backend: "postgres",
    open: (url) => openPostgres(url, { listeners: 30 }),
    provider: true,
  },
  {
    name: "PostgreSQL, no listener, session time zone Asia/Tokyo",
    backend: "postgres",
    open: (url) => openPostgres(url, { zone: "Asia/Tokyo" }),
  },
  {
    name: "PostgreSQL, no listener, REPEATABLE READ by default",
    backend: "postgres",
    open: (url) => openPostgres(url, { isolation: "repeatable\\ read" }),
    serializationFailures: true,
  },
  {
    name: "MariaDB, mysql2 defaults",
    backend: "mysql",
    open: (url) => openMysql(url),
    provider: true,
  },
  {
    name: "MariaDB, CLIENT_FOUND_ROWS off, session time zone +09:00",
    backend: "mysql",
    open: (url) => openMysql(url, { flags: ["-FOUND_ROWS"], zone: "+09:00" }),
  },
  {
    name: "MariaDB, READ COMMITTED",
    backend: "mysql",
    open: (url) => openMysql(url, { isolation: "READ COMMITTED" }),
  },
  { name: "SQLite in memory", open: () => openSqlite(":memory:"), provider: true },
  { name: "SQLite file", open: () => openSqlite(sqliteFile("semaphores.db")) },
];

const LONG = TimeSpan.fromSeconds(30);

describe("settings", () => {
  const kysely = new Kysely<any>({
    dialect: new SqliteDialect({ database: new Database(":memory:") }),
  });
  afterAll(() => kysely.destroy());

  test("a listener is refused on another dialect than PostgreSQL, by name", () => {
    const listener = { query: async () => ({}), on: () => {}, removeListener: () => {} };
    expect(() => new KyselySemaphoreAdapter({ kysely, listener })).toThrow(
      /Invalid KyselySemaphoreAdapter settings: listener: only PostgreSQL/,
    );
  });

  test("a bad table name and a transaction are refused, naming the field", async () => {
    expect(() => new KyselySemaphoreAdapter({ kysely, tableName: "semaphores; DROP" })).toThrow(
      /tableName/,
    );
    await kysely.transaction().execute(async (trx) => {
      expect(() => new KyselySemaphoreAdapter({ kysely: trx })).toThrow(
        /kysely: must not be a transaction/,
      );
    });
  });

  test("the table's name defaults to hasp_semaphores, its slots' to hasp_semaphores:slots", async () => {
    const { createSchema } = await new KyselySemaphoreAdapter({ kysely }).statements();
    expect(createSchema[0]).toContain('"hasp_semaphores"');
    expect(createSchema[1]).toContain('"hasp_semaphores:slots"');
  });
});

describe("the SQL of each dialect", () => {
  /** A statements object as text: each statement's SQL (and prepared name), the DDL as it is. */
  function text(statements: object): Record<string, unknown> {
    return Object.fromEntries(
      Object.entries(statements).map(([name, value]) => [
        name,
        typeof value === "object" && value !== null && "sql" in value
          ? { sql: value.sql, prepared: value.prepared?.name }
          : value,
      ]),
    );
  }

  test.each([
    ["postgres", () => postgresSemaphoreStatements("hasp_semaphores")],
    [
      "mysql",
      () => mysqlSemaphoreStatements("hasp_semaphores", { returning: true, prepared: true }),
    ],
    ["sqlite", () => sqliteSemaphoreStatements("hasp_semaphores")],
  ] as const)("%s", (_dialect, make) => {
    expect(text(make())).toMatchSnapshot();
  });
});

for (const configuration of CONFIGURATIONS) {
  const body = (url: string) =>
    describe(configuration.name, () => {
      let database: OpenedDatabase;
      const tableName = uniqueName("i20sql_sem");
      const slots = `${tableName}:slots`;
      const adapters: KyselySemaphoreAdapter[] = [];
      const newAdapter = (table = tableName) => {
        const adapter = new KyselySemaphoreAdapter({
          kysely: database.kysely,
          tableName: table,
          ...(database.listener === undefined ? {} : { listener: database.listener }),
        });
        adapters.push(adapter);
        return adapter;
      };

      beforeAll(async () => {
        database = configuration.open(url);
        await newAdapter().init();
      });

      afterAll(async () => {
        await Promise.all(adapters.map((adapter) => adapter.close()));
        await adapters[0]?.dropSchema();
        await database.close();
      });

      /** The live slots of `key`, counted by the server itself. */
      async function liveOnServer(key: string, kysely = database.kysely): Promise<number> {
        const now =
          configuration.backend === "postgres"
            ? sql`(extract(epoch from clock_timestamp()) * 1000)::bigint`
            : configuration.backend === "mysql"
              ? sql`CAST(UNIX_TIMESTAMP(SYSDATE(3)) * 1000 AS SIGNED)`
              : sql`CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)`;
        const { rows } = await sql<{ n: number | string }>`
          SELECT count(*) AS n FROM ${sql.table(slots)}
          WHERE sem_key = ${storedKey(key)} AND (expires_at IS NULL OR expires_at > ${now})`.execute(
          kysely,
        );
        return Number(rows[0]?.n ?? 0);
      }

      describe.skipIf(configuration.serializationFailures === true)("conformance", () => {
        // PostgreSQL queues blocking acquires in the key's row (other dialects poll).
        const queuedWaits =
          configuration.backend === "postgres"
            ? async (key: string) => {
                const { rows } = await sql<{ queued: number | null }>`
                  SELECT cardinality(waiters) AS queued FROM ${sql.table(tableName)}
                  WHERE sem_key = ${storedKey(key)}`.execute(database.kysely);
                return Number(rows[0]?.queued ?? 0);
              }
            : undefined;
        const destroyAdapter = (adapter: unknown) => (adapter as KyselySemaphoreAdapter).close();
        semaphoreAdapterTestSuite({
          createAdapter: () => newAdapter(),
          destroyAdapter,
          keyPrefix: "i20sql:",
          ...(queuedWaits === undefined ? {} : { queuedWaits }),
        });
        if (configuration.provider === true) {
          describe("provider conformance", () => {
            semaphoreProviderTestSuite({
              createAdapter: () => newAdapter(),
              destroyAdapter,
              ...(queuedWaits === undefined ? {} : { queuedWaits }),
            });
          });
        }
      });

      describe("SQL specifics", () => {
        test("init() is idempotent, from several adapters at once", async () => {
          const table = uniqueName("i20sql_init");
          const racing = [newAdapter(table), newAdapter(table), newAdapter(table)];
          onTestFinished(() => racing[0]?.dropSchema());
          await Promise.all(racing.map((adapter) => adapter.init()));
          await racing[1]?.init();
          await expect(racing[2]?.acquire("k", "a", 2, LONG)).resolves.toMatchObject({
            acquired: true,
          });
        });

        test("an operation before init() fails with a SemaphoreBackendError naming init()", async () => {
          const adapter = newAdapter(uniqueName("i20sql_none"));
          const failure = await adapter.acquire("k", "a", 2, LONG).catch((error: unknown) => error);
          expect(failure).toMatchObject({
            name: "SemaphoreBackendError",
            key: "k",
            operation: "acquire",
          });
          expect(String((failure as Error).message)).toMatch(
            /missing: call init\(\) on the KyselySemaphoreAdapter/,
          );
          await expect(adapter.getState("k", "a")).rejects.toMatchObject({
            name: "SemaphoreBackendError",
            operation: "getState",
          });
        });

        test("acquire, release, refresh, forceReleaseAll and getState are one statement each", async () => {
          const adapter = newAdapter();
          const key = uniqueName("one");
          const counts: Record<string, number> = {};
          for (const pass of ["warm-up", "counted"]) {
            for (const [name, operation] of [
              ["acquire", () => adapter.acquire(key, "a", 2, LONG)],
              ["acquire again (own)", () => adapter.acquire(key, "a", 2, LONG)],
              ["acquire (second slot)", () => adapter.acquire(key, "b", 2, LONG)],
              ["acquire (refused)", () => adapter.acquire(key, "c", 2, LONG)],
              ["refresh", () => adapter.refresh(key, "a", LONG)],
              ["getState", () => adapter.getState(key, "a")],
              ["release", () => adapter.release(key, "a")],
              ["release (not held)", () => adapter.release(key, "a")],
              ["forceReleaseAll", () => adapter.forceReleaseAll(key)],
              ["forceReleaseAll (free)", () => adapter.forceReleaseAll(key)],
            ] as const) {
              const from = database.log.length;
              await operation();
              if (pass === "counted") {
                // MariaDB prepares a statement once per connection: its PREPARE is not a call.
                counts[name] = database.log
                  .slice(from)
                  .filter((text) => !text.startsWith("PREPARE")).length;
              }
            }
          }
          expect(counts).toEqual(Object.fromEntries(Object.keys(counts).map((name) => [name, 1])));
        });

        test("60 acquirers on many connections, limit 3: the server never counts more than 3 live slots", async () => {
          const key = uniqueName("storm");
          const workers = Array.from({ length: 6 }, () => newAdapter());
          let inside = 0;
          let most = 0;
          let mostOnServer = 0;
          const tokens: number[] = [];
          let serializationFailures = 0;
          /** An acquire; under REPEATABLE READ a serialization failure counts as a refusal. */
          const acquire = (adapter: KyselySemaphoreAdapter, slot: string) =>
            adapter.acquire(key, slot, 3, LONG).catch((error: unknown) => {
              if (
                configuration.serializationFailures !== true ||
                (error as { code?: unknown }).code !== "40001"
              ) {
                throw error;
              }
              serializationFailures += 1;
              return { acquired: false } as const;
            });
          /** A release, tried again after a serialization failure (REPEATABLE READ). */
          const release = async (adapter: KyselySemaphoreAdapter, slot: string) => {
            for (;;) {
              try {
                return await adapter.release(key, slot);
              } catch (error) {
                if (
                  configuration.serializationFailures !== true ||
                  (error as { code?: unknown }).code !== "40001"
                ) {
                  throw error;
                }
                serializationFailures += 1;
              }
            }
          };
          const worker = async (id: number) => {
            const adapter = workers[id % workers.length] as KyselySemaphoreAdapter;
            for (let round = 0; round < 4; round += 1) {
              const slot = `w${id}`;
              let result = await acquire(adapter, slot);
              while (!result.acquired) {
                await new Promise((resolve) => setTimeout(resolve, 5));
                result = await acquire(adapter, slot);
              }
              tokens.push(result.fencingToken);
              inside += 1;
              most = Math.max(most, inside);
              mostOnServer = Math.max(mostOnServer, await liveOnServer(key));
              inside -= 1;
              expect(await release(adapter, slot)).toBe(true);
            }
          };
          await Promise.all(Array.from({ length: 60 }, (_, id) => worker(id)));
          expect(most).toBeLessThanOrEqual(3);
          expect(mostOnServer).toBeLessThanOrEqual(3);
          expect(mostOnServer).toBeGreaterThan(0);
          expect(new Set(tokens).size).toBe(tokens.length);
          if (serializationFailures > 0) {
            console.info(`${configuration.name}: ${serializationFailures} serialization failures`);
          }
        }, 120_000);

        test("24 blocking runs over 4 providers on limit 3: all served, the server never counts more than 3, every token distinct", async () => {
          const namespace = new Namespace(uniqueName("runs"));
          const providers = Array.from(
            { length: 4 },
            () => new SemaphoreProvider({ adapter: newAdapter(), namespace }),
          );
          onTestFinished(async () => {
            await Promise.all(providers.map((provider) => provider.close()));
          });
          const key = "resource";
          let mostOnServer = 0;
          const granted: number[] = [];
          const runs = Array.from({ length: 24 }, (_, i) =>
            (providers[i % providers.length] as SemaphoreProvider)
              .create(key, { limit: 3, ttl: LONG })
              .runBlockingOrFail(
                async ({ fencingToken }) => {
                  granted.push(fencingToken);
                  mostOnServer = Math.max(
                    mostOnServer,
                    await liveOnServer(namespace.create(key).toString()),
                  );
                  await new Promise((resolve) => setTimeout(resolve, 5));
                },
                {
                  time: TimeSpan.fromSeconds(60),
                  interval: TimeSpan.fromMilliseconds(10),
                },
              ),
          );
          await Promise.all(runs);
          expect(mostOnServer).toBeLessThanOrEqual(3);
          expect(mostOnServer).toBeGreaterThan(0);
          expect(granted).toHaveLength(24);
          expect(new Set(granted).size).toBe(24);
        }, 120_000);

        test("200 first acquirers of new keys at once: each key gets exactly its limit", async () => {
          const adapter = newAdapter();
          const keys = Array.from({ length: 5 }, () => uniqueName("new"));
          const results = await Promise.all(
            Array.from({ length: 200 }, (_, i) =>
              adapter.acquire(keys[i % keys.length] as string, `s${i}`, 2, LONG),
            ),
          );
          for (const key of keys) {
            expect(await liveOnServer(key)).toBe(2);
          }
          expect(results.filter((result) => result.acquired)).toHaveLength(2 * keys.length);
        });

        test("removeExpired deletes keys without live slots issued long ago, and tokens still grow", async () => {
          const adapter = newAdapter();
          const [gone, held, forever, recent] = ["gone", "held", "forever", "recent"].map((label) =>
            uniqueName(label),
          ) as [string, string, string, string];
          const before = await adapter.acquire(gone, "a", 2, LONG);
          await adapter.release(gone, "a");
          await adapter.acquire(held, "a", 2, LONG);
          await adapter.acquire(forever, "a", 2, null);
          await adapter.acquire(recent, "a", 2, TimeSpan.fromMilliseconds(1));
          // Age every key but `recent` past the grace (a minute of the server's clock).
          await sql`UPDATE ${sql.table(tableName)} SET token = token - 120000000
            WHERE sem_key IN (${storedKey(gone)}, ${storedKey(held)}, ${storedKey(forever)})`.execute(
            database.kysely,
          );
          expect(await adapter.removeExpired()).toBeGreaterThanOrEqual(1);
          const { rows } = await sql<{ sem_key: string | Buffer }>`
            SELECT sem_key FROM ${sql.table(tableName)}
            WHERE sem_key IN (${storedKey(gone)}, ${storedKey(held)}, ${storedKey(forever)}, ${storedKey(recent)})`.execute(
            database.kysely,
          );
          expect(rows.map((row) => String(row.sem_key)).sort()).toEqual(
            [held, forever, recent].map(storedKey).sort(),
          );
          const after = await adapter.acquire(gone, "b", 2, LONG);
          expect(before.acquired && after.acquired).toBe(true);
          if (before.acquired && after.acquired) {
            expect(after.fencingToken).toBeGreaterThan(before.fencingToken);
          }
          expect(await adapter.getState(held, "a")).toMatchObject({ acquiredSlotsCount: 1 });
          expect(await adapter.getState(forever, "a")).toMatchObject({
            slot: { remainingTime: null },
          });
          for (const key of [gone, held, forever]) {
            await adapter.forceReleaseAll(key);
          }
        });

        test("each slot keeps its limit: a smaller limit waits below it, a holder keeps its own", async () => {
          const adapter = newAdapter();
          const key = uniqueName("limits");
          await adapter.acquire(key, "a", 4, LONG);
          await adapter.acquire(key, "b", 4, LONG);
          await expect(adapter.acquire(key, "c", 2, LONG)).resolves.toMatchObject({
            acquired: false,
            limit: 2,
            acquiredSlotsCount: 2,
          });
          await expect(adapter.acquire(key, "a", 1, LONG)).resolves.toMatchObject({
            acquired: true,
          });
          await expect(adapter.getState(key, "a")).resolves.toMatchObject({ limit: 4 });
          await adapter.acquire(key, "d", 3, LONG);
          await expect(adapter.acquire(key, "e", 4, LONG)).resolves.toMatchObject({
            acquired: false,
            limit: 3,
            acquiredSlotsCount: 3,
          });
          await adapter.forceReleaseAll(key);
        });

        test.runIf(configuration.name.includes("LISTEN"))(
          "a forged grant NOTIFYed to a waiting claim only makes it check: the slot comes at the release, with the stored token",
          async () => {
            const adapter = newAdapter();
            const key = uniqueName("forged");
            await adapter.acquire(key, "alice", 1, LONG);
            let settled = false;
            const waiting = adapter
              .waitForRelease?.(key, LONG, new AbortController().signal, {
                slotId: "bob",
                limit: 1,
                ttl: LONG,
              })
              .finally(() => {
                settled = true;
              });
            const entryOf = async () => {
              const { rows } = await sql<{ waiters: string[] | null }>`
                SELECT waiters FROM ${sql.table(tableName)} WHERE sem_key = ${key}`.execute(
                database.kysely,
              );
              return rows[0]?.waiters?.[0] ?? "";
            };
            await vi.waitFor(async () => expect(await entryOf()).not.toBe(""));
            const [, , inbox = "", waitId = ""] = (await entryOf()).split(":");
            const forged = Number.MAX_SAFE_INTEGER;
            for (const message of [
              `${waitId}:${forged}:${Date.now()}:${"0".repeat(64)}`,
              `${waitId}:${forged}:${Date.now()}`,
              waitId,
            ]) {
              await sql`SELECT pg_notify(${inbox}, ${message})`.execute(database.kysely);
            }
            // The wait asks the table (its check renews its entry) and goes on waiting.
            await new Promise((resolve) => setTimeout(resolve, 300));
            expect(settled, "the waiter believed a forged grant").toBe(false);
            expect(await adapter.getState(key, "bob")).toMatchObject({
              acquiredSlotsCount: 1,
              slot: null,
            });
            expect(await adapter.release(key, "alice")).toBe(true);
            const handOff = await waiting;
            expect(handOff).toMatchObject({ acquired: true });
            const state = await adapter.getState(key, "bob");
            expect(state?.slot?.fencingToken).toBe(handOff?.fencingToken);
            expect(handOff?.fencingToken).toBeLessThan(forged);
            await adapter.forceReleaseAll(key);
          },
        );

        test("a key longer than the column is stored as its hash, apart from its prefixes", async () => {
          const adapter = newAdapter();
          const long = `${uniqueName("long")}:${"x".repeat(400)}`;
          await adapter.acquire(long, "a", 1, LONG);
          await expect(adapter.acquire(`${long}y`, "b", 1, LONG)).resolves.toMatchObject({
            acquired: true,
          });
          await expect(adapter.acquire(long, "b", 1, LONG)).resolves.toMatchObject({
            acquired: false,
          });
          await adapter.forceReleaseAll(long);
          await adapter.forceReleaseAll(`${long}y`);
        });
      });
    });
  if (configuration.backend === undefined) {
    body("");
  } else {
    describeWithBackend(configuration.backend, body);
  }
}
