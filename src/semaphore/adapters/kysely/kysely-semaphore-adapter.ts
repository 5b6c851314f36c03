import type { QueryResult } from "kysely";
import { KyselyAdapterCore } from "../../../backends/kysely/kysely-adapter-core.js";
import { MysqlSqlDialect } from "../../../backends/kysely/mysql/mysql-sql-dialect.js";
import { PostgresSqlDialect } from "../../../backends/kysely/postgres/postgres-sql-dialect.js";
import type { ISqlDialect, SqlSchemaOwner } from "../../../backends/kysely/sql-dialect.js";
import { toRemaining, toTtlMs } from "../../../backends/kysely/sql-durations.js";
import type { SqlDialectName } from "../../../backends/kysely/sql-statement.js";
import { SqliteSqlDialect } from "../../../backends/kysely/sqlite/sqlite-sql-dialect.js";
import { storedKey } from "../../../backends/kysely/stored-key.js";
import type { TimeSpan } from "../../../time-span/time-span.js";
import type {
  ISemaphoreAdapter,
  SemaphoreAcquireResult,
  SemaphoreAdapterState,
  SemaphoreWaitClaim,
  SemaphoreWaitResult,
} from "../../contracts/semaphore-adapter.js";
import {
  isSemaphoreBackendError,
  SemaphoreBackendError,
} from "../../contracts/semaphore-errors.js";
import {
  type KyselySemaphoreAdapterSettings,
  type ParsedKyselySemaphoreAdapterSettings,
  parseKyselySemaphoreAdapterSettings,
} from "./kysely-semaphore-adapter-settings.js";
import { type KyselySemaphoreStatements, slotsTable } from "./kysely-semaphore-statements.js";
import { mysqlSemaphoreStatements } from "./mysql/mysql-semaphore-statements.js";
import {
  type PostgresSemaphoreStatements,
  postgresSemaphoreStatements,
} from "./postgres/postgres-semaphore-statements.js";
import { sqliteSemaphoreStatements } from "./sqlite/sqlite-semaphore-statements.js";

export type { KyselySemaphoreAdapterSettings } from "./kysely-semaphore-adapter-settings.js";
export type {
  KyselySemaphoreAcquireArgs,
  KyselySemaphoreKeyArgs,
  KyselySemaphoreRefreshArgs,
  KyselySemaphoreSlotArgs,
  KyselySemaphoreStatements,
} from "./kysely-semaphore-statements.js";

import { badLimit } from "../../../primitive/slot-limit.js";

const ADAPTER = "KyselySemaphoreAdapter";

type AcquireRow = { granted: unknown; lim: unknown; taken: unknown; remaining: unknown };
type StateRow = { taken: unknown; lim: unknown; token: unknown; remaining: unknown };

/**
 * Semaphores in two SQL tables through Kysely, on PostgreSQL, MySQL/MariaDB or SQLite: a row per
 * key (its fencing counter) and a row per slot. Each operation is one statement on the server's
 * clock: acquire locks the key's row, drops its expired slots and takes a slot when the limit
 * rule allows it (a procedure's CALL on PostgreSQL and MySQL, an upsert with triggers on SQLite);
 * release, refresh and forceReleaseAll are single statements on the slots (release and
 * forceReleaseAll are procedures on PostgreSQL, which also serve the queue). A key's row keeps its
 * last token when its slots go, and a new token is `max(last + 1, server time in µs)`, so tokens
 * grow across release, expiry, forceReleaseAll and `removeExpired()`. On PostgreSQL with a
 * `listener`, a release hands the freed slot to the oldest waiting claim; elsewhere waits poll.
 *
 * Call `init()` once (or apply the documented migration), and `close()` at shutdown.
 *
 * @example
 * const adapter = new KyselySemaphoreAdapter({ kysely: new Kysely({ dialect }) });
 * await adapter.init();
 */
export class KyselySemaphoreAdapter implements ISemaphoreAdapter {
  /** The dialect picked once here, the sweep, the wait queue and what every operation runs on. */
  readonly #core: KyselyAdapterCore<KyselySemaphoreStatements, PostgresSemaphoreStatements>;

  /**
   * `true` on PostgreSQL with a `listener`: a wait with a claim takes a free slot (or re-takes
   * the claim's own) in the same statement that would queue it.
   */
  readonly waitAcquires: boolean;

  /** `true` on PostgreSQL with a `listener`: a slot's expiry serves the queue (a wait's check). */
  readonly waitsPastExpiry: boolean;

