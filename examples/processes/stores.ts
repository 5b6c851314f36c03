// The stores a multi-process run uses, opened the same way by its coordinator and by every
// worker: a connection to SQLite (a file), Redis, PostgreSQL or MySQL/MariaDB, the lock or
// semaphore adapter on it, and beside them the section log the workers append to and the
// resource they write (see section-log.ts). Drivers are imported only for the store in use, so that a worker
// starts quickly and `--help` loads none.
import type { Redis } from "ioredis";
import type { Kysely } from "kysely";
import type pg from "pg";
import type { ILockAdapter } from "../../src/lock/contracts/index.js";
import type { ISemaphoreAdapter } from "../../src/semaphore/contracts/index.js";

export const STORES = ["sqlite", "redis", "postgres", "mysql"] as const;
export type StoreName = (typeof STORES)[number];

/** Where a store is: the server's URL, or the SQLite file. */
export type StoreTarget = { store: StoreName; target: string };

export type ConnectOptions = {
  /** PostgreSQL: a connection of its own for release notifications. @default false */
  listen?: boolean;
  /** Connections in the pool (SQL servers). @default 4 */
  connections?: number;
  /**
   * PostgreSQL: the `application_name` of the connections (the listener's ends in `_listen`),
   * so that a test can find and terminate them.
   */
  label?: string;
  /**
   * Survive a server that goes away: Redis reconnects every 100 ms, PostgreSQL drops a
   * terminated connection quietly. Without it a server that does not answer fails at once.
   * @default false
   */
  reconnect?: boolean;
};

/** A connection to one store: Redis, or SQL through Kysely. */
export type StoreConnection =
  | { store: "redis"; redis: Redis; close(): Promise<void> }
  | {
      store: "sqlite" | "postgres" | "mysql";
      kysely: Kysely<any>;
      /** PostgreSQL with `listen`. */
      listener?: pg.Pool;
      close(): Promise<void>;
    };

/** Connections that do not answer within this long fail. */
const CONNECT_TIMEOUT_MS = 3_000;

export async function connect(
  { store, target }: StoreTarget,
  options: ConnectOptions = {},
): Promise<StoreConnection> {
  switch (store) {
    case "sqlite":
      return connectSqlite(target);
    case "postgres":
      return connectPostgres(target, options);
    case "mysql":
      return connectMysql(target, options);
    case "redis":
      return connectRedis(target, options);
  }
}

/**
 * The lock adapter on `connection`: `tableName` is the lock table on SQL (created by its
 * `init()`). Closing the adapter leaves the connection open.
 */
export async function lockAdapterOn(
  connection: StoreConnection,
  tableName: string,
): Promise<ILockAdapter & { init?(): Promise<void>; dropSchema?(): Promise<void> }> {
  if (connection.store === "redis") {
    const { RedisLockAdapter } = await import("../../src/lock/adapters/redis/index.js");
    return new RedisLockAdapter(connection.redis);
  }
  const { KyselyLockAdapter } = await import("../../src/lock/adapters/kysely/index.js");
  const { kysely, listener } = connection;
  return new KyselyLockAdapter({
    kysely,
    tableName,
    ...(listener === undefined ? {} : { listener }),
  });
}

/**
 * The semaphore adapter on `connection`: `tableName` names its tables on SQL (created by its
 * `init()`). Closing the adapter leaves the connection open.
 */
export async function semaphoreAdapterOn(
  connection: StoreConnection,
  tableName: string,
): Promise<ISemaphoreAdapter & { init?(): Promise<void>; dropSchema?(): Promise<void> }> {
  if (connection.store === "redis") {
    const { RedisSemaphoreAdapter } = await import("../../src/semaphore/adapters/redis/index.js");
    return new RedisSemaphoreAdapter(connection.redis);
  }
  const { KyselySemaphoreAdapter } = await import("../../src/semaphore/adapters/kysely/index.js");
  const { kysely, listener } = connection;
  return new KyselySemaphoreAdapter({
    kysely,
    tableName,
    ...(listener === undefined ? {} : { listener }),
  });
}

async function connectSqlite(file: string): Promise<StoreConnection> {
  const [{ default: Database }, { Kysely, SqliteDialect }] = await Promise.all([
    import("better-sqlite3"),
    import("kysely"),
  ]);
  // WAL lets readers go on while one process writes; the busy timeout makes a writer wait for
  // the file's write lock (held for one statement at a time) instead of failing at once.
  const database = new Database(file, { timeout: 10_000 });
  database.pragma("journal_mode = WAL");
  database.pragma("synchronous = NORMAL");
  const kysely = new Kysely<any>({ dialect: new SqliteDialect({ database }) });
  return { store: "sqlite", kysely, close: () => kysely.destroy() };
}

async function connectPostgres(url: string, options: ConnectOptions): Promise<StoreConnection> {
  const [{ default: pgModule }, { Kysely, PostgresDialect }] = await Promise.all([
    import("pg"),
    import("kysely"),
  ]);
  const poolOf = (max: number, name: string | undefined) => {
    const pool = new pgModule.Pool({
      connectionString: url,
      max,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      ...(name === undefined ? {} : { application_name: name }),
    });
    if (options.reconnect) {
      // A terminated connection is an 'error' event, and one nobody listens to ends the
      // process: on the pool for an idle client, on the client while it is checked out.
      pool.on("error", () => {});
      pool.on("connect", (client) => {
        client.on("error", () => {});
      });
    }
    return pool;
  };
  const pool = poolOf(options.connections ?? 4, options.label);
  const listener = options.listen
    ? poolOf(1, options.label === undefined ? undefined : `${options.label}_listen`)
    : undefined;
  const kysely = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  return {
    store: "postgres",
    kysely,
    ...(listener === undefined ? {} : { listener }),
    close: async () => {
      await kysely.destroy();
      await listener?.end();
    },
  };
}

async function connectMysql(url: string, options: ConnectOptions): Promise<StoreConnection> {
  const [{ default: mysql }, { Kysely, MysqlDialect }] = await Promise.all([
    import("mysql2"),
    import("kysely"),
  ]);
  const pool = mysql.createPool({
    uri: url,
    connectionLimit: options.connections ?? 4,
    connectTimeout: CONNECT_TIMEOUT_MS,
  });
  const kysely = new Kysely<any>({ dialect: new MysqlDialect({ pool }) });
  return { store: "mysql", kysely, close: () => kysely.destroy() };
}

async function connectRedis(url: string, options: ConnectOptions): Promise<StoreConnection> {
  const { Redis } = await import("ioredis");
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    // As an application that must not hang on a dead Redis configures it (see
    // tests/lock/redis-faults.test.ts): fail a call after one reconnect attempt, reconnect every
    // 100 ms forever. Otherwise no reconnection: a server that does not answer is reported.
    ...(options.reconnect
      ? { retryStrategy: () => 100, connectTimeout: 2_000 }
      : { retryStrategy: () => null, connectTimeout: CONNECT_TIMEOUT_MS }),
  });
  // Failures reach the caller through the commands; without a listener ioredis prints them too.
  let lastError: unknown;
  redis.on("error", (error) => {
    lastError = error;
  });
  // connect() rejects with "Connection is closed"; the error event says why.
  await redis.connect().catch((error: unknown) => {
    throw lastError ?? error;
  });
  return {
    store: "redis",
    redis,
    close: async () => {
      // A server that went away would keep quit() waiting for the reconnect.
      if (options.reconnect) {
        redis.disconnect();
      } else {
        await redis.quit().catch(() => redis.disconnect());
      }
    },
  };
}
