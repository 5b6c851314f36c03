/**
 * A torture run's backend as the parent process sees it: where the workers find the locks and
 * the guarded resource, the faults only the parent can inject (a Redis restart, terminated
 * PostgreSQL connections), what the resource and the log hold at the end, and the clean-up.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import { Redis } from "ioredis";
import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect, sql } from "kysely";
import mysql from "mysql2";
import pg from "pg";
import { KyselyLockAdapter } from "../../src/lock/adapters/kysely/kysely-lock-adapter.js";
import { PrivateRedisServer } from "../harness/private-redis.js";
import type { Outage, ResourceState, SectionRecord } from "./check-sections.js";
import { sqlTables, type TortureBackend } from "./torture-protocol.js";

export type TortureStoreSettings = {
  backend: TortureBackend;
  /** The server (unused for SQLite); on Redis it keeps the resource and the log only. */
  url?: string;
  name: string;
  keys: string[];
  /** The run's clock (ms since its epoch), for the outages. */
  now: () => number;
};

/** The backend as this process sees it: where workers go, its faults, the resource and the log. */
export type TortureStore = {
  lockTarget: string;
  resourceTarget: string;
  /** Where a delay proxy forwards to; null: no network (SQLite). */
  lockEndpoint: { host: string; port: number } | null;
  /** Redis: kills the lock server (SIGKILL), keeps it down a moment, starts it again. */
  restart?: () => Promise<Outage>;
  /** PostgreSQL: terminates every lock connection of the workers; answers how many. */
  terminate?: () => Promise<number>;
  /** The token the guarded resource holds for `key` (0: none yet). */
  resourceToken(key: string): Promise<number>;
  readResource(): Promise<Map<string, ResourceState>>;
  readLog(): Promise<SectionRecord[]>;
  close(): Promise<void>;
};

function endpointOf(url: string, defaultPort: number): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: parsed.port === "" ? defaultPort : Number(parsed.port) };
}

export async function openTortureStore(settings: TortureStoreSettings): Promise<TortureStore> {
  const { backend, name, keys, now } = settings;
  if (backend === "redis") {
    const url = required(settings);
    const server = await PrivateRedisServer.start();
    const client = new Redis(url, { maxRetriesPerRequest: 1 });
    const resourceKey = (key: string) => `${name}:res:${key}`;
    const logKey = `${name}:log`;
    return {
      lockTarget: server.url,
      resourceTarget: url,
      lockEndpoint: { host: "127.0.0.1", port: server.port },
      restart: async () => {
        const from = now();
        await server.stop();
        const dead = now();
        // Down long enough that the clients' calls fail rather than wait for the reconnect.
        await sleep(400);
        await server.start();
        return { from, dead, back: now() };
      },
      resourceToken: async (key) => Number((await client.hget(resourceKey(key), "token")) ?? 0),
      readResource: async () => {
        const state = new Map<string, ResourceState>();
        for (const key of keys) {
          const hash = await client.hgetall(resourceKey(key));
          state.set(key, { token: Number(hash.token ?? 0), writes: Number(hash.writes ?? 0) });
        }
        return state;
      },
      readLog: async () =>
        (await client.lrange(logKey, 0, -1)).map((line) => JSON.parse(line) as SectionRecord),
      close: async () => {
        await client.del(logKey, ...keys.map(resourceKey));
        await client.quit();
        await server.stop();
      },
    };
  }
  if (backend === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "hasp-torture-"));
    const file = join(dir, "locks.db");
    const database = new Database(file, { timeout: 10_000 });
    // WAL is a property of the file: set once here, every worker then uses it.
    database.pragma("journal_mode = WAL");
    const kysely = new Kysely<any>({ dialect: new SqliteDialect({ database }) });
    const store = await sqlStore(kysely, "sqlite", name, keys, async () => {
      await kysely.destroy();
      rmSync(dir, { recursive: true, force: true });
    });
    return { ...store, lockTarget: file, resourceTarget: file, lockEndpoint: null };
  }
  const url = required(settings);
  if (backend === "postgres") {
    const pool = new pg.Pool({ connectionString: url, max: 2, application_name: `${name}_admin` });
    const kysely = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
    const store = await sqlStore(kysely, "postgres", name, keys, () => kysely.destroy());
    return {
      ...store,
      lockTarget: url,
      resourceTarget: url,
      lockEndpoint: endpointOf(url, 5432),
      terminate: async () => {
        // The lock connections of every worker: its pool and its LISTEN connection, not the
        // resource's (a torn write to the resource would prove nothing about the lock).
        const { rows } = await pool.query<{ terminated: boolean }>(
          `SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity
           WHERE datname = current_database() AND application_name IN ($1, $2)`,
          [`${name}_lock`, `${name}_listen`],
        );
        return rows.filter((row) => row.terminated).length;
      },
    };
  }
  const kysely = new Kysely<any>({
    dialect: new MysqlDialect({ pool: mysql.createPool({ uri: url, connectionLimit: 2 }) }),
  });
  const store = await sqlStore(kysely, "mysql", name, keys, () => kysely.destroy());
  return { ...store, lockTarget: url, resourceTarget: url, lockEndpoint: endpointOf(url, 3306) };
}

