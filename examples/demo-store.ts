// The demo's store, opened the same way by the coordinator (demo.ts) and by every worker
// (demo-worker.ts): a lock adapter, plus the section log the workers append to and the
// coordinator checks. On SQL the log is a table beside the lock table; on Redis, a list.
// Drivers are imported only for the store in use, so a worker starts quickly.
import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect, sql } from "kysely";
import type pg from "pg";
import { KyselyLockAdapter } from "../src/lock/adapters/kysely/index.js";
import { RedisLockAdapter } from "../src/lock/adapters/redis/index.js";
import type { ILockAdapter } from "../src/lock/contracts/index.js";
import { Namespace } from "../src/namespace/index.js";
import { TimeSpan } from "../src/time-span/index.js";
import type { DemoStoreSettings, SectionRecord } from "./demo-protocol.js";

const CONNECT_TIMEOUT_MS = 3_000;

export type DemoStore = {
  readonly adapter: ILockAdapter;
  /** What the run creates, for `--keep`. */
  readonly created: string;
  /**
   * The pause between tries of a blocking acquire. Only SQLite and MySQL use it: Redis and
   * PostgreSQL (with a listener) wake a waiter with the release itself.
   */
  readonly blockingInterval: TimeSpan;
  /** Creates the lock table and the log (the coordinator, before any worker starts). */
  init(): Promise<void>;
  append(record: SectionRecord): Promise<void>;
  /** The log, in the order the sections were written. */
  read(): Promise<SectionRecord[]>;
  /** Removes what the run created on the server. */
  drop(): Promise<void>;
  close(): Promise<void>;
};

/** The namespace of a run's keys, so that runs sharing a server never contend. */
export function demoNamespace(run: string): Namespace {
  return new Namespace(["hasp-demo", run]);
}

/**
 * Connects to the store (and fails when it does not answer within a few seconds).
 * `listen`: on PostgreSQL, a connection of its own for release notifications (the workers).
 */
export async function openDemoStore(
  settings: DemoStoreSettings,
  { listen = false }: { listen?: boolean } = {},
): Promise<DemoStore> {
  switch (settings.store) {
    case "sqlite":
      return openSqlite(settings);
    case "postgres":
      return openPostgres(settings, listen);
    case "mysql":
      return openMysql(settings);
    case "redis":
      return openRedis(settings);
  }
}

async function openSqlite({ target, run }: DemoStoreSettings): Promise<DemoStore> {
  const { default: Database } = await import("better-sqlite3");
  // WAL lets readers go on while one process writes; the busy timeout makes a writer wait for
  // the file's write lock (held for one statement at a time) instead of failing at once.
  const database = new Database(target, { timeout: 10_000 });
  database.pragma("journal_mode = WAL");
  database.pragma("synchronous = NORMAL");
  const kysely = new Kysely({ dialect: new SqliteDialect({ database }) });
  return sqlStore(kysely, run, {
    where: `the file ${target}`,
    blockingInterval: TimeSpan.fromMilliseconds(20),
    logColumns:
      "seq INTEGER PRIMARY KEY, lock_key TEXT NOT NULL, token INTEGER NOT NULL, worker TEXT NOT NULL, start_ms REAL NOT NULL, end_ms REAL NOT NULL",
  });
}

