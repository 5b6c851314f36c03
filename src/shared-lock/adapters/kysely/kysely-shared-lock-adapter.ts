import type { QueryResult } from "kysely";
import { KyselyAdapterCore } from "../../../backends/kysely/kysely-adapter-core.js";
import { MysqlSqlDialect } from "../../../backends/kysely/mysql/mysql-sql-dialect.js";
import { PostgresSqlDialect } from "../../../backends/kysely/postgres/postgres-sql-dialect.js";
import type { ISqlDialect, SqlSchemaOwner } from "../../../backends/kysely/sql-dialect.js";
import { toRemaining, toTtlMs } from "../../../backends/kysely/sql-durations.js";
import type { SqlDialectName } from "../../../backends/kysely/sql-statement.js";
import { SqliteSqlDialect } from "../../../backends/kysely/sqlite/sqlite-sql-dialect.js";
import { storedKey } from "../../../backends/kysely/stored-key.js";
import { badLimit } from "../../../primitive/slot-limit.js";
import type { TimeSpan } from "../../../time-span/time-span.js";
import type {
  ISharedLockAdapter,
  SharedLockAdapterState,
  SharedLockReaderAcquireResult,
  SharedLockWaitClaim,
  SharedLockWaitResult,
  SharedLockWriterAcquireResult,
} from "../../contracts/shared-lock-adapter.js";
import {
  isSharedLockBackendError,
  SharedLockBackendError,
} from "../../contracts/shared-lock-errors.js";
import {
  type KyselySharedLockAdapterSettings,
  type ParsedKyselySharedLockAdapterSettings,
  parseKyselySharedLockAdapterSettings,
} from "./kysely-shared-lock-adapter-settings.js";
import {
  type KyselySharedLockFreed,
  type KyselySharedLockStatements,
  readersTable,
} from "./kysely-shared-lock-statements.js";
import { mysqlSharedLockStatements } from "./mysql/mysql-shared-lock-statements.js";
import {
  type PostgresSharedLockStatements,
  postgresSharedLockStatements,
} from "./postgres/postgres-shared-lock-statements.js";
import { sqliteSharedLockStatements } from "./sqlite/sqlite-shared-lock-statements.js";

export type { KyselySharedLockAdapterSettings } from "./kysely-shared-lock-adapter-settings.js";
export type {
  KyselySharedLockFreed,
  KyselySharedLockKeyArgs,
  KyselySharedLockOwnerArgs,
  KyselySharedLockReaderArgs,
  KyselySharedLockRefreshArgs,
  KyselySharedLockRefreshed,
  KyselySharedLockStatements,
  KyselySharedLockWriterArgs,
} from "./kysely-shared-lock-statements.js";

const ADAPTER = "KyselySharedLockAdapter";

type AcquireRow = {
  granted: unknown;
  blocked: unknown;
  owner: unknown;
  lim?: unknown;
  taken: unknown;
  remaining: unknown;
};
type StateRow = {
  writer: unknown;
  wtoken: unknown;
  wremaining: unknown;
  taken: unknown;
  lim: unknown;
  token: unknown;
  remaining: unknown;
  waiting: unknown;
};

/**
 * Shared locks (reader-writer locks) in two SQL tables through Kysely, on PostgreSQL,
 * MySQL/MariaDB or SQLite: a row per key (its fencing counter, its writer, a waiting writer's intent)
 * and a row per reader slot. Each operation is one statement on the server's clock, which drops
 * the key's expired readers and writer before it decides, so a crashed reader keeps a writer out
 * no longer than its TTL. One counter per key issues both sides' tokens, each
 * `max(last + 1, server time in µs)`, so a writer's token is above every reader's before it.
 * Once a writer waits, no new reader enters: on PostgreSQL with a `listener` the key's waits
 * queue in its row and each release serves them in arrival order (the last reader out hands the
 * key to the waiting writer; a writer's release admits the readers queued before the next
 * writer, together); elsewhere a blocking writer records its intent in the key's row.
 *
 * Call `init()` once, and `close()` at shutdown.
 *
 * @example
 * const adapter = new KyselySharedLockAdapter({ kysely: new Kysely({ dialect }) });
 * await adapter.init();
 */
