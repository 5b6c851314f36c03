import { type Kysely, MysqlAdapter, PostgresAdapter, SqliteAdapter } from "kysely";
import * as v from "valibot";
import { InvalidArgumentError } from "../../../errors/invalid-argument-error.js";
import { mustBe, parseSettings, settingsObject } from "../../../settings/parse-settings.js";
import type { ITimeSpan } from "../../../time-span/time-span.js";
import { positiveTimeSpanSchema } from "../../../time-span/time-span-schema.js";
import type { KyselyLockDialect } from "./kysely-lock-statements.js";
import type { PgListenConnection } from "./postgres/postgres-inbox.js";

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

/** The settings as parsed, with the dialect they fit. */
export type ParsedKyselyLockAdapterSettings = Omit<
  v.InferOutput<typeof settingsSchema>,
  "dialect"
> & {
  readonly dialect: KyselyLockDialect;
};

/**
 * Parses the settings and finds the dialect (set, or told by Kysely's adapter) they fit.
 * @throws InvalidArgumentError as KyselyLockAdapter's constructor says.
 */
export function parseKyselyLockAdapterSettings(
  settings: KyselyLockAdapterSettings,
): ParsedKyselyLockAdapterSettings {
  const parsed = parseSettings("KyselyLockAdapter settings", settingsSchema, settings);
  return { ...parsed, dialect: checkedDialect(parsed) };
}

/**
 * The dialect the settings name or Kysely's adapter tells, once the settings fit it.
 * @throws InvalidArgumentError as the constructor says.
 */
function checkedDialect(parsed: v.InferOutput<typeof settingsSchema>): KyselyLockDialect {
  const kysely = parsed.kysely;
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
  return dialect;
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
