import type { QueryResult } from "kysely";
import { KyselyAdapterCore } from "../../../backends/kysely/kysely-adapter-core.js";
import { MysqlSqlDialect } from "../../../backends/kysely/mysql/mysql-sql-dialect.js";
import { PostgresSqlDialect } from "../../../backends/kysely/postgres/postgres-sql-dialect.js";
import type { ISqlDialect, SqlSchemaOwner } from "../../../backends/kysely/sql-dialect.js";
import { toRemaining, toTtlMs } from "../../../backends/kysely/sql-durations.js";
import { SqliteSqlDialect } from "../../../backends/kysely/sqlite/sqlite-sql-dialect.js";
import { storedKey } from "../../../backends/kysely/stored-key.js";
import { TimeSpan } from "../../../time-span/time-span.js";
import type {
  ILockAdapter,
  LockAcquireResult,
  LockAdapterState,
  LockHandOff,
  LockWaitClaim,
} from "../../contracts/lock-adapter.js";
import { isLockBackendError, LockBackendError } from "../../contracts/lock-errors.js";
import {
  type KyselyLockAdapterSettings,
  type ParsedKyselyLockAdapterSettings,
  parseKyselyLockAdapterSettings,
} from "./kysely-lock-adapter-settings.js";
import type { KyselyLockDialect, KyselyLockStatements } from "./kysely-lock-statements.js";
import { mysqlStatements } from "./mysql/mysql-lock-statements.js";
import {
  type PostgresLockStatements,
  postgresStatements,
} from "./postgres/postgres-lock-statements.js";
import { sqliteStatements } from "./sqlite/sqlite-lock-statements.js";

export { storedKey } from "../../../backends/kysely/stored-key.js";
export type { KyselyLockAdapterSettings } from "./kysely-lock-adapter-settings.js";
export type {
  KyselyLockDialect,
  KyselyLockEntryArgs,
  KyselyLockKeyArgs,
  KyselyLockOwnerArgs,
  KyselyLockStatement,
  KyselyLockStatements,
  KyselyLockTtlArgs,
  KyselyLockWaitArgs,
} from "./kysely-lock-statements.js";
export type { KyselyLockMysqlOptions } from "./mysql/mysql-lock-statements.js";

/** MySQL without RETURNING: acquire tries when the holder keeps leaving before it is read. */
const MAX_HOLDER_READS = 5;

type StateRow = { owner: string | null; token: number | string | bigint; remaining: unknown };

/**
 * Locks in one SQL table through Kysely, on PostgreSQL, MySQL/MariaDB or SQLite. Each operation
 * is one statement on the server's clock: acquire is a single upsert that takes a row only when
 * it is free or its hold expired, and otherwise answers the holder; release, refresh and
 * forceRelease are single conditional `UPDATE`s. A released row keeps its fencing token, and a
 * new token is `max(last + 1, server time in µs)`, so tokens grow across release, expiry,
 * forceRelease and `removeExpired()`.
 *
 * Call `init()` once (or apply the documented migration), and `close()` at shutdown.
 *
 * @example
 * const adapter = new KyselyLockAdapter({ kysely: new Kysely({ dialect }) });
 * await adapter.init();
 */
export class KyselyLockAdapter implements ILockAdapter {
  /** The dialect picked once here, the sweep, the wait queue and what every operation runs on. */
  readonly #core: KyselyAdapterCore<KyselyLockStatements, PostgresLockStatements>;

  /**
   * `true` on PostgreSQL with a `listener`: a wait with a claim takes a free key (or re-takes
   * the claim's own hold) in the same statement that would queue it, so a blocking acquire
   * starts with it.
   */
  readonly waitAcquires: boolean;

  /** `true` on PostgreSQL with a `listener`: a wait keeps its place while the holder refreshes. */
  readonly waitsPastExpiry: boolean;

  /**
   * Present only on PostgreSQL with a `listener`: queues the wait in the lock's row, where the
   * release statement hands the key to the oldest claim (or wakes the oldest wait without one).
   * Without a release signal, the lock waits out the holder's TTL at its interval instead.
   */
  readonly waitForRelease?: (
    key: string,
    maxWait: TimeSpan,
    signal: AbortSignal,
    claim?: LockWaitClaim,
  ) => Promise<LockHandOff | undefined>;

