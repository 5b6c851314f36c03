// The KyselyLockAdapter test configurations (dialect, driver flags, settings) and the tests every
// configuration runs; the kysely-*.test.ts files pick theirs.
import { CompiledQuery, Kysely, MysqlDialect, sql } from "kysely";
import mysql from "mysql2";
import { afterAll, beforeAll, describe, expect, onTestFinished, test, vi } from "vitest";
import {
  KyselyLockAdapter,
  type KyselyLockAdapterSettings,
  storedKey,
} from "../../src/lock/adapters/kysely/kysely-lock-adapter.js";
import { LockBackendError } from "../../src/lock/contracts/lock-errors.js";
import { LockProvider } from "../../src/lock/lock-provider.js";
import { lockAdapterTestSuite } from "../../src/lock/test-suites/lock-adapter-test-suite.js";
import { lockProviderTestSuite } from "../../src/lock/test-suites/lock-provider-test-suite.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { type BackendName, describeWithBackend, uniqueName } from "../harness/backends.js";
import {
  type AnyKysely,
  logged,
  type OpenedDatabase,
  openMysql,
  openPostgres,
  openSqlite,
  sqliteFile,
} from "../harness/kysely-databases.js";

export type Configuration = {
  name: string;
  /** The server it needs; none for SQLite. */
  backend?: BackendName;
  open: (url: string) => OpenedDatabase;
  settings?: Partial<KyselyLockAdapterSettings>;
  /** Also run the provider suite (slower); every configuration runs the adapter suite. */
  provider?: boolean;
};

/**
 * A session time zone far from the server's (UTC here), for the configurations that set one:
 * expiry and tokens must not move with it.
 */
const FAR_ZONE = { postgres: "Asia/Tokyo", mysql: "+09:00" };

export const CONFIGURATIONS: readonly Configuration[] = [
  {
    name: "PostgreSQL, LISTEN/NOTIFY",
    backend: "postgres",
    open: (url) => openPostgres(url, { listeners: 2 }),
    provider: true,
  },
  {
    name: `PostgreSQL, no listener, session time zone ${FAR_ZONE.postgres}`,
    backend: "postgres",
    open: (url) => openPostgres(url, { zone: FAR_ZONE.postgres }),
  },
  {
    name: "MariaDB (RETURNING), mysql2 defaults (CLIENT_FOUND_ROWS on)",
    backend: "mysql",
    open: (url) => openMysql(url),
    provider: true,
  },
  {
    name: `MariaDB (RETURNING), CLIENT_FOUND_ROWS off, session time zone ${FAR_ZONE.mysql}`,
    backend: "mysql",
    open: (url) => openMysql(url, { flags: ["-FOUND_ROWS"], zone: FAR_ZONE.mysql }),
  },
  {
    // MariaDB 10.2 to 10.4: no RETURNING, but prepared statements (detected).
    name: "MariaDB (no RETURNING, prepared), CLIENT_FOUND_ROWS off",
    backend: "mysql",
    open: (url) => openMysql(url, { flags: ["-FOUND_ROWS"] }),
    settings: { returning: false },
  },
  {
    name: "MySQL statements (no RETURNING, not prepared), mysql2 defaults (CLIENT_FOUND_ROWS on)",
    backend: "mysql",
    open: (url) => openMysql(url),
    settings: { returning: false, prepared: false },
  },
  {
    name: "MySQL statements (no RETURNING, not prepared), CLIENT_FOUND_ROWS off",
    backend: "mysql",
    open: (url) => openMysql(url, { flags: ["-FOUND_ROWS"] }),
    settings: { returning: false, prepared: false },
    provider: true,
  },
  { name: "SQLite in memory", open: () => openSqlite(":memory:"), provider: true },
  { name: "SQLite file", open: () => openSqlite(sqliteFile("locks.db")) },
];

/**
 * Runs both conformance suites and the SQL-specific tests on each configuration `select` picks
 * (one test file per server family, so vitest runs them side by side).
 */