async function openPostgres(
  { target, run }: DemoStoreSettings,
  listen: boolean,
): Promise<DemoStore> {
  const { Pool } = (await import("pg")).default;
  const pool = new Pool({
    connectionString: target,
    max: 4,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  const listener = listen
    ? new Pool({ connectionString: target, max: 1, connectionTimeoutMillis: CONNECT_TIMEOUT_MS })
    : undefined;
  const kysely = new Kysely({ dialect: new PostgresDialect({ pool }) });
  return sqlStore(kysely, run, {
    where: "PostgreSQL",
    blockingInterval: TimeSpan.fromMilliseconds(20),
    listener,
    logColumns:
      "seq BIGSERIAL PRIMARY KEY, lock_key TEXT NOT NULL, token BIGINT NOT NULL, worker TEXT NOT NULL, start_ms DOUBLE PRECISION NOT NULL, end_ms DOUBLE PRECISION NOT NULL",
    closeDriver: async () => {
      await listener?.end();
    },
  });
}

async function openMysql({ target, run }: DemoStoreSettings): Promise<DemoStore> {
  const { default: mysql } = await import("mysql2");
  const pool = mysql.createPool({
    uri: target,
    connectionLimit: 4,
    connectTimeout: CONNECT_TIMEOUT_MS,
  });
  const kysely = new Kysely({ dialect: new MysqlDialect({ pool }) });
  return sqlStore(kysely, run, {
    where: "MySQL",
    blockingInterval: TimeSpan.fromMilliseconds(20),
    logColumns:
      "seq BIGINT AUTO_INCREMENT PRIMARY KEY, lock_key VARCHAR(100) NOT NULL, token BIGINT NOT NULL, worker VARCHAR(20) NOT NULL, start_ms DOUBLE NOT NULL, end_ms DOUBLE NOT NULL",
  });
}

type SqlStoreSettings = {
  /** Where the tables are, for `created`. */
  where: string;
  blockingInterval: TimeSpan;
  /** The log table's columns, in the dialect's words. */
  logColumns: string;
  listener?: pg.Pool | undefined;
  closeDriver?: () => Promise<void>;
};

type LogRow = {
  lock_key: string;
  token: number | string;
  worker: string;
  start_ms: number | string;
  end_ms: number | string;
};

function sqlStore(kysely: Kysely<any>, run: string, settings: SqlStoreSettings): DemoStore {
  const lockTable = `hasp_demo_${run}`;
  const logTable = sql.table(`${lockTable}_log`);
  const adapter = new KyselyLockAdapter({
    kysely,
    tableName: lockTable,
    ...(settings.listener === undefined ? {} : { listener: settings.listener }),
  });
  return {
    adapter,
    created: `the tables ${lockTable} and ${lockTable}_log in ${settings.where}`,
    blockingInterval: settings.blockingInterval,
    async init() {
      await adapter.init();
      await sql`CREATE TABLE IF NOT EXISTS ${logTable} (${sql.raw(settings.logColumns)})`.execute(
        kysely,
      );
    },
    async append({ key, token, worker, start, end }) {
      await sql`INSERT INTO ${logTable} (lock_key, token, worker, start_ms, end_ms)
        VALUES (${key}, ${token}, ${worker}, ${start}, ${end})`.execute(kysely);
    },
    async read() {
      const { rows } = await sql<LogRow>`SELECT lock_key, token, worker, start_ms, end_ms
        FROM ${logTable} ORDER BY seq`.execute(kysely);
      return rows.map((row) => ({
        key: row.lock_key,
        token: Number(row.token),
        worker: row.worker,
        start: Number(row.start_ms),
        end: Number(row.end_ms),
      }));
    },
    async drop() {
      await sql`DROP TABLE IF EXISTS ${logTable}`.execute(kysely);
      await adapter.dropSchema();
    },
    async close() {
      await adapter.close();
      await settings.closeDriver?.();
      await kysely.destroy();
    },
  };
}

async function openRedis({ target, run }: DemoStoreSettings): Promise<DemoStore> {
  const { Redis } = await import("ioredis");
  // No reconnection: a server that does not answer is reported at once, not retried forever.
  const client = new Redis(target, {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  // Failures reach the caller through the commands; without a listener ioredis prints them too.
  let lastError: unknown;
  client.on("error", (error) => {
    lastError = error;
  });
  // connect() rejects with "Connection is closed"; the error event says why.
  await client.connect().catch((error: unknown) => {
    throw lastError ?? error;
  });
  const adapter = new RedisLockAdapter(client);
  const logKey = `hasp-demo:${run}:sections`;
  return {
    adapter,
    created: `the Redis keys {${demoNamespace(run).toString()}:*} and ${logKey}`,
    blockingInterval: TimeSpan.fromMilliseconds(20),
    async init() {
      await client.del(logKey);
    },
    async append(record) {
      await client.rpush(logKey, JSON.stringify(record));
    },
    async read() {
      const entries = await client.lrange(logKey, 0, -1);
      return entries.map((entry) => JSON.parse(entry) as SectionRecord);
    },
    async drop() {
      // Each lock leaves a fencing counter behind (it outlives the hold by design).
      const pattern = `{${demoNamespace(run).toString()}:*`;
      let cursor = "0";
      do {
        const [next, keys] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000);
        if (keys.length > 0) {
          await client.del(...keys);
        }
        cursor = next;
      } while (cursor !== "0");
      await client.del(logKey);
    },
    async close() {
      await adapter.close();
      await client.quit();
    },
  };
}
