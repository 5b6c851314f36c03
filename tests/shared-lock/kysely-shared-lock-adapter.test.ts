import Database from "better-sqlite3";
import { Kysely, SqliteDialect, sql } from "kysely";
import { afterAll, beforeAll, describe, expect, onTestFinished, test, vi } from "vitest";
import { storedKey } from "../../src/backends/kysely/stored-key.js";
import { KyselySharedLockAdapter } from "../../src/shared-lock/adapters/kysely/kysely-shared-lock-adapter.js";
import { mysqlSharedLockStatements } from "../../src/shared-lock/adapters/kysely/mysql/mysql-shared-lock-statements.js";
import { postgresSharedLockStatements } from "../../src/shared-lock/adapters/kysely/postgres/postgres-shared-lock-statements.js";
import { sqliteSharedLockStatements } from "../../src/shared-lock/adapters/kysely/sqlite/sqlite-shared-lock-statements.js";
import type { ISharedLockAdapter } from "../../src/shared-lock/contracts/shared-lock-adapter.js";
import { sharedLockAdapterTestSuite } from "../../src/shared-lock/test-suites/shared-lock-adapter-test-suite.js";
import { sharedLockProviderTestSuite } from "../../src/shared-lock/test-suites/shared-lock-provider-test-suite.js";
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
  /** The server to run against; none: SQLite, in this process. */
  backend?: BackendName;
  open: (url: string) => OpenedDatabase;
  /** The waits queue in the key's row (PostgreSQL with a listener). */
  queue?: boolean;
};

const CONFIGURATIONS: readonly Configuration[] = [
  {
    name: "PostgreSQL, LISTEN/NOTIFY",
    backend: "postgres",
    open: (url) => openPostgres(url, { listeners: 30 }),
    queue: true,
  },
  {
    name: "PostgreSQL, no listener",
    backend: "postgres",
    open: (url) => openPostgres(url),
  },
  { name: "MariaDB, mysql2 defaults", backend: "mysql", open: (url) => openMysql(url) },
  {
    name: "MariaDB, CLIENT_FOUND_ROWS off, READ COMMITTED",
    backend: "mysql",
    open: (url) => openMysql(url, { flags: ["-FOUND_ROWS"], isolation: "READ COMMITTED" }),
  },
  { name: "SQLite in memory", open: () => openSqlite(":memory:") },
  { name: "SQLite file", open: () => openSqlite(sqliteFile("shared-locks.db")) },
];

const LONG = TimeSpan.fromSeconds(30);

describe("settings", () => {
  const kysely = new Kysely<any>({
    dialect: new SqliteDialect({ database: new Database(":memory:") }),
  });
  afterAll(() => kysely.destroy());

  test("a listener is refused on another dialect than PostgreSQL, by name", () => {
    const listener = { query: async () => ({}), on: () => {}, removeListener: () => {} };
    expect(() => new KyselySharedLockAdapter({ kysely, listener })).toThrow(
      /Invalid KyselySharedLockAdapter settings: listener: only PostgreSQL/,
    );
  });

  test("a bad table name is refused, naming the field", () => {
    expect(() => new KyselySharedLockAdapter({ kysely, tableName: "locks; DROP" })).toThrow(
      /tableName/,
    );
  });

  test("the tables default to hasp_shared_locks and hasp_shared_locks:readers", () => {
    const { createSchema } = postgresSharedLockStatements("hasp_shared_locks");
    expect(createSchema[0]).toContain('"hasp_shared_locks"');
    expect(createSchema[1]).toContain('"hasp_shared_locks:readers"');
  });
});

describe("the SQL of each dialect", () => {
  /** A statements object as text: each statement's SQL, the DDL as it is. */
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
    ["postgres", () => postgresSharedLockStatements("hasp_shared_locks")],
    [
      "mysql",
      () => mysqlSharedLockStatements("hasp_shared_locks", { returning: true, prepared: true }),
    ],
    ["sqlite", () => sqliteSharedLockStatements("hasp_shared_locks")],
  ] as const)("%s", (_dialect, make) => {
    expect(text(make())).toMatchSnapshot();
  });
});