  /**
   * @throws InvalidArgumentError for a bad setting, a Kysely transaction, a dialect that is not
   *   PostgreSQL, MySQL/MariaDB or SQLite, a `listener` on another dialect than PostgreSQL, or
   *   `returning` or `prepared` on another than MySQL/MariaDB.
   */
  constructor(settings: KyselyLockAdapterSettings) {
    const parsed = parseKyselyLockAdapterSettings(settings);
    this.#core = new KyselyAdapterCore({
      owner: OWNER,
      dialect: pickDialect(parsed),
      settings: parsed,
      release: (key, owner) => this.release(key, owner),
    });
    const waitQueue = this.#core.waitQueue;
    if (waitQueue !== undefined) {
      this.waitForRelease = (key, maxWait, signal, claim) =>
        waitQueue.wait(
          key,
          maxWait,
          signal,
          claim === undefined ? undefined : { owner: claim.lockId, ttl: claim.ttl },
        );
    }
    this.waitAcquires = waitQueue !== undefined;
    this.waitsPastExpiry = waitQueue !== undefined;
  }

  /** The dialect the statements are written for. */
  get dialect(): KyselyLockDialect {
    return this.#core.dialect.name;
  }

  /**
   * The SQL this adapter runs, per operation (for review and logs). On PostgreSQL each operation
   * calls a procedure of the table's own, created by `init()`: its SQL is in `createSchema`.
   */
  async statements(): Promise<KyselyLockStatements> {
    return this.#core.dialect.ready();
  }

  /**
   * Creates the table and its index when they do not exist; safe to call from several
   * processes at once. Real failures (no permission, a table of that name with other columns'
   * types) are thrown, never swallowed.
   *
   * @throws LockBackendError (`operation` `"init"`, the driver's error as `cause`) when the
   *   database fails or cannot be reached; on MySQL also when the pool gives no connection in
   *   15 s, the sign of a `mysql2/promise` pool (Kysely's MysqlDialect needs `mysql2`'s).
   */
  init(): Promise<void> {
    return this.#core.init();
  }

  /** Drops the table (for tests and uninstalls): every lock and every token history goes. */
  dropSchema(): Promise<void> {
    return this.#core.dropSchema();
  }

  /**
   * Deletes the rows of keys that have been free or expired for over a minute, so the table
   * does not grow with dead keys. Live holds, and holds that never expire, stay. A key deleted
   * here starts again from the server's clock, which is above every token it issued.
   * @returns how many rows were deleted.
   */
  removeExpired(): Promise<number> {
    return this.#core.removeExpired();
  }

  /**
   * Stops the sweep and the listener. Waits under way end at once, leaving the queue as an
   * aborted wait does (a key handed to one meanwhile is given back), and fail with an error
   * naming close(); a later blocking wait fails at once.
   * The Kysely instance stays open: it is yours (and runs those last statements).
   */
  close(): Promise<void> {
    return this.#core.close();
  }

  /** Closes the adapter (`close()`), for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async acquire(key: string, lockId: string, ttl: TimeSpan | null): Promise<LockAcquireResult> {
    const ttlMs = ttl === null ? null : toTtlMs("KyselyLockAdapter", ttl, "ttl");
    const statements = this.#core.dialect.statements ?? (await this.#core.dialect.ready());
    const args = { key: storedKey(key), owner: lockId, ttl: ttlMs };
    const { acquire } = statements;
    for (let attempt = 1; ; attempt++) {
      const result = await this.#core.send<StateRow>(
        acquire,
        acquire.parameters(args),
        "acquire",
        key,
      );
      if (statements.returning) {
        const row = result.rows[0];
        if (row === undefined || row.owner === null) {
          throw new Error(`the acquire statement of "${key}" answered no holder`);
        }
        return row.owner === lockId
          ? { acquired: true, fencingToken: Number(row.token) }
          : { acquired: false, owner: row.owner, remainingTime: toRemaining(row.remaining) };
      }
      if (result.insertId !== undefined) {
        return { acquired: true, fencingToken: Number(result.insertId) };
      }
      // MySQL: the upsert only says "held"; a read says by whom. A holder that left in between
      // means the key is free again: try again (a handful of times at most under churn).
      const holder = await this.getState(key);
      if (holder !== null || attempt >= MAX_HOLDER_READS) {
        return {
          acquired: false,
          owner: holder?.owner ?? "",
          remainingTime: holder === null ? TimeSpan.fromMilliseconds(0) : holder.remainingTime,
        };
      }
    }
  }

  async release(key: string, lockId: string): Promise<boolean> {
    const { release, affected } =
      this.#core.dialect.statements ?? (await this.#core.dialect.ready());
    const result = await this.#core.send(
      release,
      release.parameters({ key: storedKey(key), owner: lockId }),
      "release",
      key,
    );
    return changedOne(affected, result);
  }

  async forceRelease(key: string): Promise<boolean> {
    const { forceRelease, affected } =
      this.#core.dialect.statements ?? (await this.#core.dialect.ready());
    const result = await this.#core.send(
      forceRelease,
      forceRelease.parameters({ key: storedKey(key) }),
      "forceRelease",
      key,
    );
    return changedOne(affected, result);
  }

  async refresh(key: string, lockId: string, ttl: TimeSpan): Promise<boolean> {
    const ttlMs = toTtlMs("KyselyLockAdapter", ttl, "ttl");
    const { refresh, affected } =
      this.#core.dialect.statements ?? (await this.#core.dialect.ready());
    const result = await this.#core.send(
      refresh,
      refresh.parameters({ key: storedKey(key), owner: lockId, ttl: ttlMs }),
      "refresh",
      key,
    );
    return changedOne(affected, result);
  }

  async getState(key: string): Promise<LockAdapterState | null> {
    const { getState } = this.#core.dialect.statements ?? (await this.#core.dialect.ready());
    const result = await this.#core.send<StateRow>(
      getState,
      getState.parameters({ key: storedKey(key) }),
      "getState",
      key,
    );
    const row = result.rows[0];
    if (row === undefined || row.owner === null) {
      return null;
    }
    return {
      owner: row.owner,
      fencingToken: Number(row.token),
      remainingTime: toRemaining(row.remaining),
    };
  }
}

/** Whose schema the dialects make: their errors name this adapter's `init()`. */
const OWNER: SqlSchemaOwner = {
  adapter: "KyselyLockAdapter",
  docs: "docs/adapters/sql.md (Schema)",
  error: (key, operation, options) => new LockBackendError(key, operation, options),
  isError: isLockBackendError,
};

