import { createHash, randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CompiledQuery,
  type DatabaseConnection,
  type Kysely,
  MysqlAdapter,
  PostgresAdapter,
  type QueryExecutor,
  type QueryResult,
  SqliteAdapter,
} from "kysely";
import * as v from "valibot";
import { InvalidArgumentError } from "../../../errors/invalid-argument-error.js";
import { mustBe, parseSettings, settingsObject } from "../../../settings/parse-settings.js";
import { type ITimeSpan, TimeSpan } from "../../../time-span/time-span.js";
import {
  durationTooLong,
  positiveTimeSpanSchema,
  storeMilliseconds,
} from "../../../time-span/time-span-schema.js";
import { delay, MAX_TIMER_MS } from "../../../timers/timers.js";
import type {
  ILockAdapter,
  LockAcquireResult,
  LockAdapterState,
  LockHandOff,
  LockWaitClaim,
} from "../../contracts/lock-adapter.js";
import { isLockBackendError, LockBackendError } from "../../contracts/lock-errors.js";
import {
  type LeaveMode,
  QueuedWaits,
  type QueueEntry,
  type WaitCheck,
  type WaitQueue,
} from "../queued-wait.js";
import {
  DEAD_ROW_GRACE_MS,
  KEY_MAX_BYTES,
  type KyselyLockDialect,
  type KyselyLockMysqlOptions,
  type KyselyLockStatement,
  type KyselyLockStatements,
  mysqlStatements,
  postgresStatements,
  sqliteStatements,
} from "./kysely-lock-statements.js";
import { type PgListenConnection, PostgresInbox } from "./postgres-inbox.js";

export type {
  KyselyLockDialect,
  KyselyLockEntryArgs,
  KyselyLockKeyArgs,
  KyselyLockMysqlOptions,
  KyselyLockOwnerArgs,
  KyselyLockStatement,
  KyselyLockStatements,
  KyselyLockTtlArgs,
  KyselyLockWaitArgs,
} from "./kysely-lock-statements.js";
export type {
  PgListenClient,
  PgListenConnection,
  PgListenPool,
} from "./postgres-inbox.js";

/** The settings of {@link KyselyLockAdapter}; only `kysely` is required. */
export type KyselyLockAdapterSettings = {
  /**
   * A Kysely instance on PostgreSQL, MySQL/MariaDB or SQLite. Not a transaction: every statement
   * must commit on its own, or other processes would not see a hold until the caller commits.
   * The adapter never destroys it: it is yours.
   */
  // biome-ignore lint/suspicious/noExplicitAny: the adapter brings its own table, not the caller's schema
  kysely: Kysely<any>;
  /**
   * The table, created by `init()`: letters, digits and `_`, starting with a letter or `_`, at
   * most 48 characters.
   * @default "hasp_locks"
   */
  tableName?: string;
  /**
   * The SQL dialect. Detected from Kysely's built-in dialect adapters (and dialects built on
   * them); set it for a third-party dialect that speaks one of these.
   * @default detected
   */
  dialect?: KyselyLockDialect;
  /**
   * MySQL family only: whether the server answers `INSERT ... ON DUPLICATE KEY UPDATE ...
   * RETURNING` (MariaDB 10.5+). Without it (MySQL), an acquire that finds the key held needs a
   * second statement, a read, to learn the holder.
   * @default detected with `SELECT VERSION()` on first use
   */
  returning?: boolean;
  /**
   * MySQL family only: whether acquire, release, refresh, forceRelease and getState run as
   * prepared statements: each is prepared once per connection (`PREPARE`), then every call is
   * an `EXECUTE ... USING` its values, still one statement, which the server does not parse
   * again. MariaDB only (10.2+): MySQL's `EXECUTE` takes user variables only, a second
   * statement. Turn it off behind a proxy that does not keep a session's prepared statements.
   * @default on for MariaDB (detected, or implied by `returning: true`), off for MySQL
   */
  prepared?: boolean;
  /**
   * PostgreSQL only: a connection for `LISTEN` (a connected `pg.Client`, or a `pg.Pool` from
   * which one client is checked out and kept), so that blocking acquires queue in the lock's
   * row and the release statement itself hands the key to the oldest (first come, first
   * served; no polling, no retry), telling it with `pg_notify` on a channel of this adapter's
   * own. Give it a connection of its own: a listening connection cannot serve queries through
   * a pooler in transaction mode. Without it, waiting is bounded by the holder's TTL and the
   * interval.
   *
   * It stays yours: end it as you would without hasp. A pool's `end()` is not held up by the
   * client the adapter checked out (given back within 100 ms of `end()`, pg.Pool's `ending`
   * flag telling), and a `pg.Client` you end is let go; `close()` is not needed first. Blocking
   * acquires under way then stop hearing releases, and later ones fail.
   * @default none
   */
  listener?: PgListenConnection;
  /**
   * Runs `removeExpired()` this often (a timer that does not keep the process alive), until
   * `close()`.
   * @default off
   */
  sweepInterval?: ITimeSpan;
  /**
   * Told about a periodic sweep that failed (the next one still runs).
   * @default console.warn
   */
  onSweepError?: (error: unknown) => void;
};