export function describeKyselyConfigurations(
  select: (configuration: Configuration) => boolean,
): void {
  for (const configuration of CONFIGURATIONS.filter(select)) {
    const body = (url: string) =>
      describe(configuration.name, () => {
        let database: OpenedDatabase;
        const adapters: KyselyLockAdapter[] = [];
        const tableName = uniqueName("locks");
        const newAdapter = (settings: Partial<KyselyLockAdapterSettings> = {}) => {
          const adapter = new KyselyLockAdapter({
            kysely: database.kysely,
            tableName,
            ...(database.listener === undefined ? {} : { listener: database.listener }),
            ...configuration.settings,
            ...settings,
          });
          adapters.push(adapter);
          return adapter;
        };

        // Each adapter with a listener keeps one connection of the listener pool until closed.
        const closeAdapter = (adapter: unknown) => (adapter as KyselyLockAdapter).close();

        beforeAll(async () => {
          database = configuration.open(url);
          await newAdapter().init();
        });

        afterAll(async () => {
          await Promise.all(adapters.map((adapter) => adapter.close()));
          await adapters[0]?.dropSchema();
          await database.close();
        });

        // PostgreSQL queues blocking acquires in the row's `waiters` (other dialects poll).
        const queuedWaits =
          configuration.backend === "postgres"
            ? async (key: string) => {
                const { rows } = await sql<{ queued: number | null }>`
                  SELECT cardinality(waiters) AS queued FROM ${sql.table(tableName)}
                  WHERE lock_key = ${storedKey(key)}`.execute(database.kysely);
                return Number(rows[0]?.queued ?? 0);
              }
            : undefined;
        const suiteSettings = {
          createAdapter: () => newAdapter(),
          destroyAdapter: closeAdapter,
          ...(queuedWaits === undefined ? {} : { queuedWaits }),
        };

        describe("adapter conformance", () => {
          lockAdapterTestSuite(suiteSettings);
        });

        if (configuration.provider === true) {
          describe("provider conformance", () => {
            lockProviderTestSuite(suiteSettings);
          });
        }

        describe("SQL specifics", () => {
          const ttl = TimeSpan.fromSeconds(30);

          /** The statements `fn` sends (the adapter's own, not the test's). */
          async function statementsDuring(fn: () => Promise<unknown>): Promise<string[]> {
            const from = database.log.length;
            await fn();
            return database.log.slice(from);
          }

          test("acquire, release, refresh, forceRelease and getState are one statement each", async () => {
            const adapter = newAdapter();
            const key = uniqueName("one");
            const counts: Record<string, number> = {};
            // The first pass is the warm-up: a MySQL adapter asks the server's version once, and
            // on MariaDB a connection prepares each statement once (the next test).
            for (const pass of ["warm-up", "counted"]) {
              for (const [name, operation] of [
                ["acquire", () => adapter.acquire(key, "a", ttl)],
                ["acquire again (own)", () => adapter.acquire(key, "a", ttl)],
                ["refresh", () => adapter.refresh(key, "a", ttl)],
                ["getState", () => adapter.getState(key)],
                ["release", () => adapter.release(key, "a")],
                ["release (not held)", () => adapter.release(key, "a")],
                ["forceRelease (free)", () => adapter.forceRelease(key)],
                ["acquire (free row)", () => adapter.acquire(key, "b", ttl)],
                ["forceRelease", () => adapter.forceRelease(key)],
              ] as const) {
                const sent = (await statementsDuring(operation)).length;
                if (pass === "counted") {
                  counts[name] = sent;
                }
              }
            }
            expect(counts).toEqual(
              Object.fromEntries(Object.keys(counts).map((name) => [name, 1])),
            );

            await adapter.acquire(key, "holder", ttl);
            const failed = await statementsDuring(() => adapter.acquire(key, "other", ttl));
            const statements = await adapter.statements();
            // Without RETURNING (MySQL) the upsert cannot say who holds the key: one read follows.
            expect(failed).toHaveLength(statements.returning ? 1 : 2);
            await adapter.forceRelease(key);
          });

          test.runIf(
            configuration.backend === "mysql" && configuration.settings?.prepared !== false,
          )(
            "MariaDB: a connection prepares each statement once, and again when it lost it",
            async () => {
              // One connection, so that every statement is on it.
              const pool = mysql.createPool({ uri: url, connectionLimit: 1 });
              const one = logged(
                (onLog) => new Kysely({ dialect: new MysqlDialect({ pool }), log: onLog }),
              );
              // The longest table name there can be: the statements' names are longer still.
              const longest = uniqueName("prepared").padEnd(48, "x");
              const adapter = new KyselyLockAdapter({
                kysely: one.kysely,
                tableName: longest,
                ...configuration.settings,
              });
              await adapter.init();
              onTestFinished(async () => {
                await adapter.dropSchema();
                await one.kysely.destroy();
              });
              const key = "k";
              const { acquire, getState, returning } = await adapter.statements();
              const name = acquire.prepared?.name;
              expect(name).toMatch(new RegExp(`^\`${longest}:acquire:[0-9a-f]{8}\`$`));
              const sent = async (operation: () => Promise<unknown>) => {
                const from = one.log.length;
                const answer = await operation();
                // Each statement's first two words: "PREPARE `<name>`", "EXECUTE `<name>`".
                return {
                  answer,
                  sent: one.log.slice(from).map((sql) => sql.split(" ", 2).join(" ")),
                };
              };
              expect(await sent(() => adapter.acquire(key, "a", ttl))).toEqual({
                answer: expect.objectContaining({ acquired: true }),
                sent: [`PREPARE ${name}`, `EXECUTE ${name}`],
              });
              expect(await sent(() => adapter.acquire(key, "a", ttl))).toEqual({
                answer: expect.objectContaining({ acquired: true }),
                sent: [`EXECUTE ${name}`],
              });
              // Lost (another user of the connection, or a reset): EXECUTE fails having run
              // nothing, and the statement is prepared again.
              await one.kysely.executeQuery(CompiledQuery.raw(`DEALLOCATE PREPARE ${name}`));
              expect(await sent(() => adapter.acquire(key, "b", ttl))).toEqual({
                answer: expect.objectContaining({ acquired: false, owner: "a" }),
                sent: [
                  `EXECUTE ${name}`,
                  `PREPARE ${name}`,
                  `EXECUTE ${name}`,
                  // Without RETURNING, a read of the holder follows (its first on the connection).
                  ...(returning
                    ? []
                    : [`PREPARE ${getState.prepared?.name}`, `EXECUTE ${getState.prepared?.name}`]),
                ],
              });
              expect(await adapter.release(key, "a")).toBe(true);
              expect((await adapter.acquire(key, "b", ttl)).acquired).toBe(true);
              await adapter.forceRelease(key);
            },
          );

          test("a client clock an hour off changes nothing: expiry is the server's", async () => {
            const adapter = newAdapter();
            const key = uniqueName("clock");
            expect((await adapter.acquire(key, "holder", ttl)).acquired).toBe(true);
            for (const shift of [3_600_000, -3_600_000]) {
              vi.useFakeTimers({ toFake: ["Date"] });
              vi.setSystemTime(Date.now() + shift);
              try {
                const attempt = await adapter.acquire(key, "other", ttl);
                expect(attempt.acquired, `client clock shifted by ${shift} ms`).toBe(false);
                const remaining = (await adapter.getState(key))?.remainingTime?.toMilliseconds();
                expect(remaining).toBeGreaterThan(25_000);
                expect(remaining).toBeLessThanOrEqual(30_000);
              } finally {
                vi.useRealTimers();
              }
            }
            await adapter.forceRelease(key);
          });

          test("removeExpired deletes long-dead rows only, and tokens keep growing after it", async () => {
            // A table of its own: rows other tests freed over a minute ago would be deleted too.
            const adapter = newAdapter({ tableName: uniqueName("sweep") });
            await adapter.init();
            onTestFinished(() => adapter.dropSchema());
            const [dead, live, forever, freed] = ["dead", "live", "forever", "freed"].map((label) =>
              uniqueName(label),
            ) as [string, string, string, string];
            const first = await adapter.acquire(dead, "a", ttl);
            expect(first.acquired).toBe(true);
            await adapter.release(dead, "a");
            await adapter.acquire(live, "a", ttl);
            await adapter.acquire(forever, "a", null);
            await adapter.acquire(freed, "a", ttl);
            await adapter.release(freed, "a");
            // Age the dead row past the grace (a test cannot wait a minute).
            await sqlOf(database.kysely, adapter).ageRow(storedKey(dead), 120_000);

            expect(await adapter.removeExpired()).toBe(1);
            expect(await sqlOf(database.kysely, adapter).rowExists(storedKey(dead))).toBe(false);
            expect(await sqlOf(database.kysely, adapter).rowExists(storedKey(freed))).toBe(true); // freed just now
            expect((await adapter.getState(live))?.owner).toBe("a");
            expect((await adapter.getState(forever))?.remainingTime).toBeNull();

            // Really, a row goes a minute after its hold ended; aged by hand, it may go within the
            // millisecond of its last token (SQLite's clock counts ms): let the clock move on.
            await new Promise((resolve) => setTimeout(resolve, 5));
            const again = await adapter.acquire(dead, "b", ttl);
            expect(
              again.acquired && first.acquired && again.fencingToken > first.fencingToken,
            ).toBe(true);
            for (const key of [dead, live, forever, freed]) {
              await adapter.forceRelease(key);
            }
          });

          test("a periodic sweep removes dead rows by itself", async () => {
            const key = uniqueName("swept");
            const adapter = newAdapter({ sweepInterval: TimeSpan.fromMilliseconds(50) });
            onTestFinished(() => adapter.close());
            await adapter.acquire(key, "a", ttl);
            await adapter.release(key, "a");
            await sqlOf(database.kysely, adapter).ageRow(storedKey(key), 120_000);
            await vi.waitFor(
              async () => expect(await sqlOf(database.kysely, adapter).rowExists(key)).toBe(false),
              {
                timeout: 5_000,
              },
            );
            await adapter.close();
          });

          test("a key full of SQL is just a key", async () => {
            const adapter = newAdapter();
            const key = `${uniqueName("inject")}'; DROP TABLE ${tableName}; --"\`\\`;
            expect((await adapter.acquire(key, "o'; DELETE FROM x; --", ttl)).acquired).toBe(true);
            expect((await adapter.getState(key))?.owner).toBe("o'; DELETE FROM x; --");
            expect(await adapter.release(key, "o'; DELETE FROM x; --")).toBe(true);
            expect(await sqlOf(database.kysely, adapter).rowExists(storedKey(key))).toBe(true); // the table is there
          });

          test("keys are exact: case, trailing spaces and long keys (stored hashed) stay apart", async () => {
            const adapter = newAdapter();
            const base = uniqueName("exact");
            const long = `${base}:${"é".repeat(200)}`; // 400+ bytes: hashed
            const keys = [
              base,
              base.toUpperCase(),
              `${base} `,
              long,
              `${long}x`,
              `#sha256:${base}`,
            ];
            for (const key of keys) {
              expect((await adapter.acquire(key, `owner of ${key}`, ttl)).acquired, key).toBe(true);
            }
            for (const key of keys) {
              expect((await adapter.getState(key))?.owner).toBe(`owner of ${key}`);
              expect(await adapter.forceRelease(key)).toBe(true);
            }
            expect(storedKey(long)).toMatch(/^#sha256:[0-9a-f]{64}$/);
            expect(storedKey(base)).toBe(base);
          });

          test("init() run by several adapters at once on a fresh table succeeds", async () => {
            const fresh = uniqueName("init");
            const racers = Array.from({ length: 6 }, () => newAdapter({ tableName: fresh }));
            try {
              await Promise.all(racers.map((adapter) => adapter.init()));
              expect((await racers[0]?.acquire("k", "a", ttl))?.acquired).toBe(true);
            } finally {
              await racers[0]?.dropSchema();
            }
          });

          test("dropSchema() leaves nothing of what init() made, and init() makes it again", async () => {
            const fresh = uniqueName("drop");
            const adapter = newAdapter({ tableName: fresh });
            const { dialect } = await adapter.statements();
            const made = async () => {
              const [sql, parameters] =
                dialect === "postgres"
                  ? // The table and every routine named after it (each operation's procedure, the
                    // trigger's function).
                    [
                      `SELECT relname AS name FROM pg_class WHERE relname = $1 AND relkind = 'r'
                       UNION ALL SELECT proname FROM pg_proc
                       WHERE starts_with(proname, $1 || ':') OR starts_with(proname, $1 || '_')`,
                      [fresh],
                    ]
                  : dialect === "mysql"
                    ? [
                        "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
                        [fresh],
                      ]
                    : ["SELECT name FROM sqlite_master WHERE tbl_name = ?", [fresh]];
              const { rows } = await database.kysely.executeQuery<{ name: string }>(
                CompiledQuery.raw(sql, parameters),
              );
              return rows.map(({ name }) => name).sort();
            };
            try {
              await adapter.init();
              const operations = ["acquire", "check", "claim", "force_release", "get_state"];
              operations.push("leave", "refresh", "release", "wait");
              // SQLite: no sqlite_autoindex_*: the table is WITHOUT ROWID, its rows in the key's b-tree.
              expect(await made()).toEqual(
                dialect === "postgres"
                  ? [
                      fresh,
                      `${fresh}_hand_off`,
                      ...operations.map((operation) => `${fresh}:${operation}`),
                    ].sort()
                  : [fresh],
              );
              await adapter.dropSchema();
              expect(await made()).toEqual([]);
              await adapter.init();
              expect((await adapter.acquire("k", "a", ttl)).acquired).toBe(true);
            } finally {
              await adapter.dropSchema();
            }
          });

          test.runIf(configuration.backend === "postgres")(
            "PostgreSQL: a table without this version's procedures (a hand-made schema not migrated): LockBackendError naming the missing procedure",
            async () => {
              const bare = uniqueName("bare");
              const adapter = newAdapter({ tableName: bare });
              const [table] = (await adapter.statements()).createSchema;
              await database.kysely.executeQuery(CompiledQuery.raw(table ?? ""));
              try {
                const lock = new LockProvider({ adapter }).create("k");
                const failure = await lock.acquire().then(
                  () => undefined,
                  (error: unknown) => error,
                );
                expect(failure).toBeInstanceOf(LockBackendError);
                expect(String((failure as LockBackendError).cause)).toContain(
                  `procedure ${bare}:acquire(text, text, bigint, text, bigint, bigint) does not exist`,
                );
              } finally {
                await adapter.dropSchema();
              }
            },
          );

          test("a failing statement fails its own operation only, among many running at once", async () => {
            // Two adapters on one Kysely instance (on SQLite they share one statement queue),
            // one of them on a table that does not exist.
            const working = newAdapter();
            const missing = newAdapter({ tableName: uniqueName("missing") });
            const keys = Array.from({ length: 40 }, (_, index) => uniqueName(`iso${index}`));
            const results = await Promise.allSettled(
              keys.flatMap((key) => [
                working.acquire(key, "a", ttl),
                missing.acquire(key, "a", ttl),
              ]),
            );
            const fromWorking = results.filter((_, index) => index % 2 === 0);
            const fromMissing = results.filter((_, index) => index % 2 === 1);
            expect(fromWorking).toEqual(
              keys.map(() => ({
                status: "fulfilled",
                value: expect.objectContaining({ acquired: true }),
              })),
            );
            expect(fromMissing.map(({ status }) => status)).toEqual(keys.map(() => "rejected"));
            await Promise.all(keys.map((key) => working.forceRelease(key)));
          });

          test("the application's own queries on the Kysely instance keep their turn among queued lock statements", async () => {
            const adapter = newAdapter();
            const keys = Array.from({ length: 400 }, (_, index) => uniqueName(`turn${index}`));
            let settled = 0;
            const acquires = keys.map((key) =>
              adapter.acquire(key, "a", ttl).finally(() => {
                settled += 1;
              }),
            );
            await database.kysely.executeQuery(CompiledQuery.raw("SELECT 1"));
            // SQLite: the lock statements go in batches, each taking the connection once: the
            // query gets it after the batch under way, not after all 400. A pool: a connection
            // runs a few lock statements, then goes back, where the query waits.
            expect(settled).toBeLessThan(keys.length / 2);
            await Promise.all(acquires);
            await Promise.all(keys.map((key) => adapter.forceRelease(key)));
          });

          test("a Kysely transaction is refused with a clear error", async () => {
            await database.kysely.transaction().execute(async (trx) => {
              expect(() => new KyselyLockAdapter({ kysely: trx })).toThrow(
                expect.objectContaining({
                  name: "InvalidArgumentError",
                  message: expect.stringContaining("must not be a transaction"),
                }),
              );
            });
          });
        });
      });

    if (configuration.backend === undefined) {
      body("");
    } else {
      describeWithBackend(configuration.backend, body);
    }
  }
}

/** Direct SQL on the lock table, to arrange what tests cannot wait for. */
function sqlOf(kysely: AnyKysely, adapter: KyselyLockAdapter) {
  const run = async (build: (table: string, placeholder: string) => string, key: string) => {
    const statements = await adapter.statements();
    const table = (statements.dropSchema[0] ?? "").replace("DROP TABLE IF EXISTS ", "");
    const placeholder = statements.dialect === "postgres" ? "$1" : "?";
    return kysely.executeQuery(CompiledQuery.raw(build(table, placeholder), [key]));
  };
  return {
    /** Moves a row's expiry (or time freed) `ms` into the past. */
    ageRow: async (key: string, ms: number) => {
      await run(
        (t, p) => `UPDATE ${t} SET expires_at = expires_at - ${ms} WHERE lock_key = ${p}`,
        key,
      );
    },
    rowExists: async (key: string) =>
      (await run((t, p) => `SELECT 1 AS one FROM ${t} WHERE lock_key = ${p}`, key)).rows.length ===
      1,
  };
}