/** The statements, how they run and the schema of `dialect`, on the settings' table. */
function pickDialect(
  parsed: ParsedKyselyLockAdapterSettings,
): ISqlDialect<KyselyLockStatements> | PostgresSqlDialect<PostgresLockStatements> {
  const { kysely, tableName: table, dialect } = parsed;
  const db = kysely.withoutPlugins();
  const missingSchema = `The table "${table}" is missing`;
  switch (dialect) {
    case "postgres":
      return new PostgresSqlDialect({
        db,
        table,
        owner: OWNER,
        missingSchema: `The table "${table}" or this hasp's procedures for it are missing`,
        statements: postgresStatements(table),
      });
    case "mysql":
      return new MysqlSqlDialect({
        db,
        table,
        owner: OWNER,
        missingSchema,
        statements: (options) => mysqlStatements(table, options),
        options: { returning: parsed.returning, prepared: parsed.prepared },
      });
    case "sqlite":
      return new SqliteSqlDialect(kysely, {
        db,
        table,
        owner: OWNER,
        missingSchema,
        statements: sqliteStatements(table),
      });
  }
}

/** Whether the statement freed or refreshed a hold (how that shows depends on the dialect). */
function changedOne(
  affected: KyselyLockStatements["affected"],
  result: QueryResult<unknown>,
): boolean {
  if (affected === "insert-id") {
    return result.insertId !== undefined;
  }
  if (affected === "token") {
    return (result.rows[0] as { token?: unknown } | undefined)?.token != null;
  }
  return Number(result.numAffectedRows ?? 0) > 0;
}