const settingsSchema = settingsObject({
  kysely: v.custom<Kysely<unknown>>(isKysely, mustBe("a Kysely instance")),
  tableName: v.optional(
    v.pipe(
      v.string(mustBe("a string")),
      v.regex(
        /^[A-Za-z_][A-Za-z0-9_]{0,47}$/,
        "must be letters, digits and _, starting with a letter or _, at most 48 characters",
      ),
    ),
    "hasp_locks",
  ),
  dialect: v.optional(
    v.picklist(["postgres", "mysql", "sqlite"], mustBe('"postgres", "mysql" or "sqlite"')),
  ),
  returning: v.optional(v.boolean(mustBe("a boolean"))),
  prepared: v.optional(v.boolean(mustBe("a boolean"))),
  listener: v.optional(v.custom<PgListenConnection>(isPgConnection, mustBe("a pg Client or Pool"))),
  sweepInterval: v.optional(positiveTimeSpanSchema),
  onSweepError: v.optional(
    v.custom<(error: unknown) => void>(
      (value) => typeof value === "function",
      mustBe("a function"),
    ),
  ),
});

function isKysely(value: unknown): value is Kysely<unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Kysely<unknown>).executeQuery === "function" &&
    typeof (value as Kysely<unknown>).getExecutor === "function"
  );
}

function isPgConnection(value: unknown): value is PgListenConnection {
  return (
    typeof value === "object" &&
    value !== null &&
    (typeof (value as { query?: unknown }).query === "function" ||
      typeof (value as { connect?: unknown }).connect === "function")
  );
}

/** Transient failures a single statement can still meet under contention: retried in place. */
const TRANSIENT_CODES = new Set([
  "40001", // PostgreSQL serialization_failure (a SERIALIZABLE default isolation)
  "40P01", // PostgreSQL deadlock_detected
  "ER_LOCK_DEADLOCK", // MySQL 1213: InnoDB can deadlock concurrent upserts of one key
  "SQLITE_BUSY", // another process holds the database file's write lock past busy_timeout
]);
/** The driver's codes for a missing table or procedure: `init()` (or the migration) never ran. */
const MISSING_SCHEMA_CODES = new Set([
  "42P01", // PostgreSQL undefined_table
  "42883", // PostgreSQL undefined_function (a procedure of another hasp version's, or none)
  "ER_NO_SUCH_TABLE", // MySQL 1146
  "ER_SP_DOES_NOT_EXIST", // MySQL 1305
]);
/**
 * MySQL `init()`: how long the pool may take to hand out a connection (see `#poolAnswers`);
 * above mysql2's default `connectTimeout`, 10 s.
 */
const POOL_ANSWER_MS = 15_000;
const MYSQL_PROMISE_POOL_HINT =
  'Is it a pool from "mysql2/promise"? Kysely\'s MysqlDialect needs the callback pool, createPool from "mysql2" (a promise pool never answers it). Otherwise the pool is exhausted, or its connectTimeout is above 15 s';