  /**
   * Present only on PostgreSQL with a `listener`: queues the wait in the key's row, where a
   * release (or forceReleaseAll, or an acquire or a wait's check finding slots expired) hands
   * freed slots to the oldest claims the limit rule admits, in the same statement. Without a
   * release signal, a blocking acquire polls at its interval.
   */
  readonly waitForRelease?: (
    key: string,
    maxWait: TimeSpan,
    signal: AbortSignal,
    claim?: SemaphoreWaitClaim,
  ) => Promise<SemaphoreWaitResult>;

  /**
   * @throws InvalidArgumentError for a bad setting, a Kysely transaction, a dialect that is not
   *   PostgreSQL, MySQL/MariaDB or SQLite, or a `listener` on another dialect than PostgreSQL.
   */
  constructor(settings: KyselySemaphoreAdapterSettings) {
    const parsed = parseKyselySemaphoreAdapterSettings(settings);
    this.#core = new KyselyAdapterCore({
      owner: OWNER,
      dialect: pickDialect(parsed),
      settings: parsed,
      release: (key, slotId) => this.release(key, slotId),
    });
    const waitQueue = this.#core.waitQueue;
    if (waitQueue !== undefined) {
      this.waitForRelease = (key, maxWait, signal, claim) => {
        const bad = claim === undefined ? undefined : badLimit(ADAPTER, claim.limit);
        if (bad !== undefined) {
          return Promise.reject(bad);
        }
        return waitQueue.wait(
          key,
          maxWait,
          signal,
          claim === undefined
            ? undefined
            : { owner: claim.slotId, ttl: claim.ttl, limit: claim.limit },
        );
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
   * The SQL this adapter runs, per operation (for review and logs). On PostgreSQL and MySQL,
   * acquire calls a procedure of the table's own, created by `init()`: its SQL is in
   * `createSchema`.
   */
  async statements(): Promise<KyselySemaphoreStatements> {
    return this.#core.dialect.ready();
  }

  /**
   * Creates the tables (and the acquire procedure or triggers) when they do not exist; safe to
   * call from several processes at once. Real failures are thrown, never swallowed.
   *
   * @throws SemaphoreBackendError (`operation` `"init"`, the driver's error as `cause`) when the
   *   database fails or cannot be reached.
   */
  init(): Promise<void> {
    return this.#core.init();
  }

  /** Drops the tables (for tests and uninstalls): every slot and every token history goes. */
  dropSchema(): Promise<void> {
    return this.#core.dropSchema();
  }

  /**
   * Deletes the rows of keys without a live slot that issued no token for over a minute, with
   * their slots, so the tables do not grow with dead keys (each acquire already drops its key's
   * expired slots). A key deleted here starts again from the server's clock, above every token
   * it issued.
   * @returns how many keys were deleted.
   */
  removeExpired(): Promise<number> {
    return this.#core.removeExpired();
  }

  /**
   * Stops the sweep and the listener. Waits under way end at once, leaving the queue as an
   * aborted wait does (a slot handed to one meanwhile is given back), and fail with an error
   * naming close(); a later blocking wait fails at once. The Kysely instance stays open: it is
   * yours.
   */
  close(): Promise<void> {
    return this.#core.close();
  }

  /** Closes the adapter (`close()`), for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async acquire(
    key: string,
    slotId: string,
    limit: number,
    ttl: TimeSpan | null,
  ): Promise<SemaphoreAcquireResult> {
    const bad = badLimit(ADAPTER, limit);
    if (bad !== undefined) {
      throw bad;
    }
    const ttlMs = ttl === null ? null : toTtlMs(ADAPTER, ttl, "ttl");
    const { acquire } = this.#core.dialect.statements ?? (await this.#core.dialect.ready());
    const result = await this.#core.send<AcquireRow>(
      acquire,
      acquire.parameters({ key: storedKey(key), slot: slotId, limit, ttl: ttlMs }),
      "acquire",
      key,
    );
    const row = firstRow(result);
    if (row === undefined) {
      throw new Error(`the acquire statement of "${key}" answered no row`);
    }
    if (row.granted !== null && row.granted !== undefined) {
      return { acquired: true, fencingToken: Number(row.granted) };
    }
    return {
      acquired: false,
      limit: Number(row.lim),
      acquiredSlotsCount: Number(row.taken),
      remainingTime: toRemaining(row.remaining),
    };
  }

  async release(key: string, slotId: string): Promise<boolean> {
    const { release, freed: released } =
      this.#core.dialect.statements ?? (await this.#core.dialect.ready());
    const result = await this.#core.send(
      release,
      release.parameters({ key: storedKey(key), slot: slotId }),
      "release",
      key,
    );
    return freed(released, result);
  }

  async forceReleaseAll(key: string): Promise<boolean> {
    const { forceReleaseAll, freed: released } =
      this.#core.dialect.statements ?? (await this.#core.dialect.ready());
    const result = await this.#core.send(
      forceReleaseAll,
      forceReleaseAll.parameters({ key: storedKey(key) }),
      "forceReleaseAll",
      key,
    );
    return freed(released, result);
  }

  async refresh(key: string, slotId: string, ttl: TimeSpan): Promise<boolean> {
    const ttlMs = toTtlMs(ADAPTER, ttl, "ttl");
    const { refresh, refreshed } =
      this.#core.dialect.statements ?? (await this.#core.dialect.ready());
    const result = await this.#core.send(
      refresh,
      refresh.parameters({ key: storedKey(key), slot: slotId, ttl: ttlMs }),
      "refresh",
      key,
    );
    return refreshed === "insert-id"
      ? result.insertId !== undefined
      : Number(result.numAffectedRows ?? 0) > 0;
  }

  async getState(key: string, slotId: string): Promise<SemaphoreAdapterState | null> {
    const { getState } = this.#core.dialect.statements ?? (await this.#core.dialect.ready());
    const result = await this.#core.send<StateRow>(
      getState,
      getState.parameters({ key: storedKey(key), slot: slotId }),
      "getState",
      key,
    );
    const row = result.rows[0];
    const taken = Number(row?.taken ?? 0);
    if (row === undefined || taken === 0) {
      return null;
    }
    const remaining = Number(row.remaining);
    return {
      limit: Number(row.lim),
      acquiredSlotsCount: taken,
      slot:
        row.token === null || row.token === undefined
          ? null
          : {
              fencingToken: Number(row.token),
              remainingTime: remaining < 0 ? null : toRemaining(remaining),
            },
    };
  }
}

/** Whose schema the dialects make: their errors name this adapter's `init()`. */
const OWNER: SqlSchemaOwner = {
  adapter: ADAPTER,
  docs: "docs/semaphore.md (Per backend: SQL through Kysely)",
  error: (key, operation, options) => new SemaphoreBackendError(key, operation, options),
  isError: isSemaphoreBackendError,
};

/** The statements, how they run and the schema of `dialect`, on the settings' tables. */
function pickDialect(
  parsed: ParsedKyselySemaphoreAdapterSettings,
): ISqlDialect<KyselySemaphoreStatements> | PostgresSqlDialect<PostgresSemaphoreStatements> {
  const { kysely, tableName: table, dialect } = parsed;
  const db = kysely.withoutPlugins();
  const tables = `The table "${table}" or "${slotsTable(table)}"`;
  const base = { db, table, owner: OWNER, missingSchema: `${tables} is missing` };
  // PostgreSQL and MySQL also run procedures of the tables' own.
  const withProcedures = {
    ...base,
    missingSchema: `The table "${table}", "${slotsTable(table)}" or this hasp's procedures for them are missing`,
  };
  switch (dialect) {
    case "postgres":
      return new PostgresSqlDialect({
        ...withProcedures,
        statements: postgresSemaphoreStatements(table),
      });
    case "mysql":
      return new MysqlSqlDialect({
        ...withProcedures,
        statements: (options) => mysqlSemaphoreStatements(table, options),
        options: {},
      });
    case "sqlite":
      return new SqliteSqlDialect(kysely, {
        ...base,
        statements: sqliteSemaphoreStatements(table),
      });
  }
}

/** Whether release or forceReleaseAll freed a slot (how that shows depends on the dialect). */
function freed(how: KyselySemaphoreStatements["freed"], result: QueryResult<unknown>): boolean {
  if (how === "row") {
    return Number((result.rows[0] as { freed?: unknown } | undefined)?.freed ?? 0) > 0;
  }
  return Number(result.numAffectedRows ?? 0) > 0;
}

/** The answer's row; a MySQL CALL answers its result sets, the row in the first. */
function firstRow<TRow>(result: QueryResult<TRow>): TRow | undefined {
  const first: unknown = result.rows[0];
  return (Array.isArray(first) ? first[0] : first) as TRow | undefined;
}
