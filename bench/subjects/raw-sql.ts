// The SQL baselines: what a careful user writes with the driver alone (pg Pool, mysql2 pool,
// better-sqlite3). One upsert that takes the row only when it is free or expired (server clock),
// one `DELETE ... WHERE k = ? AND owner = ?` to release, and a poll every 10 ms while the key is
// held. Each statement sent counts as one command. PostgreSQL and MySQL send their statements
// the driver's default way (pg: unnamed extended protocol; mysql2: `query`, the text protocol),
// the way Kysely sends them, so the ratio measures hasp and not a protocol choice.
//
// Their semaphore: `limit` slot rows per key in the same table (`<key>#0` … `<key>#<limit-1>`),
// so the primary key itself keeps at most `limit` live slots, whatever the isolation level (a
// counted insert, `INSERT ... WHERE (SELECT count(*) ...) < limit`, is not safe under READ
// COMMITTED: two inserts count the same rows). One `INSERT ... SELECT` takes the first slot
// that has no live row, upserting over an expired one exactly as the lock's upsert does (two
// takers of one slot: one gets it, the other polls again); one `DELETE ... WHERE k IN (the
// slots) AND owner = ?` releases; 10 ms polling.

import { randomUUID } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type Database from "better-sqlite3";
import type mysql from "mysql2";
import type pg from "pg";
import { createMysqlPool, createPgPool, openSqlite, POOL_SIZE, sqliteDirectory } from "../sql.js";
import type { LockClient, SubjectDefinition, SubjectEnvironment } from "../types.js";
import { type PolledSteps, runPolled, tryPolled } from "./polled-section.js";

const POLL_MS = 10;
/** InnoDB rolled the statement back to break a deadlock. */
const ER_LOCK_DEADLOCK = 1213;

function isDeadlock(error: unknown): boolean {
  return (error as { errno?: unknown } | null)?.errno === ER_LOCK_DEADLOCK;
}

/** One connection (or pool) of a raw subject: one statement per call. */
type RawStatements = {
  /** The upsert: whether the row is ours now. */
  take(key: string, owner: string): Promise<boolean>;
  /** The delete: whether our row was there. */
  release(key: string, owner: string): Promise<boolean>;
  /** The semaphore's upsert of the first free slot row: whether one is ours now. */
  takeSlot(key: string, owner: string, limit: number): Promise<boolean>;
  /** The semaphore's delete of our slot row. */
  releaseSlot(key: string, owner: string, limit: number): Promise<unknown>;
};

/** The slot rows' keys of a semaphore key. */
function slotKeys(key: string, limit: number): string[] {
  return Array.from({ length: limit }, (_, n) => `${key}#${n}`);
}

/** `(SELECT 0 AS n UNION ALL SELECT 1 ...)`: the slot numbers, for dialects without a series. */
function slotNumbers(limit: number): string {
  return `(${Array.from({ length: limit }, (_, n) => (n === 0 ? "SELECT 0 AS n" : `SELECT ${n}`)).join(" UNION ALL ")})`;
}

/** A statement per limit, made once. */
function perLimit(make: (limit: number) => string): (limit: number) => string {
  const made = new Map<number, string>();
  return (limit) => {
    let statement = made.get(limit);
    if (statement === undefined) {
      statement = make(limit);
      made.set(limit, statement);
    }
    return statement;
  };
}

function rawClient(name: string, statements: RawStatements, env: SubjectEnvironment): LockClient {
  const take = (key: string, owner: string) => {
    env.counters.attempts += 1;
    env.counters.commands += 1;
    return statements.take(key, owner);
  };
  const release = (key: string, owner: string) => {
    env.counters.commands += 1;
    return statements.release(key, owner);
  };
  /** One holder's attempt at a slot of `key`, and its release (the semaphore scenarios). */
  const slot = (key: string, limit: number): PolledSteps => {
    const full = `${env.prefix}:${key}`;
    const owner = randomUUID();
    return {
      take: () => {
        env.counters.attempts += 1;
        env.counters.commands += 1;
        return statements.takeSlot(full, owner, limit);
      },
      release: () => {
        env.counters.commands += 1;
        return statements.releaseSlot(full, owner, limit);
      },
    };
  };
  return {
    async tryAcquire(key) {
      const full = `${env.prefix}:${key}`;
      const owner = randomUUID();
      return (await take(full, owner)) ? { release: () => release(full, owner) } : null;
    },
    async runExclusive(key, section) {
      const full = `${env.prefix}:${key}`;
      const owner = randomUUID();
      const deadline = performance.now() + env.blockingTimeMs;
      while (!(await take(full, owner))) {
        if (performance.now() >= deadline) {
          throw new Error(`${name}: "${key}" not acquired within ${env.blockingTimeMs} ms`);
        }
        await sleep(POLL_MS);
      }
      try {
        await section();
      } finally {
        await release(full, owner);
      }
    },
    runLimited(key, limit, section) {
      return runPolled(name, key, env, { ...slot(key, limit), section });
    },
    tryLimited: (key, limit) => tryPolled(slot(key, limit)),
  };
}