/** Tries of a statement that met a transient failure; the pauses between grow to 128 ms. */
const MAX_STATEMENT_ATTEMPTS = 12;
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
  // biome-ignore lint/suspicious/noExplicitAny: see KyselyLockAdapterSettings.kysely
  readonly #db: Kysely<any>;
  readonly #table: string;
  readonly #dialect: KyselyLockDialect;
  /**
   * Unset only on MySQL before the server's version was learned (see `returning`); once set, an
   * operation starts without awaiting anything (a tick saved).
   */
  #statements: KyselyLockStatements | undefined;
  /** MySQL: the question of the server's version, while it is asked. */
  #detecting: Promise<KyselyLockStatements> | undefined;
  /** With a `listener`: where releases tell this adapter's waits. */
  readonly #inbox: PostgresInbox | undefined;
  /** The waits under way, told of their hand-offs on the inbox. */
  readonly #waits = new QueuedWaits();
  /** Per stored key, the last `wait` statement sent: each waits for the one before. */
  readonly #joins = new Map<string, Promise<unknown>>();
  #closed = false;
  readonly #sweep: ReturnType<typeof setInterval> | undefined;
  /**
   * Runs one statement on a connection of the pool (SQLite: in the instance's queue); a
   * prepared one (MariaDB) is prepared first on a connection that has not yet.
   */
  readonly #execute: <TRow>(
    query: CompiledQuery,
    prepared?: PreparedStatement,
  ) => Promise<QueryResult<TRow>>;
  /** MySQL family: the settings given, the server's version deciding the rest. */
  readonly #mysql: Partial<KyselyLockMysqlOptions>;

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
    const parsed = parseSettings("KyselyLockAdapter settings", settingsSchema, settings);
    const kysely = parsed.kysely as Kysely<unknown>;
    if (kysely.isTransaction) {
      throw new InvalidArgumentError(
        "Invalid KyselyLockAdapter settings: kysely: must not be a transaction (each lock statement commits on its own; a hold inside your transaction would be invisible to others until it commits)",
        [{ path: "kysely", message: "must not be a transaction" }],
      );
    }
    const dialect = parsed.dialect ?? detectDialect(kysely);
    if (dialect === undefined) {
      throw new InvalidArgumentError(
        `Invalid KyselyLockAdapter settings: kysely: unsupported dialect ${dialectName(kysely)} (supported: PostgreSQL, MySQL/MariaDB, SQLite; set \`dialect\` for a third-party dialect that speaks one of them)`,
        [{ path: "kysely", message: "unsupported dialect" }],
      );
    }
    if (parsed.listener !== undefined && dialect !== "postgres") {
      throw new InvalidArgumentError(
        `Invalid KyselyLockAdapter settings: listener: only PostgreSQL has release notifications (the dialect is ${dialect})`,
        [{ path: "listener", message: "only for PostgreSQL" }],
      );
    }
    for (const field of ["returning", "prepared"] as const) {
      if (parsed[field] !== undefined && dialect !== "mysql") {
        throw new InvalidArgumentError(
          `Invalid KyselyLockAdapter settings: ${field}: only for MySQL and MariaDB (the dialect is ${dialect})`,
          [{ path: field, message: "only for MySQL and MariaDB" }],
        );
      }
    }
    this.#db = kysely.withoutPlugins();
    // Straight to a connection: the statements' rows are the adapter's own, so there is no
    // result for plugins to transform, and no layer of Kysely's to pass on the way.
    const executor = this.#db.getExecutor();
    if (dialect === "sqlite") {
      let queue = sqliteQueues.get(kysely);
      if (queue === undefined) {
        queue = new StatementQueue(executor);
        sqliteQueues.set(kysely, queue);
      }
      this.#execute = (query) => queue.run(query);
    } else {
      this.#execute = (query, prepared) =>
        executor.provideConnection((connection) =>
          prepared === undefined
            ? connection.executeQuery(query)
            : executePrepared(connection, query, prepared),
        );
    }
    this.#mysql = {
      returning: parsed.returning,
      // RETURNING on an upsert is MariaDB 10.5+, where EXECUTE takes values.
      prepared: parsed.prepared ?? (parsed.returning === true ? true : undefined),
    };
    this.#table = parsed.tableName;
    this.#dialect = dialect;
    this.#statements =
      dialect === "postgres"
        ? postgresStatements(parsed.tableName)
        : dialect === "sqlite"
          ? sqliteStatements(parsed.tableName)
          : parsed.returning === undefined || this.#mysql.prepared === undefined
            ? undefined
            : mysqlStatements(parsed.tableName, {
                returning: parsed.returning,
                prepared: this.#mysql.prepared,
              });
    if (parsed.listener !== undefined) {
      this.#inbox = new PostgresInbox(
        parsed.listener,
        // Random, so that two adapters (processes) never share one: a message reaches one.
        `hasp_inbox_${randomBytes(12).toString("hex")}`,
        (payload) => this.#waits.heard(payload),
        () => this.#recheckWaits(),
      );
      this.waitForRelease = (key, maxWait, signal, claim) =>
        this.#waitQueued(key, maxWait, signal, claim);
    }
    this.waitAcquires = this.waitForRelease !== undefined;
    this.waitsPastExpiry = this.waitForRelease !== undefined;
    if (parsed.sweepInterval !== undefined) {
      const onError =
        parsed.onSweepError ??
        ((error: unknown) => console.warn(`[hasp] KyselyLockAdapter sweep failed:`, error));
      this.#sweep = setInterval(
        () => {
          this.removeExpired().catch(onError);
        },
        Math.min(parsed.sweepInterval.toMilliseconds(), MAX_TIMER_MS),
      );
      this.#sweep.unref();
    }
  }

  /** The dialect the statements are written for. */
  get dialect(): KyselyLockDialect {
    return this.#dialect;
  }

  /**
   * The SQL this adapter runs, per operation (for review and logs). On PostgreSQL each operation
   * calls a procedure of the table's own, created by `init()`: its SQL is in `createSchema`.
   */
  async statements(): Promise<KyselyLockStatements> {
    return this.#ready();
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
  async init(): Promise<void> {
    try {
      if (this.#dialect === "mysql") {
        await this.#poolAnswers();
      }
      await this.#createSchema();
    } catch (error) {
      throw isLockBackendError(error) ? error : new LockBackendError("", "init", { cause: error });
    }
  }

  async #createSchema(): Promise<void> {
    const statements = await this.#ready();
    if (statements.dialect === "postgres") {
      // Concurrent CREATE TABLE IF NOT EXISTS can fail on pg_type's unique index in PostgreSQL:
      // serialize them with a transaction-scoped advisory lock.
      await this.#db.transaction().execute(async (trx) => {
        await trx.executeQuery(
          CompiledQuery.raw("SELECT pg_advisory_xact_lock(hashtext($1))", [
            `hasp:init:${this.#table}`,
          ]),
        );
        for (const ddl of statements.createSchema) {
          await trx.executeQuery(CompiledQuery.raw(ddl));
        }
      });
      return;
    }
    for (const ddl of statements.createSchema) {
      await this.#run(ddl, []);
    }
  }

  /**
   * MySQL: whether the pool hands out a connection. Kysely's MysqlDialect asks the pool with
   * `getConnection(callback)`; a pool from `mysql2/promise` ignores the callback, so every
   * statement would wait forever. The pool is out of reach (Kysely keeps it private), so the
   * sign is the wait: mysql2's callback pool answers within its `connectTimeout` (10 s by
   * default), even with the server down.
   */
  async #poolAnswers(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const silent = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          new LockBackendError("", "init", {
            cause: new Error(`the MySQL pool gave no connection in ${POOL_ANSWER_MS / 1000} s`),
            hint: MYSQL_PROMISE_POOL_HINT,
          }),
        );
      }, POOL_ANSWER_MS);
      // Not unref'd: init() is awaited, and must end with this answer rather than a silent exit.
    });
    try {
      await Promise.race([this.#db.getExecutor().provideConnection(async () => {}), silent]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Drops the table (for tests and uninstalls): every lock and every token history goes. */
  async dropSchema(): Promise<void> {
    for (const ddl of (await this.#ready()).dropSchema) {
      await this.#run(ddl, []);
    }
  }

  /**
   * Deletes the rows of keys that have been free or expired for over a minute, so the table
   * does not grow with dead keys. Live holds, and holds that never expire, stay. A key deleted
   * here starts again from the server's clock, which is above every token it issued.
   * @returns how many rows were deleted.
   */
  async removeExpired(): Promise<number> {
    const { removeExpired } = await this.#ready();
    const result = await this.#send(
      removeExpired,
      removeExpired.parameters({ grace: DEAD_ROW_GRACE_MS }),
      "removeExpired",
    );
    return Number(result.numAffectedRows ?? 0);
  }

  /**
   * Stops the sweep and the listener. Waits under way end at once, leaving the queue (a key
   * already handed to one is its caller's); a later wait waits out its time without queueing.
   * The Kysely instance stays open: it is yours (and runs those last statements).
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweep);
    const ending = this.#waits.closeAll();
    await this.#inbox?.close();
    await ending;
  }

  /** Closes the adapter (`close()`), for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async acquire(key: string, lockId: string, ttl: TimeSpan | null): Promise<LockAcquireResult> {
    const ttlMs = ttl === null ? null : toTtlMs(ttl, "ttl");
    const statements = this.#statements ?? (await this.#ready());
    const args = { key: storedKey(key), owner: lockId, ttl: ttlMs };
    const { acquire } = statements;
    for (let attempt = 1; ; attempt++) {
      const result = await this.#send<StateRow>(acquire, acquire.parameters(args), "acquire", key);
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
    const { release, affected } = this.#statements ?? (await this.#ready());
    const result = await this.#send(
      release,
      release.parameters({ key: storedKey(key), owner: lockId }),
      "release",
      key,
    );
    return changedOne(affected, result);
  }

  async forceRelease(key: string): Promise<boolean> {
    const { forceRelease, affected } = this.#statements ?? (await this.#ready());
    const result = await this.#send(
      forceRelease,
      forceRelease.parameters({ key: storedKey(key) }),
      "forceRelease",
      key,
    );
    return changedOne(affected, result);
  }

  async refresh(key: string, lockId: string, ttl: TimeSpan): Promise<boolean> {
    const ttlMs = toTtlMs(ttl, "ttl");
    const { refresh, affected } = this.#statements ?? (await this.#ready());
    const result = await this.#send(
      refresh,
      refresh.parameters({ key: storedKey(key), owner: lockId, ttl: ttlMs }),
      "refresh",
      key,
    );
    return changedOne(affected, result);
  }

  async getState(key: string): Promise<LockAdapterState | null> {
    const { getState } = this.#statements ?? (await this.#ready());
    const result = await this.#send<StateRow>(
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

  #waitQueued(
    key: string,
    maxWait: TimeSpan,
    signal: AbortSignal,
    claim: LockWaitClaim | undefined,
  ): Promise<LockHandOff | undefined> {
    if (signal.aborted) {
      return Promise.reject(signal.reason);
    }
    let ttl: string;
    try {
      toTtlMs(maxWait, "maxWait");
      ttl =
        claim === undefined
          ? "-"
          : claim.ttl === null
            ? ""
            : String(toTtlMs(claim.ttl, "claim.ttl"));
    } catch (error) {
      return Promise.reject(error);
    }
    const inbox = this.#inbox;
    if (this.#closed || inbox === undefined) {
      // No LISTEN after close(): a waiter left over waits out its time.
      return delay(maxWait, signal).then(() => undefined);
    }
    const owner = claim?.lockId ?? "";
    return this.#waits.start(
      signal,
      maxWait.toMilliseconds(),
      this.#queue(key, owner, ttl, inbox.channel),
      inbox.listen(),
    );
  }

  /** The key's queue in its row, for one wait: the `wait`, `claim`, `leave` and `check` statements. */
  #queue(key: string, owner: string, ttl: string, inbox: string): WaitQueue {
    const stored = storedKey(key);
    return {
      join: (maxWaitMs, id) => {
        const args = {
          key: stored,
          owner,
          ttl,
          wait: Math.max(1, Math.ceil(maxWaitMs)),
          inbox,
          id,
        };
        // One after the other per key, so the queue keeps the order of this process's waits
        // (concurrent statements on a pool can reach the server in any order).
        const joined = (this.#joins.get(stored) ?? Promise.resolve()).then(
          async (): Promise<number | QueueEntry> => {
            const { wait, claim } = await this.#ready();
            if (wait === undefined || claim === undefined) {
              return 0;
            }
            if (owner === "") {
              const result = await this.#send<{ entry: string | null; remaining: unknown }>(
                wait,
                wait.parameters(args),
                "waitForRelease",
                key,
              );
              // No entry: the key is free, to be tried.
              const row = result.rows[0];
              return row?.entry == null ? 0 : queueEntry(row.entry, row.remaining);
            }
            const result = await this.#send<StateRow & { entry: string | null }>(
              claim,
              claim.parameters(args),
              "waitForRelease",
              key,
            );
            const row = result.rows[0];
            if (row === undefined) {
              throw new Error(`the claim statement of "${key}" answered no row`);
            }
            if (row.owner === owner) {
              return Number(row.token);
            }
            return row.entry === null ? 0 : queueEntry(row.entry, row.remaining);
          },
        );
        const settled = joined.catch(() => {});
        this.#joins.set(stored, settled);
        settled.then(() => {
          if (this.#joins.get(stored) === settled) {
            this.#joins.delete(stored);
          }
        });
        return joined;
      },
      leave: async (entry: string, mode: LeaveMode) => {
        const { leave } = await this.#ready();
        if (leave === undefined) {
          return 0;
        }
        const result = await this.#send<{ token: number | string }>(
          leave,
          leave.parameters({ key: stored, owner, entry }),
          "waitForRelease",
          key,
        );
        const token = Number(result.rows[0]?.token ?? 0);
        if (mode === "release" && token > 0) {
          // Handed the key as the wait was aborted: on to the next wait.
          await this.release(key, owner);
          return 0;
        }
        return token;
      },
      // PostgreSQL keeps a hold's expiry in its row: its check serves only a hold that expired,
      // whatever `serve` says.
      check: async (entry: string, leftMs: number): Promise<WaitCheck> => {
        const { check } = await this.#ready();
        if (check === undefined) {
          return { state: "gone" };
        }
        const result = await this.#send<{
          state: number | null;
          token: unknown;
          remaining: unknown;
          entry: string | null;
        }>(
          check,
          check.parameters({ key: stored, owner, entry, left: Math.ceil(leftMs) }),
          "waitForRelease",
          key,
        );
        const row = result.rows[0];
        if (row?.state === 1) {
          const fencingToken = Number(row.token);
          return row.remaining == null
            ? { state: "granted", fencingToken }
            : { state: "granted", fencingToken, remainingMs: Math.max(0, Number(row.remaining)) };
        }
        if (row?.state === 0 && row.entry !== null) {
          return { state: "queued", ...queueEntry(row.entry, row.remaining) };
        }
        return { state: "gone" };
      },
      giveBack: () => this.release(key, owner),
    };
  }

  /**
   * The listening connection was lost: releases meanwhile told nobody. Once listening again,
   * every wait asks whether it was handed the key (a wait that was only woken waits out its
   * time, or the next release).
   */
  #recheckWaits(): void {
    if (this.#waits.size === 0 || this.#inbox === undefined) {
      return;
    }
    const checkAll = () => this.#waits.checkAll();
    this.#inbox.listen().then(checkAll, checkAll);
  }

  /** Runs SQL of no operation's (DDL, the version question) as `#send` runs a statement. */
  async #run<TRow = unknown>(
    sql: string,
    parameters: readonly unknown[],
  ): Promise<QueryResult<TRow>> {
    return this.#send<TRow>({ sql }, parameters);
  }

  /**
   * Runs one statement (its `EXECUTE`, when prepared: MariaDB), again on the transient failures
   * a lone statement can still meet. For an `operation`, a missing table or procedure becomes a
   * LockBackendError that says to run `init()`.
   */
  async #send<TRow = unknown>(
    statement: Pick<KyselyLockStatement<never>, "sql" | "prepared">,
    parameters: readonly unknown[],
    operation?: string,
    key = "",
  ): Promise<QueryResult<TRow>> {
    const prepared =
      statement.prepared === undefined ? undefined : (statement as PreparedStatement);
    const query = CompiledQuery.raw(prepared?.prepared.execute ?? statement.sql, [...parameters]);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#execute<TRow>(query, prepared);
      } catch (error) {
        if (operation !== undefined && isMissingSchema(error)) {
          throw new LockBackendError(key, operation, {
            cause: error,
            hint: missingSchemaHint(this.#table, this.#dialect),
          });
        }
        if (attempt >= MAX_STATEMENT_ATTEMPTS || !isTransient(error)) {
          throw error;
        }
        // The statement was rolled back whole; a random pause, growing with each conflict,
        // spreads the contenders out (full jitter).
        await sleep(Math.random() * 2 ** Math.min(attempt, 7));
      }
    }
  }

  /** The statements; on MySQL, the first call asks the server's version (once, unless it fails). */
  #ready(): KyselyLockStatements | Promise<KyselyLockStatements> {
    if (this.#statements !== undefined) {
      return this.#statements;
    }
    if (this.#detecting !== undefined) {
      return this.#detecting;
    }
    const detected = this.#run<{ version: string }>("SELECT VERSION() AS version", []).then(
      ({ rows }) => {
        const version = rows[0]?.version ?? "";
        const statements = mysqlStatements(this.#table, {
          returning: this.#mysql.returning ?? isMariadbSince(version, 10, 5),
          prepared: this.#mysql.prepared ?? isMariadbSince(version, 10, 2),
        });
        this.#statements = statements;
        return statements;
      },
    );
    this.#detecting = detected;
    // A failed detection (the server is down) is asked again by the next call, not before.
    detected.catch(() => {
      if (this.#detecting === detected) {
        this.#detecting = undefined;
      }
    });
    return detected;
  }
}