export class KyselySharedLockAdapter implements ISharedLockAdapter {
  /** The dialect picked once here, the sweep, the wait queue and what every operation runs on. */
  readonly #core: KyselyAdapterCore<KyselySharedLockStatements, PostgresSharedLockStatements>;

  /** `true` on PostgreSQL with a `listener`: a wait takes what its claim asks for when it can. */
  readonly waitAcquires: boolean;

  /** `true` on PostgreSQL with a `listener`: a holder's expiry serves the queue (a wait's check). */
  readonly waitsPastExpiry: boolean;

  /**
   * Present only on PostgreSQL with a `listener`: queues the claim in the key's row, where a
   * release (or a force release, or an operation finding holders expired) serves the queue in
   * arrival order in the same statement. Without it, blocking acquires poll at their interval
   * and writers record their intent.
   */
  readonly waitForRelease?: (
    key: string,
    maxWait: TimeSpan,
    signal: AbortSignal,
    claim: SharedLockWaitClaim,
  ) => Promise<SharedLockWaitResult>;

  /**
   * @throws InvalidArgumentError for a bad setting, a Kysely transaction, a dialect that is not
   *   PostgreSQL, MySQL/MariaDB or SQLite, or a `listener` on another dialect than PostgreSQL.
   */
  constructor(settings: KyselySharedLockAdapterSettings) {
    const parsed = parseKyselySharedLockAdapterSettings(settings);
    this.#core = new KyselyAdapterCore({
      owner: OWNER,
      dialect: pickDialect(parsed),
      settings: parsed,
      // A hold handed to a wait that has gone: one lock id holds one side at a time.
      release: async (key, lockId) =>
        (await this.releaseWriter(key, lockId)) || this.releaseReader(key, lockId),
    });
    const waitQueue = this.#core.waitQueue;
    if (waitQueue !== undefined) {
      this.waitForRelease = (key, maxWait, signal, claim) => {
        if (claim.side === "reader") {
          const bad = badLimit(ADAPTER, claim.limit);
          if (bad !== undefined) {
            return Promise.reject(bad);
          }
          return waitQueue.wait(key, maxWait, signal, {
            owner: claim.lockId,
            ttl: claim.ttl,
            limit: claim.limit,
          });
        }
        return waitQueue.wait(key, maxWait, signal, { owner: claim.lockId, ttl: claim.ttl });
      };
    }
    this.waitAcquires = waitQueue !== undefined;
    this.waitsPastExpiry = waitQueue !== undefined;
  }

  /** The dialect the statements are written for. */
  get dialect(): SqlDialectName {
    return this.#core.dialect.name;
  }

  /**
   * The SQL this adapter runs, per operation (for review and logs). On PostgreSQL, most
   * operations call a procedure of the table's own, created by `init()`: its SQL is in
   * `createSchema`.
   */
  async statements(): Promise<KyselySharedLockStatements> {
    return this.#core.dialect.ready();
  }

  /**
   * Creates the tables (and the procedures) when they do not exist; safe to call from several
   * processes at once. Real failures are thrown, never swallowed.
   *
   * @throws SharedLockBackendError (`operation` `"init"`, the driver's error as `cause`) when
   *   the database fails or cannot be reached.
   */
  init(): Promise<void> {
    return this.#core.init();
  }

  /** Drops the tables (for tests and uninstalls): every hold and every token history goes. */
  dropSchema(): Promise<void> {
    return this.#core.dropSchema();
  }

  /**
   * Deletes the rows of keys with no live writer, reader, intent or queued wait that issued no
   * token for over a minute, with their reader slots. A key deleted here starts again from the
   * server's clock, above every token it issued.
   * @returns how many keys were deleted.
   */
  removeExpired(): Promise<number> {
    return this.#core.removeExpired();
  }

  /**
   * Stops the sweep and the listener. Waits under way end at once, leaving the queue as an
   * aborted wait does (a hold handed to one meanwhile is given back), and fail with an error
   * naming close(). The Kysely instance stays open: it is yours.
   */
  close(): Promise<void> {
    return this.#core.close();
  }

  /** Closes the adapter (`close()`), for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async acquireWriter(
    key: string,
    lockId: string,
    ttl: TimeSpan | null,
    intent: TimeSpan | null,
  ): Promise<SharedLockWriterAcquireResult> {
    const ttlMs = ttl === null ? null : toTtlMs(ADAPTER, ttl, "ttl");
    const intentMs = intent === null ? null : toTtlMs(ADAPTER, intent, "intent");
    const { acquireWriter } = await this.#statements();
    const row = firstRow(
      await this.#core.send<AcquireRow>(
        acquireWriter,
        acquireWriter.parameters({
          key: storedKey(key),
          owner: lockId,
          ttl: ttlMs,
          intent: intentMs,
        }),
        "acquireWriter",
        key,
      ),
      key,
    );
    if (row.granted !== null && row.granted !== undefined) {
      return { acquired: true, fencingToken: Number(row.granted) };
    }
    const remainingTime = toRemaining(row.remaining);
    switch (row.blocked) {
      case "writer":
        return { acquired: false, blockedBy: "writer", owner: String(row.owner), remainingTime };
      case "readers":
        return {
          acquired: false,
          blockedBy: "readers",
          acquiredSlotsCount: Number(row.taken),
          remainingTime,
        };
      default:
        return { acquired: false, blockedBy: "waiters", remainingTime };
    }
  }

  async acquireReader(
    key: string,
    lockId: string,
    limit: number,
    ttl: TimeSpan | null,
  ): Promise<SharedLockReaderAcquireResult> {
    const bad = badLimit(ADAPTER, limit);
    if (bad !== undefined) {
      throw bad;
    }
    const ttlMs = ttl === null ? null : toTtlMs(ADAPTER, ttl, "ttl");
    const { acquireReader } = await this.#statements();
    const row = firstRow(
      await this.#core.send<AcquireRow>(
        acquireReader,
        acquireReader.parameters({ key: storedKey(key), owner: lockId, limit, ttl: ttlMs }),
        "acquireReader",
        key,
      ),
      key,
    );
    if (row.granted !== null && row.granted !== undefined) {
      return { acquired: true, fencingToken: Number(row.granted) };
    }
    const remainingTime = toRemaining(row.remaining);
    const acquiredSlotsCount = Number(row.taken ?? 0);
    switch (row.blocked) {
      case "writer":
        return { acquired: false, blockedBy: "writer", owner: String(row.owner), remainingTime };
      case "waiters":
        return { acquired: false, blockedBy: "waiters", acquiredSlotsCount, remainingTime };
      default:
        return {
          acquired: false,
          blockedBy: "limit",
          limit: Number(row.lim),
          acquiredSlotsCount,
          remainingTime,
        };
    }
  }

  async releaseWriter(key: string, lockId: string): Promise<boolean> {
    const statements = await this.#statements();
    return this.#free(statements, "releaseWriter", { key: storedKey(key), owner: lockId }, key);
  }

  async forceReleaseWriter(key: string): Promise<boolean> {
    const statements = await this.#statements();
    return this.#free(statements, "forceReleaseWriter", { key: storedKey(key) }, key);
  }

  async releaseReader(key: string, lockId: string): Promise<boolean> {
    const statements = await this.#statements();
    return this.#free(statements, "releaseReader", { key: storedKey(key), owner: lockId }, key);
  }

  async forceReleaseAllReaders(key: string): Promise<boolean> {
    const statements = await this.#statements();
    return this.#free(statements, "forceReleaseAllReaders", { key: storedKey(key) }, key);
  }

  async forceRelease(key: string): Promise<boolean> {
    const statements = await this.#statements();
    return this.#free(statements, "forceRelease", { key: storedKey(key) }, key);
  }

  refreshWriter(key: string, lockId: string, ttl: TimeSpan): Promise<boolean> {
    return this.#refresh("refreshWriter", key, lockId, ttl);
  }

  refreshReader(key: string, lockId: string, ttl: TimeSpan): Promise<boolean> {
    return this.#refresh("refreshReader", key, lockId, ttl);
  }

  async getState(key: string, lockId: string): Promise<SharedLockAdapterState | null> {
    const { getState } = await this.#statements();
    const result = await this.#core.send<StateRow>(
      getState,
      getState.parameters({ key: storedKey(key), owner: lockId }),
      "getState",
      key,
    );
    const row = result.rows[0];
    if (row === undefined) {
      return null;
    }
    if (row.writer !== null && row.writer !== undefined) {
      const remaining = Number(row.wremaining);
      return {
        heldBy: "writer",
        owner: String(row.writer),
        remainingTime: remaining < 0 ? null : toRemaining(remaining),
        fencingToken: Number(row.wtoken),
      };
    }
    const taken = Number(row.taken ?? 0);
    if (taken === 0) {
      return null;
    }
    const remaining = Number(row.remaining);
    return {
      heldBy: "readers",
      limit: Number(row.lim),
      acquiredSlotsCount: taken,
      slot:
        row.token === null || row.token === undefined
          ? null
          : {
              fencingToken: Number(row.token),
              remainingTime: remaining < 0 ? null : toRemaining(remaining),
            },
      writerWaiting: Number(row.waiting ?? 0) > 0,
    };
  }

  /** The dialect's statements, ready (the first call may wait for MariaDB's detection). */
  #statements(): KyselySharedLockStatements | Promise<KyselySharedLockStatements> {
    return this.#core.dialect.statements ?? this.#core.dialect.ready();
  }

  async #free(
    statements: KyselySharedLockStatements,
    operation: keyof KyselySharedLockStatements["freed"],
    args: { key: string; owner?: string },
    key: string,
  ): Promise<boolean> {
    const free = statements[operation] as KyselySharedLockStatements["releaseWriter"];
    const result = await this.#core.send(
      free,
      free.parameters(args as { key: string; owner: string }),
      operation,
      key,
    );
    return freed(statements.freed[operation], result);
  }

  async #refresh(
    operation: "refreshWriter" | "refreshReader",
    key: string,
    lockId: string,
    ttl: TimeSpan,
  ): Promise<boolean> {
    const ttlMs = toTtlMs(ADAPTER, ttl, "ttl");
    const statements = await this.#statements();
    const refresh = statements[operation];
    const result = await this.#core.send(
      refresh,
      refresh.parameters({ key: storedKey(key), owner: lockId, ttl: ttlMs }),
      operation,
      key,
    );
    return statements.refreshed === "insert-id"
      ? result.insertId !== undefined
      : Number(result.numAffectedRows ?? 0) > 0;
  }
}

