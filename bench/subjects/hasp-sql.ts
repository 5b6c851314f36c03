// hasp on SQL: `LockProvider` + `KyselyLockAdapter` over Kysely with the same driver and pool
// size as the raw baseline. As in hasp.ts: `acquire`/`release` for the cycle scenarios,
// `runBlockingOrFail` for the contended ones, a new lock (owner) per cycle or section. PostgreSQL
// waits on LISTEN/NOTIFY (a `listener` pool of its own); MySQL and SQLite have no release signal
// and poll at 10 ms, the baseline's interval. Statements are counted at the driver.

import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Kysely, MysqlDialect, PostgresDialect, type SqliteDatabase, SqliteDialect } from "kysely";
import pg from "pg";
import {
  KyselyLockAdapter,
  type KyselyLockAdapterSettings,
} from "../../src/lock/adapters/kysely/index.js";
import {
  KyselySemaphoreAdapter,
  type KyselySemaphoreAdapterSettings,
} from "../../src/semaphore/adapters/kysely/index.js";
import { createMysqlPool, createPgPool, openSqlite, POOL_SIZE, sqliteDirectory } from "../sql.js";
import type { SubjectDefinition, SubjectEnvironment, SubjectFixture } from "../types.js";
import { haspClient } from "./hasp.js";
import { withSemaphore } from "./hasp-semaphore.js";

/** Where no release signal exists: the raw baseline's polling interval. */
const POLL_MS = 10;

type AnyKysely = Kysely<any>;

/** One client's Kysely (and whatever else it opened), as `open` makes it. */
type Opened = {
  kysely: AnyKysely;
  settings?: Partial<KyselyLockAdapterSettings>;
  /** The semaphore adapter's own settings (a listener of its own), made at its first section. */
  semaphoreSettings?: () => Partial<KyselySemaphoreAdapterSettings>;
  /** Closes what Kysely does not (the listener pools). */
  close?: () => Promise<void>;
};

/**
 * A hasp subject over `open` (one client's Kysely; `connect` calls it once per client). The
 * first client's adapter creates the table; `close()` drops it before destroying the clients.
 */
function haspSubject(env: SubjectEnvironment, open: () => Opened): SubjectFixture {
  const tableName = `${env.tablePrefix}_hasp`;
  const clients: Array<{ adapter: KyselyLockAdapter } & Opened> = [];
  const semaphores: KyselySemaphoreAdapter[] = [];
  let created: Promise<void> | undefined;
  let semaphoresCreated: Promise<void> | undefined;
  return {
    async connect() {
      const opened = open();
      const adapter = new KyselyLockAdapter({
        kysely: opened.kysely,
        tableName,
        ...opened.settings,
      });
      clients.push({ adapter, ...opened });
      created ??= adapter.init();
      await created;
      // The semaphore's tables, made at its first section only.
      const semaphoreAdapter = async () => {
        const semaphore = new KyselySemaphoreAdapter({
          kysely: opened.kysely,
          tableName: `${tableName}_sem`,
          ...opened.semaphoreSettings?.(),
        });
        semaphores.push(semaphore);
        semaphoresCreated ??= semaphore.init();
        await semaphoresCreated;
        return semaphore;
      };
      return withSemaphore(haspClient(adapter, env, POLL_MS), semaphoreAdapter, env, POLL_MS);
    },
    async close() {
      await Promise.all(clients.map(({ adapter }) => adapter.close()));
      await Promise.all(semaphores.map((semaphore) => semaphore.close()));
      try {
        if (!env.keepTables) {
          await clients[0]?.adapter.dropSchema();
          await semaphores[0]?.dropSchema();
        }
      } finally {
        await Promise.all(
          clients.map(async ({ kysely, close }) => {
            await kysely.destroy();
            await close?.();
          }),
        );
      }
    },
  };
}

export const haspPostgres: SubjectDefinition = {
  name: "hasp-postgres",
  backend: "postgres",
  baseline: false,
  description: `LockProvider + KyselyLockAdapter, Kysely on a pg Pool (${POOL_SIZE}) per client, and a listener pool (LISTEN/NOTIFY)`,
  semaphore:
    "SemaphoreProvider + KyselySemaphoreAdapter on the same Kysely (tables <prefix>_hasp_sem) and a listener pool of its own: one CALL per acquire, a release hands the slot to the oldest waiter (LISTEN/NOTIFY)",
  async setup(env) {
    const url = env.postgresUrl;
    if (url === undefined) {
      throw new Error("hasp-postgres needs PostgreSQL");
    }
    return haspSubject(env, () => {
      const listeners = [new pg.Pool({ connectionString: url, max: 1 })];
      return {
        kysely: new Kysely({
          dialect: new PostgresDialect({ pool: createPgPool(url, env.counters) }),
        }),
        settings: { listener: listeners[0] },
        semaphoreSettings: () => {
          const listener = new pg.Pool({ connectionString: url, max: 1 });
          listeners.push(listener);
          return { listener };
        },
        close: async () => {
          await Promise.all(listeners.map((listener) => listener.end()));
        },
      };
    });
  },
};

export const haspMysql: SubjectDefinition = {
  name: "hasp-mysql",
  backend: "mysql",
  baseline: false,
  description: `LockProvider + KyselyLockAdapter, Kysely on a mysql2 pool (${POOL_SIZE}) per client, 10 ms polling`,
  semaphore:
    "SemaphoreProvider + KyselySemaphoreAdapter on the same Kysely: one CALL per acquire, 10 ms polling",
  async setup(env) {
    const url = env.mysqlUrl;
    if (url === undefined) {
      throw new Error("hasp-mysql needs MySQL or MariaDB");
    }
    return haspSubject(env, () => ({
      kysely: new Kysely({
        dialect: new MysqlDialect({ pool: createMysqlPool(url, env.counters) }),
      }),
    }));
  },
};

export const haspSqlite: SubjectDefinition = {
  name: "hasp-sqlite",
  backend: "sqlite",
  baseline: false,
  description:
    "LockProvider + KyselyLockAdapter, Kysely on better-sqlite3 (WAL, a connection per client, statements kept prepared), 10 ms polling",
  semaphore:
    "SemaphoreProvider + KyselySemaphoreAdapter on the same Kysely: one upsert (BEFORE triggers) per acquire, 10 ms polling",
  async setup(env) {
    const directory = sqliteDirectory(env.tablePrefix);
    mkdirSync(directory, { recursive: true });
    const file = join(directory, "locks.db");
    const fixture = haspSubject(env, () => {
      const database = openSqlite(file);
      // Kysely prepares every statement it runs; keep them prepared, as docs/adapters/sql.md
      // recommends (one prepare call is still one statement run, for the count).
      const statements = new Map<string, ReturnType<typeof database.prepare>>();
      const cached: SqliteDatabase = {
        close: () => database.close(),
        prepare: (source) => {
          env.counters.commands += 1;
          let statement = statements.get(source);
          if (statement === undefined) {
            statement = database.prepare(source);
            statements.set(source, statement);
          }
          return statement;
        },
      };
      return { kysely: new Kysely({ dialect: new SqliteDialect({ database: cached }) }) };
    });
    return {
      connect: () => fixture.connect(),
      async close() {
        try {
          await fixture.close();
        } finally {
          if (!env.keepTables) {
            rmSync(directory, { recursive: true, force: true });
          }
        }
      },
    };
  },
};