type Queued = {
  readonly query: CompiledQuery;
  readonly resolve: (result: QueryResult<never>) => void;
  readonly reject: (error: unknown) => void;
};

/**
 * SQLite: the statements of every adapter on one Kysely instance, in order, in batches. Kysely's
 * SQLite driver has one connection behind a mutex that wakes every waiting statement at each
 * unlock (all but one wait again), and each statement takes and gives back the connection. Here
 * the statements queued while a batch runs make the next batch, which takes the connection once
 * and runs them one after another, each committing on its own as before. Between batches the
 * connection goes back, so the application's own queries keep their turn. SQLite runs one
 * statement at a time anyway.
 */
class StatementQueue {
  readonly #executor: QueryExecutor;
  #queued: Queued[] = [];
  #draining = false;

  constructor(executor: QueryExecutor) {
    this.#executor = executor;
  }

  run<TRow>(query: CompiledQuery): Promise<QueryResult<TRow>> {
    return new Promise<QueryResult<TRow>>((resolve, reject) => {
      this.#queued.push({ query, resolve: resolve as Queued["resolve"], reject });
      if (!this.#draining) {
        void this.#drain();
      }
    });
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    while (this.#queued.length > 0) {
      const batch = this.#queued;
      this.#queued = [];
      try {
        await this.#executor.provideConnection(async (connection) => {
          for (const { query, resolve, reject } of batch) {
            try {
              resolve(await connection.executeQuery<never>(query));
            } catch (error) {
              reject(error);
            }
          }
        });
      } catch (error) {
        // No connection (the instance was destroyed): what is not answered yet did not run.
        for (const { reject } of batch) {
          reject(error);
        }
      }
    }
    this.#draining = false;
  }
}