/** Drops a table, unless `--keep-rows` keeps it for the next run. */
async function dropUnlessKept(env: SubjectEnvironment, drop: () => Promise<unknown>) {
  if (!env.keepTables) {
    await drop();
  }
}

/**
 * Sets a raw subject up: `open` makes one client's connection (`connect` calls it once per
 * client), `create` runs once before the first client, `drop` in `close()` (which keeps the
 * table with `--keep-rows`).
 */
function rawSubject(
  name: string,
  env: SubjectEnvironment,
  table: {
    open(): Promise<{ statements: RawStatements; close(): Promise<void> }>;
    create(): Promise<void>;
    drop(): Promise<void>;
  },
) {
  let created: Promise<void> | undefined;
  const opened: Array<() => Promise<void>> = [];
  return {
    async connect() {
      created ??= table.create();
      await created;
      const { statements, close } = await table.open();
      opened.push(close);
      return rawClient(name, statements, env);
    },
    async close() {
      await Promise.all(opened.map((close) => close()));
      await table.drop();
    },
  };
}

export const rawPostgres: SubjectDefinition = {
  name: "raw-postgres",
  backend: "postgres",
  baseline: true,
  description: `pg Pool (${POOL_SIZE}) alone: INSERT ... ON CONFLICT DO UPDATE ... WHERE expired RETURNING, DELETE, 10 ms polling`,
  semaphore:
    "limit slot rows per key: INSERT ... SELECT the first slot without a live row (generate_series) ON CONFLICT DO UPDATE ... WHERE expired, DELETE, 10 ms polling",
  async setup(env) {
    const url = env.postgresUrl;
    if (url === undefined) {
      throw new Error("raw-postgres needs PostgreSQL");
    }
    const table = `"${env.tablePrefix}_raw"`;
    const acquire = `INSERT INTO ${table} AS l (k, owner, expires_at)
      VALUES ($1, $2, now() + $3::int * interval '1 millisecond')
      ON CONFLICT (k) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
      WHERE l.expires_at < now()
      RETURNING k`;
    const release = `DELETE FROM ${table} WHERE k = $1 AND owner = $2`;
    const takeSlot = `INSERT INTO ${table} AS l (k, owner, expires_at)
      SELECT $1 || '#' || n::text, $2, now() + $3::int * interval '1 millisecond'
      FROM generate_series(0, $4::int - 1) AS n
      WHERE NOT EXISTS (SELECT 1 FROM ${table} WHERE k = $1 || '#' || n::text AND expires_at >= now())
      ORDER BY n LIMIT 1
      ON CONFLICT (k) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
      WHERE l.expires_at < now()
      RETURNING k`;
    const releaseSlot = `DELETE FROM ${table} WHERE k = ANY($1::text[]) AND owner = $2`;
    const admin = createPgPool(url);
    return rawSubject("raw-postgres", env, {
      create: async () => {
        await admin.query(
          `CREATE TABLE IF NOT EXISTS ${table} (k text PRIMARY KEY, owner text NOT NULL, expires_at timestamptz NOT NULL)`,
        );
      },
      drop: async () => {
        try {
          await dropUnlessKept(env, () => admin.query(`DROP TABLE IF EXISTS ${table}`));
        } finally {
          await admin.end();
        }
      },
      open: async () => {
        const pool: pg.Pool = createPgPool(url);
        return {
          statements: {
            take: async (key, owner) =>
              (await pool.query(acquire, [key, owner, env.ttlMs])).rowCount === 1,
            release: async (key, owner) => (await pool.query(release, [key, owner])).rowCount === 1,
            takeSlot: async (key, owner, limit) =>
              (await pool.query(takeSlot, [key, owner, env.ttlMs, limit])).rowCount === 1,
            releaseSlot: (key, owner, limit) =>
              pool.query(releaseSlot, [slotKeys(key, limit), owner]),
          },
          close: () => pool.end(),
        };
      },
    });
  },
};