for (const configuration of CONFIGURATIONS) {
  const body = (url: string) =>
    describe(configuration.name, () => {
      let database: OpenedDatabase;
      const tableName = uniqueName("i21sql_sl");
      const adapters: KyselySharedLockAdapter[] = [];
      const newAdapter = (table = tableName) => {
        const adapter = new KyselySharedLockAdapter({
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

      const queuedWaits =
        configuration.queue !== true
          ? undefined
          : async (key: string) => {
              const { rows } = await sql<{ queued: number | null }>`
                SELECT cardinality(waiters) AS queued FROM ${sql.table(tableName)}
                WHERE sl_key = ${storedKey(key)}`.execute(database.kysely);
              return Number(rows[0]?.queued ?? 0);
            };
      const destroyAdapter = (adapter: ISharedLockAdapter) =>
        (adapter as KyselySharedLockAdapter).close();

      describe("adapter conformance", () => {
        sharedLockAdapterTestSuite({
          createAdapter: () => newAdapter(),
          destroyAdapter,
          keyPrefix: "i21sql:",
          ...(queuedWaits === undefined ? {} : { queuedWaits }),
        });
      });

      describe("provider conformance", () => {
        sharedLockProviderTestSuite({
          createAdapter: () => newAdapter(),
          destroyAdapter,
          ...(queuedWaits === undefined ? {} : { queuedWaits }),
        });
      });

      describe("SQL specifics", () => {
        test("init() is idempotent, from several adapters at once", async () => {
          const table = uniqueName("i21sql_init");
          const racing = [newAdapter(table), newAdapter(table), newAdapter(table)];
          onTestFinished(() => racing[0]?.dropSchema());
          await Promise.all(racing.map((adapter) => adapter.init()));
          await racing[1]?.init();
          await expect(racing[2]?.acquireReader("k", "a", 2, LONG)).resolves.toMatchObject({
            acquired: true,
          });
        });

        test("an operation before init() fails with a SharedLockBackendError naming init()", async () => {
          const adapter = newAdapter(uniqueName("i21sql_none"));
          const failure = await adapter
            .acquireWriter("k", "a", LONG, null)
            .catch((error: unknown) => error);
          expect(failure).toMatchObject({ name: "SharedLockBackendError", key: "k" });
          expect(String((failure as Error).message)).toMatch(/init\(\)/);
        });

        test("a table shared by adapters with and without a listener: the queue goes first, then the intent's writer", async () => {
          const queueing = newAdapter();
          const polling = new KyselySharedLockAdapter({ kysely: database.kysely, tableName });
          onTestFinished(() => polling.close());
          const key = `i21sql:mixed:${uniqueName()}`;
          onTestFinished(() => polling.forceRelease(key).then(() => undefined));
          expect(await polling.acquireReader(key, "r1", 3, LONG)).toMatchObject({ acquired: true });
          // The polling writer is refused by the reader, and records its intent.
          expect(
            await polling.acquireWriter(key, "w", LONG, TimeSpan.fromSeconds(10)),
          ).toMatchObject({ acquired: false, blockedBy: "readers" });
          expect(await queueing.acquireReader(key, "r2", 3, LONG)).toMatchObject({
            acquired: false,
            blockedBy: "waiters",
          });
          if (queueing.waitForRelease === undefined) {
            // Without a listener on either side, the intent alone keeps readers out.
            expect(await polling.releaseReader(key, "r1")).toBe(true);
            expect(
              await polling.acquireWriter(key, "w", LONG, TimeSpan.fromSeconds(10)),
            ).toMatchObject({ acquired: true });
            return;
          }
          // A queued reader's claim respects the intent as a newcomer, so it queues...
          const handed = queueing.waitForRelease(key, LONG, new AbortController().signal, {
            side: "reader",
            lockId: "r2",
            limit: 3,
            ttl: LONG,
          });
          await vi.waitFor(async () => {
            const { rows } = await sql<{ queued: number | null }>`
              SELECT cardinality(waiters) AS queued FROM ${sql.table(tableName)}
              WHERE sl_key = ${storedKey(key)}`.execute(database.kysely);
            expect(Number(rows[0]?.queued ?? 0)).toBe(1);
          });
          // ...and the serving ignores the intent: r1's release hands r2 its slot.
          expect(await polling.releaseReader(key, "r1")).toBe(true);
          await expect(handed).resolves.toMatchObject({ acquired: true });
          expect(
            await polling.acquireWriter(key, "w", LONG, TimeSpan.fromSeconds(10)),
          ).toMatchObject({ acquired: false, blockedBy: "readers" });
          // The queue empty, the intent's writer gets its turn once r2 leaves.
          expect(await queueing.releaseReader(key, "r2")).toBe(true);
          expect(
            await polling.acquireWriter(key, "w", LONG, TimeSpan.fromSeconds(10)),
          ).toMatchObject({ acquired: true });
        });

        test("removeExpired() deletes only dead keys, and tokens still grow after it", async () => {
          const adapter = adapters[0] as KyselySharedLockAdapter;
          const key = `i21sql:dead:${uniqueName()}`;
          const first = await adapter.acquireWriter(key, "w", LONG, null);
          expect(first.acquired).toBe(true);
          await adapter.releaseWriter(key, "w");
          // Age the row's last token past the grace, as a minute without tokens would.
          await sql`UPDATE ${sql.table(tableName)} SET token = token - 120000000
            WHERE sl_key = ${storedKey(key)}`.execute(database.kysely);
          const held = `i21sql:held:${uniqueName()}`;
          await adapter.acquireReader(held, "r", 2, LONG);
          await sql`UPDATE ${sql.table(tableName)} SET token = token - 120000000
            WHERE sl_key = ${storedKey(held)}`.execute(database.kysely);
          expect(await adapter.removeExpired()).toBeGreaterThanOrEqual(1);
          const { rows } = await sql<{
            n: string;
          }>`SELECT count(*) AS n FROM ${sql.table(tableName)}
            WHERE sl_key IN (${storedKey(key)}, ${storedKey(held)})`.execute(database.kysely);
          expect(Number(rows[0]?.n)).toBe(1);
          const again = await adapter.acquireReader(key, "r", 2, LONG);
          expect(again.acquired && first.acquired && again.fencingToken > first.fencingToken).toBe(
            true,
          );
          await adapter.forceRelease(key);
          await adapter.forceRelease(held);
        });
      });
    });
  if (configuration.backend === undefined) {
    body("");
  } else {
    describeWithBackend(configuration.backend, body);
  }
}