/** Per Kysely instance given to a SQLite adapter, so several adapters on it share one queue. */
// biome-ignore lint/suspicious/noExplicitAny: any Kysely instance
const sqliteQueues = new WeakMap<Kysely<any>, StatementQueue>();

/**
 * Whether `SELECT VERSION()` names MariaDB of at least that version. MariaDB 10.5 added
 * `RETURNING` to `INSERT`, upserts included, and 10.2 values to `EXECUTE ... USING`; MySQL has
 * neither.
 */
function isMariadbSince(version: string, major: number, minor: number): boolean {
  const match = /^(\d+)\.(\d+)/.exec(version);
  if (!version.toLowerCase().includes("mariadb") || match === null) {
    return false;
  }
  const [actualMajor, actualMinor] = [Number(match[1]), Number(match[2])];
  return actualMajor > major || (actualMajor === major && actualMinor >= minor);
}

/** A statement to run prepared: its SQL, and how to prepare and execute it. */
type PreparedStatement = {
  readonly sql: string;
  readonly prepared: NonNullable<KyselyLockStatement<never>["prepared"]>;
};

/** Per connection, the names of the statements prepared on it, which it keeps for its life. */
const preparedOn = new WeakMap<DatabaseConnection, Set<string>>();

/**
 * MariaDB: runs a prepared statement (`query` is its `EXECUTE`), preparing it first on a
 * connection that has not yet. A connection that lost it (reset, or deallocated by another
 * user of the pool) answers that it does not know it, having run nothing: prepared again.
 */