export const rawMysql: SubjectDefinition = {
  name: "raw-mysql",
  backend: "mysql",
  baseline: true,
  description: `mysql2 pool (${POOL_SIZE}) alone: INSERT ... ON DUPLICATE KEY UPDATE with IF(expired), affectedRows, DELETE, 10 ms polling`,
  semaphore:
    "limit slot rows per key: INSERT ... SELECT the first slot without a live row ON DUPLICATE KEY UPDATE with IF(expired), DELETE, 10 ms polling (a deadlock counts as no slot)",
  async setup(env) {
    const url = env.mysqlUrl;
    if (url === undefined) {
      throw new Error("raw-mysql needs MySQL or MariaDB");
    }
    const table = `\`${env.tablePrefix}_raw\``;
    // Assignments run left to right and see the new owner: expires_at moves only when the row
    // became ours. Without CLIENT_FOUND_ROWS, affectedRows is 1 (inserted), 2 (taken over) or 0
    // (held by another).
    const acquire = `INSERT INTO ${table} (k, owner, expires_at)
      VALUES (?, ?, UTC_TIMESTAMP(3) + INTERVAL ? MICROSECOND)
      ON DUPLICATE KEY UPDATE
        owner = IF(expires_at < UTC_TIMESTAMP(3), VALUES(owner), owner),
        expires_at = IF(owner = VALUES(owner), VALUES(expires_at), expires_at)`;
    const release = `DELETE FROM ${table} WHERE k = ? AND owner = ?`;
    const takeSlot = perLimit(
      (limit) => `INSERT INTO ${table} (k, owner, expires_at)
      SELECT CONCAT(?, '#', s.n), ?, UTC_TIMESTAMP(3) + INTERVAL ? MICROSECOND
      FROM ${slotNumbers(limit)} AS s
      WHERE NOT EXISTS (SELECT 1 FROM ${table} AS l
        WHERE l.k = CONCAT(?, '#', s.n) AND l.expires_at >= UTC_TIMESTAMP(3))
      ORDER BY s.n LIMIT 1
      ON DUPLICATE KEY UPDATE
        owner = IF(expires_at < UTC_TIMESTAMP(3), VALUES(owner), owner),
        expires_at = IF(owner = VALUES(owner), VALUES(expires_at), expires_at)`,
    );
    const releaseSlot = perLimit(
      (limit) =>
        `DELETE FROM ${table} WHERE k IN (${Array(limit).fill("?").join(", ")}) AND owner = ?`,
    );
    const admin = createMysqlPool(url).promise();
    return rawSubject("raw-mysql", env, {
      create: async () => {
        await admin.query(
          `CREATE TABLE IF NOT EXISTS ${table} (k VARCHAR(255) NOT NULL PRIMARY KEY, owner VARCHAR(64) NOT NULL, expires_at DATETIME(3) NOT NULL) ENGINE=InnoDB`,
        );
      },
      drop: async () => {
        try {
          await dropUnlessKept(env, () => admin.query(`DROP TABLE IF EXISTS ${table}`));
        } finally {
          await admin.end();
        }
      },
      open: async () => {
        const pool = createMysqlPool(url, undefined, ["-FOUND_ROWS"]).promise();
        const affected = async (sql: string, values: Array<string | number>) => {
          const [result] = await pool.query<mysql.ResultSetHeader>(sql, values);
          return result.affectedRows;
        };
        return {
          statements: {
            take: async (key, owner) =>
              (await affected(acquire, [key, owner, env.ttlMs * 1000])) > 0,
            release: async (key, owner) => (await affected(release, [key, owner])) === 1,
            // Takers' and releasers' locks on the same rows and gaps can deadlock: InnoDB rolls
            // one back. A taker then polls again like any taker that found no slot; a release
            // is sent again, or its slot would stay taken until it expires.
            takeSlot: (key, owner, limit) =>
              affected(takeSlot(limit), [key, owner, env.ttlMs * 1000, key]).then(
                (rows) => rows > 0,
                (error: unknown) => {
                  if (isDeadlock(error)) {
                    return false;
                  }
                  throw error;
                },
              ),
            releaseSlot: async (key, owner, limit) => {
              for (let attempt = 1; ; attempt += 1) {
                try {
                  return await affected(releaseSlot(limit), [...slotKeys(key, limit), owner]);
                } catch (error) {
                  if (!isDeadlock(error) || attempt === 5) {
                    throw error;
                  }
                  env.counters.commands += 1;
                }
              }
            },
          },
          close: () => pool.end(),
        };
      },
    });
  },
};

