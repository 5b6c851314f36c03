/**
 * The databases the Kysely adapters' tests run on (the lock's and the semaphore's), each a Kysely
 * instance with a log of the statements it sent: PostgreSQL (with a listener pool, a session time
 * zone, a default isolation level), MariaDB (mysql2 flags, a session time zone, an isolation
 * level) and SQLite (in memory or a file).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { type CompiledQuery, Kysely, MysqlDialect, PostgresDialect, SqliteDialect } from "kysely";
import mysql from "mysql2";
import pg from "pg";
import { afterAll } from "vitest";

export type AnyKysely = Kysely<any>;

/** A database a configuration runs on: a Kysely instance with a statement log, and clean-up. */
export type OpenedDatabase = {
  kysely: AnyKysely;
  /** Every statement sent, in order (the Kysely `log` hook). */
  log: string[];
  /** A `pg.Pool` for `listener`, when the configuration listens. */
  listener?: pg.Pool;
  close: () => Promise<void>;
};

/** A Kysely instance `make` builds with the given `log` hook, and the statements it logged. */
export function logged(make: (log: (event: { query: CompiledQuery }) => void) => AnyKysely): {
  kysely: AnyKysely;
  log: string[];
} {
  const log: string[] = [];
  const kysely = make((event) => {
    log.push(event.query.sql);
  });
  return { kysely, log };
}

export function openPostgres(
  url: string,
  settings: {
    /** The size of a listener pool to make, when the adapter listens (LISTEN/NOTIFY). */
    listeners?: number;
    /** The session time zone. */
    zone?: string;
    /** The default transaction isolation, as `-c default_transaction_isolation` takes it. */
    isolation?: string;
  } = {},
): OpenedDatabase {
  const { listeners, zone, isolation } = settings;
  const options = [
    ...(zone === undefined ? [] : [`-c TimeZone=${zone}`]),
    ...(isolation === undefined ? [] : [`-c default_transaction_isolation=${isolation}`]),
  ];
  const pool = new pg.Pool({
    connectionString: url,
    max: 20,
    ...(options.length === 0 ? {} : { options: options.join(" ") }),
  });
  const listener =
    listeners === undefined ? undefined : new pg.Pool({ connectionString: url, max: listeners });
  const { kysely, log } = logged(
    (onLog) => new Kysely({ dialect: new PostgresDialect({ pool }), log: onLog }),
  );
  return {
    kysely,
    log,
    ...(listener === undefined ? {} : { listener }),
    close: async () => {
      await kysely.destroy();
      await listener?.end();
    },
  };
}

export function openMysql(
  url: string,
  settings: {
    /** mysql2's connection flags, e.g. `-FOUND_ROWS`. */
    flags?: string[];
    /** The session time zone. */
    zone?: string;
    /** The session's transaction isolation level. */
    isolation?: string;
  } = {},
): OpenedDatabase {
  const { flags = [], zone, isolation } = settings;
  const pool = mysql.createPool({ uri: url, connectionLimit: 20, flags });
  pool.on("connection", (connection) => {
    // Queued on the new connection before any statement of the adapter's.
    if (zone !== undefined) {
      connection.query(`SET time_zone = '${zone}'`);
    }
    if (isolation !== undefined) {
      connection.query(`SET SESSION TRANSACTION ISOLATION LEVEL ${isolation}`);
    }
  });
  const { kysely, log } = logged(
    (onLog) => new Kysely({ dialect: new MysqlDialect({ pool }), log: onLog }),
  );
  return { kysely, log, close: () => kysely.destroy() };
}

export function openSqlite(file: string): OpenedDatabase {
  const { kysely, log } = logged(
    (onLog) =>
      new Kysely({ dialect: new SqliteDialect({ database: new Database(file) }), log: onLog }),
  );
  return { kysely, log, close: () => kysely.destroy() };
}

let sqliteDir: string | undefined;

/** A SQLite file in a directory of this test file's, removed after its tests. */
export function sqliteFile(name: string): string {
  if (sqliteDir === undefined) {
    const dir = mkdtempSync(join(tmpdir(), "hasp-sqlite-"));
    sqliteDir = dir;
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
  }
  return join(sqliteDir, name);
}