async function executePrepared<TRow>(
  connection: DatabaseConnection,
  query: CompiledQuery,
  { sql, prepared: { name, prepare } }: PreparedStatement,
): Promise<QueryResult<TRow>> {
  let names = preparedOn.get(connection);
  if (names === undefined) {
    names = new Set();
    preparedOn.set(connection, names);
  }
  if (names.has(name)) {
    try {
      return await connection.executeQuery<TRow>(query);
    } catch (error) {
      if ((error as { code?: unknown }).code !== "ER_UNKNOWN_STMT_HANDLER") {
        throw error;
      }
      names.delete(name);
    }
  }
  await connection.executeQuery(CompiledQuery.raw(prepare, [sql]));
  names.add(name);
  return connection.executeQuery<TRow>(query);
}

function detectDialect(kysely: Kysely<unknown>): KyselyLockDialect | undefined {
  const adapter = kysely.getExecutor().adapter;
  if (adapter instanceof PostgresAdapter) return "postgres";
  if (adapter instanceof MysqlAdapter) return "mysql";
  if (adapter instanceof SqliteAdapter) return "sqlite";
  // Another copy of kysely: recognise its adapters by their class names.
  for (
    let proto = Object.getPrototypeOf(adapter);
    proto !== null;
    proto = Object.getPrototypeOf(proto)
  ) {
    switch ((proto as { constructor?: { name?: string } }).constructor?.name) {
      case "PostgresAdapter":
        return "postgres";
      case "MysqlAdapter":
        return "mysql";
      case "SqliteAdapter":
        return "sqlite";
    }
  }
  return undefined;
}