export const rawSqlite: SubjectDefinition = {
  name: "raw-sqlite",
  backend: "sqlite",
  baseline: true,
  description:
    "better-sqlite3 alone (WAL, a connection per client): INSERT ... ON CONFLICT DO UPDATE ... WHERE expired RETURNING, DELETE, prepared once, 10 ms polling",
  semaphore:
    "limit slot rows per key: INSERT ... SELECT the first slot without a live row ON CONFLICT DO UPDATE ... WHERE expired RETURNING, DELETE, prepared once, 10 ms polling",
  async setup(env) {
    const directory = sqliteDirectory(env.tablePrefix);
    mkdirSync(directory, { recursive: true });
    const file = join(directory, "locks.db");
    const table = `"${env.tablePrefix}_raw"`;
    const nowMs = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";
    const acquire = `INSERT INTO ${table} (k, owner, expires_at) VALUES (?, ?, ${nowMs} + ?)
      ON CONFLICT (k) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
      WHERE expires_at < ${nowMs}
      RETURNING k`;
    const release = `DELETE FROM ${table} WHERE k = ? AND owner = ?`;
    const takeSlot = perLimit(
      (limit) => `INSERT INTO ${table} (k, owner, expires_at)
      SELECT @key || '#' || s.n, @owner, ${nowMs} + @ttl FROM ${slotNumbers(limit)} AS s
      WHERE NOT EXISTS (SELECT 1 FROM ${table} AS l
        WHERE l.k = @key || '#' || s.n AND l.expires_at >= ${nowMs})
      ORDER BY s.n LIMIT 1
      ON CONFLICT (k) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
      WHERE expires_at < ${nowMs}
      RETURNING k`,
    );
    const releaseSlot = perLimit(
      (limit) =>
        `DELETE FROM ${table} WHERE k IN (${Array(limit).fill("?").join(", ")}) AND owner = ?`,
    );
    const withDatabase = (use: (database: Database.Database) => void) => {
      const database = openSqlite(file);
      try {
        use(database);
      } finally {
        database.close();
      }
    };
    return rawSubject("raw-sqlite", env, {
      create: async () =>
        withDatabase((database) => {
          database.exec(
            `CREATE TABLE IF NOT EXISTS ${table} (k TEXT PRIMARY KEY NOT NULL, owner TEXT NOT NULL, expires_at INTEGER NOT NULL)`,
          );
        }),
      drop: async () => {
        try {
          await dropUnlessKept(env, async () =>
            withDatabase((database) => database.exec(`DROP TABLE IF EXISTS ${table}`)),
          );
        } finally {
          if (!env.keepTables) {
            rmSync(directory, { recursive: true, force: true });
          }
        }
      },
      open: async () => {
        const database = openSqlite(file);
        const take = database.prepare(acquire);
        const remove = database.prepare(release);
        const prepared = new Map<string, Database.Statement>();
        const statement = (sql: string) => {
          let made = prepared.get(sql);
          if (made === undefined) {
            made = database.prepare(sql);
            prepared.set(sql, made);
          }
          return made;
        };
        return {
          statements: {
            take: async (key, owner) => take.get(key, owner, env.ttlMs) !== undefined,
            release: async (key, owner) => remove.run(key, owner).changes === 1,
            takeSlot: async (key, owner, limit) =>
              statement(takeSlot(limit)).get({ key, owner, ttl: env.ttlMs }) !== undefined,
            releaseSlot: async (key, owner, limit) =>
              statement(releaseSlot(limit)).run(...slotKeys(key, limit), owner),
          },
          close: async () => {
            database.close();
          },
        };
      },
    });
  },
};