function required(settings: TortureStoreSettings): string {
  if (settings.url === undefined) {
    throw new Error(`a ${settings.backend} torture run needs the server's URL`);
  }
  return settings.url;
}

/** The lock table (through the adapter), the resource and the log, and their clean-up. */
async function sqlStore(
  kysely: Kysely<any>,
  dialect: "postgres" | "mysql" | "sqlite",
  name: string,
  keys: string[],
  destroy: () => Promise<void>,
): Promise<Omit<TortureStore, "lockTarget" | "resourceTarget" | "lockEndpoint">> {
  const adapter = new KyselyLockAdapter({ kysely, tableName: name });
  const tables = sqlTables(name);
  const resource = sql.table(tables.resource);
  const log = sql.table(tables.log);
  const seq = {
    postgres: sql`bigserial PRIMARY KEY`,
    mysql: sql`BIGINT AUTO_INCREMENT PRIMARY KEY`,
    sqlite: sql`INTEGER PRIMARY KEY AUTOINCREMENT`,
  }[dialect];
  const drop = async () => {
    await adapter.dropSchema();
    for (const table of [tables.resource, tables.log]) {
      await sql`DROP TABLE IF EXISTS ${sql.table(table)}`.execute(kysely);
    }
  };
  try {
    await adapter.init();
    await sql`CREATE TABLE ${resource} (res_key VARCHAR(32) PRIMARY KEY, token BIGINT NOT NULL, writes INT NOT NULL)`.execute(
      kysely,
    );
    await sql`CREATE TABLE ${log} (seq ${seq}, entry TEXT NOT NULL)`.execute(kysely);
    for (const key of keys) {
      await sql`INSERT INTO ${resource} (res_key, token, writes) VALUES (${key}, 0, 0)`.execute(
        kysely,
      );
    }
  } catch (error) {
    await drop().catch(() => {});
    await destroy();
    throw error;
  }
  const readResource = async () => {
    const { rows } = await sql<{
      res_key: string;
      token: number | string;
      writes: number | string;
    }>`SELECT res_key, token, writes FROM ${resource}`.execute(kysely);
    return new Map(
      rows.map((row) => [row.res_key, { token: Number(row.token), writes: Number(row.writes) }]),
    );
  };
  return {
    resourceToken: async (key) => (await readResource()).get(key)?.token ?? 0,
    readResource,
    readLog: async () => {
      const { rows } = await sql<{ entry: string }>`SELECT entry FROM ${log} ORDER BY seq`.execute(
        kysely,
      );
      return rows.map((row) => JSON.parse(row.entry) as SectionRecord);
    },
    close: async () => {
      await drop();
      await destroy();
    },
  };
}