function dialectName(kysely: Kysely<unknown>): string {
  return (kysely.getExecutor().adapter as object).constructor?.name ?? "(unknown)";
}

/**
 * The key as stored: longer than the column (255 UTF-8 bytes), or looking like a hashed key,
 * it becomes `#sha256:` and its SHA-256, so any key works and no two keys share a row.
 */
export function storedKey(key: string): string {
  if (key.startsWith(HASHED_PREFIX) || Buffer.byteLength(key) > KEY_MAX_BYTES) {
    return HASHED_PREFIX + createHash("sha256").update(key).digest("hex");
  }
  return key;
}

const HASHED_PREFIX = "#sha256:";

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

/** A queued wait's entry, with the holder's remaining ms (-1: never expires; NULL: no hold). */
function queueEntry(entry: string, remaining: unknown): QueueEntry {
  if (remaining == null) {
    return { entry };
  }
  const ms = Number(remaining);
  return { entry, holderLeftMs: ms < 0 ? Number.POSITIVE_INFINITY : ms };
}

/**
 * A duration as the whole ms (at least 1) the statements take. Above MAX_DURATION_MS (passed to
 * the adapter directly: the provider refuses it) an InvalidArgumentError, before any statement.
 */
function toTtlMs(span: TimeSpan, field: string): number {
  const ms = storeMilliseconds(span);
  if (ms === undefined) {
    throw durationTooLong("KyselyLockAdapter", field, span);
  }
  return ms;
}

function toRemaining(remaining: unknown): TimeSpan | null {
  return remaining === null || remaining === undefined
    ? null
    : TimeSpan.fromMilliseconds(Math.max(0, Number(remaining)));
}

function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && TRANSIENT_CODES.has(code);
}

/** A statement that failed because `init()` (or the migration) never ran, or ran for an older hasp. */
function isMissingSchema(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === "string" && MISSING_SCHEMA_CODES.has(code)) {
    return true;
  }
  // SQLite has no code of its own for it: SQLITE_ERROR is any error in the SQL.
  return (
    code === "SQLITE_ERROR" && typeof message === "string" && message.startsWith("no such table")
  );
}

function missingSchemaHint(table: string, dialect: KyselyLockDialect): string {
  const missing =
    dialect === "postgres"
      ? `The table "${table}" or this hasp's procedures for it are missing`
      : `The table "${table}" is missing`;
  return `${missing}: call init() on the KyselyLockAdapter at start-up, or apply the migration in hasp's docs/adapters/sql.md (Schema)`;
}
