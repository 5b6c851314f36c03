// The SQL side of the bench: PostgreSQL and MariaDB/MySQL found the way the test harness finds
// them (POSTGRES_URL / MYSQL_URL when set, else the local default; loopback only), SQLite as a
// file in a directory of the child's own, one statement counter per connection, and the clean-up
// of what a child that died left behind (its tables, its directory).

import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import mysql from "mysql2";
import pg from "pg";
import type { Counters } from "./types.js";

/** The backends that are a server (SQLite runs in the child). */
export type SqlServerName = "postgres" | "mysql";

export const SQL_SERVERS: readonly SqlServerName[] = ["postgres", "mysql"];

/** Connections per pool, the same for the raw baseline and hasp. */
export const POOL_SIZE = 10;

const CONNECT_TIMEOUT_MS = 2_000;
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

const SERVER_URLS: Record<SqlServerName, { variable: string; fallback: string }> = {
  postgres: { variable: "POSTGRES_URL", fallback: "postgres://postgres@127.0.0.1:5432/test" },
  mysql: { variable: "MYSQL_URL", fallback: "mysql://root@127.0.0.1:3306/test" },
};

export type SqlProbe =
  | { found: true; url: string; version: string }
  | { found: false; url: string; reason: string };

/** A pg pool of `POOL_SIZE` whose connections count every statement in `counters.commands`. */
export function createPgPool(url: string, counters?: Counters): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: POOL_SIZE,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  if (counters !== undefined) {
    pool.on("connect", (client) => {
      const query = client.query.bind(client);
      client.query = ((...args: Parameters<typeof query>) => {
        counters.commands += 1;
        return query(...args);
      }) as typeof client.query;
    });
  }
  return pool;
}

/**
 * A mysql2 pool (callback API, as Kysely takes it) of `POOL_SIZE` whose connections count every
 * `query` and `execute` in `counters.commands`.
 */
export function createMysqlPool(
  url: string,
  counters?: Counters,
  flags: string[] = [],
): mysql.Pool {
  const pool = mysql.createPool({
    uri: url,
    connectionLimit: POOL_SIZE,
    connectTimeout: CONNECT_TIMEOUT_MS,
    flags,
  });
  if (counters !== undefined) {
    pool.on("connection", (connection) => {
      for (const method of ["query", "execute"] as const) {
        const send = connection[method].bind(connection) as (...args: unknown[]) => unknown;
        (connection as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
          counters.commands += 1;
          return send(...args);
        };
      }
    });
  }
  return pool;
}

/** The directory of one child's SQLite files: unique to its prefix, removed by `close()`. */
export function sqliteDirectory(prefix: string): string {
  return join(tmpdir(), prefix);
}

/**
 * A connection to a SQLite file in WAL mode with `synchronous = NORMAL` (what WAL is meant to
 * run with) and a busy timeout, for the raw baseline and hasp alike.
 */
export function openSqlite(file: string): Database.Database {
  const database = new Database(file);
  database.pragma("journal_mode = WAL");
  database.pragma("synchronous = NORMAL");
  database.pragma("busy_timeout = 5000");
  return database;
}

function loopbackUrl(backend: SqlServerName): { url: string; reason?: string } {
  const { variable, fallback } = SERVER_URLS[backend];
  const url = process.env[variable] ?? fallback;
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return { url, reason: `${variable} is not a URL` };
  }
  return LOOPBACK_HOSTS.has(host)
    ? { url }
    : { url, reason: `${host} is not loopback; the bench measures loopback only` };
}

async function serverVersion(backend: SqlServerName, url: string): Promise<string> {
  if (backend === "postgres") {
    const client = new pg.Client({
      connectionString: url,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    try {
      await client.connect();
      const { rows } = await client.query<{ version: string }>(
        "SELECT current_setting('server_version') AS version",
      );
      return `PostgreSQL ${rows[0]?.version ?? "unknown"}`;
    } finally {
      await client.end().catch(() => {});
    }
  }
  const connection = mysql
    .createConnection({ uri: url, connectTimeout: CONNECT_TIMEOUT_MS })
    .promise();
  try {
    const [rows] = await connection.query("SELECT VERSION() AS version");
    const version = (rows as Array<{ version?: string }>)[0]?.version ?? "unknown";
    return version.toLowerCase().includes("mariadb") ? version : `MySQL ${version}`;
  } finally {
    connection.destroy();
  }
}

/** Where the server is, and whether it answers within 2 s. Only loopback addresses are accepted. */
export async function probeSqlServer(backend: SqlServerName): Promise<SqlProbe> {
  const { url, reason } = loopbackUrl(backend);
  if (reason !== undefined) {
    return { found: false, url, reason };
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${CONNECT_TIMEOUT_MS} ms`)),
      CONNECT_TIMEOUT_MS,
    );
  });
  try {
    const version = await Promise.race([serverVersion(backend, url), timeout]);
    return { found: true, url, version };
  } catch (error) {
    return { found: false, url, reason: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}

/** The SQLite library better-sqlite3 was built with, or why it cannot be loaded. */
export function probeSqlite(): { found: true; version: string } | { found: false; reason: string } {
  try {
    const database = new Database(":memory:");
    try {
      const row = database.prepare("SELECT sqlite_version() AS version").get() as {
        version: string;
      };
      return { found: true, version: `SQLite ${row.version}` };
    } finally {
      database.close();
    }
  } catch (error) {
    return { found: false, reason: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * Drops the tables of the child with this prefix (`<prefix>_raw`, `<prefix>_hasp`: a child that
 * died could not), or removes its SQLite directory. Never touches anything else (not even
 * `<prefix>0_…`, another child's).
 */
export async function dropLeftovers(
  backend: SqlServerName | "sqlite",
  url: string | undefined,
  prefix: string,
): Promise<void> {
  if (backend === "sqlite") {
    rmSync(sqliteDirectory(prefix), { recursive: true, force: true });
    return;
  }
  if (url === undefined) {
    return;
  }
  if (backend === "postgres") {
    const client = new pg.Client({
      connectionString: url,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    await client.connect();
    try {
      const { rows } = await client.query<{ name: string }>(
        "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()",
      );
      for (const { name } of rows.filter((row) => row.name.startsWith(`${prefix}_`))) {
        await client.query(`DROP TABLE IF EXISTS "${name}"`);
      }
    } finally {
      await client.end();
    }
    return;
  }
  const connection = mysql
    .createConnection({ uri: url, connectTimeout: CONNECT_TIMEOUT_MS })
    .promise();
  try {
    const [rows] = await connection.query(
      "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE()",
    );
    for (const { name } of (rows as Array<{ name: string }>).filter((row) =>
      row.name.startsWith(`${prefix}_`),
    )) {
      await connection.query(`DROP TABLE IF EXISTS \`${name}\``);
    }
  } finally {
    await connection.end();
  }
}