/** Whose schema the dialects make: their errors name this adapter's `init()`. */
const OWNER: SqlSchemaOwner = {
  adapter: ADAPTER,
  docs: "docs/shared-lock.md (Per backend: SQL through Kysely)",
  error: (key, operation, options) => new SharedLockBackendError(key, operation, options),
  isError: isSharedLockBackendError,
};

/** The statements, how they run and the schema of `dialect`, on the settings' tables. */
function pickDialect(
  parsed: ParsedKyselySharedLockAdapterSettings,
): ISqlDialect<KyselySharedLockStatements> | PostgresSqlDialect<PostgresSharedLockStatements> {
  const { kysely, tableName: table, dialect } = parsed;
  const db = kysely.withoutPlugins();
  const missingSchema = `The table "${table}", "${readersTable(table)}" or this hasp's procedures for them are missing`;
  switch (dialect) {
    case "postgres":
      return new PostgresSqlDialect({
        db,
        table,
        owner: OWNER,
        missingSchema,
        statements: postgresSharedLockStatements(table),
      });
    case "mysql":
      return new MysqlSqlDialect({
        db,
        table,
        owner: OWNER,
        missingSchema,
        statements: (options) => mysqlSharedLockStatements(table, options),
        options: {},
      });
    case "sqlite":
      return new SqliteSqlDialect(kysely, {
        db,
        table,
        owner: OWNER,
        missingSchema: `The table "${table}" or "${readersTable(table)}" is missing`,
        statements: sqliteSharedLockStatements(table),
      });
  }
}

/** Whether a release freed something (how that shows depends on the dialect). */
function freed(how: KyselySharedLockFreed, result: QueryResult<unknown>): boolean {
  if (how === "row") {
    const first: unknown = result.rows[0];
    const row = (Array.isArray(first) ? first[0] : first) as { freed?: unknown } | undefined;
    return Number(row?.freed ?? 0) > 0;
  }
  return Number(result.numAffectedRows ?? 0) > 0;
}

/** The answer's row; a MySQL CALL answers its result sets, the row in the first. */
function firstRow<TRow>(result: QueryResult<TRow>, key: string): TRow {
  const first: unknown = result.rows[0];
  const row = (Array.isArray(first) ? first[0] : first) as TRow | undefined;
  if (row === undefined) {
    throw new Error(`the statement of "${key}" answered no row`);
  }
  return row;
}
