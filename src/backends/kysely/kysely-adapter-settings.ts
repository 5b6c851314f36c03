import { type Kysely, MysqlAdapter, PostgresAdapter, SqliteAdapter } from "kysely";
import * as v from "valibot";
import { InvalidArgumentError } from "../../errors/invalid-argument-error.js";
import { mustBe } from "../../settings/parse-settings.js";
import { positiveTimeSpanSchema } from "../../time-span/time-span-schema.js";
import type { PgListenConnection } from "./postgres/postgres-inbox.js";
import type { SqlDialectName } from "./sql-statement.js";

/**
 * The settings every primitive's Kysely adapter shares (`kysely`, `tableName`, `dialect`,
 * `sweepInterval`, `onSweepError`), as valibot entries for its `settingsObject`: the table's
 * default is the primitive's. An adapter with release notifications adds `listenerSchema`.
 */
export function kyselySettingsEntries(defaultTable: string) {
  return {
    kysely: v.custom<Kysely<unknown>>(isKysely, mustBe("a Kysely instance")),
    tableName: v.optional(
      v.pipe(
        v.string(mustBe("a string")),
        v.regex(
          /^[A-Za-z_][A-Za-z0-9_]{0,47}$/,
          "must be letters, digits and _, starting with a letter or _, at most 48 characters",
        ),
      ),
      defaultTable,
    ),
    dialect: v.optional(
      v.picklist(["postgres", "mysql", "sqlite"], mustBe('"postgres", "mysql" or "sqlite"')),
    ),
    sweepInterval: v.optional(positiveTimeSpanSchema),
    onSweepError: v.optional(
      v.custom<(error: unknown) => void>(
        (value) => typeof value === "function",
        mustBe("a function"),
      ),
    ),
  };
}

/** PostgreSQL's `listener` setting: a pg.Pool or a connected pg.Client. */
export const listenerSchema = v.optional(
  v.custom<PgListenConnection>(isPgConnection, mustBe("a pg Client or Pool")),
);

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

/** The parsed settings `checkedDialect` looks at. */
export type DialectSettings = {
  readonly kysely: Kysely<unknown>;
  readonly dialect?: SqlDialectName | undefined;
  readonly listener?: PgListenConnection | undefined;
  /** MySQL-only settings the adapter has (`returning`, `prepared`), by name. */
  readonly mysqlOnly?: Readonly<Record<string, unknown>>;
};

/**
 * The dialect the settings of `adapter` name or Kysely's adapter tells, once the settings fit
 * it.
 * @throws InvalidArgumentError for a Kysely transaction, a dialect that is not PostgreSQL,
 *   MySQL/MariaDB or SQLite, a `listener` on another dialect than PostgreSQL, or a MySQL-only
 *   setting on another dialect.
 */
export function checkedDialect(adapter: string, parsed: DialectSettings): SqlDialectName {
  const invalid = (path: string, message: string, detail: string) =>
    new InvalidArgumentError(`Invalid ${adapter} settings: ${path}: ${message}${detail}`, [
      { path, message },
    ]);
  const kysely = parsed.kysely;
  if (kysely.isTransaction) {
    throw invalid(
      "kysely",
      "must not be a transaction",
      " (each statement commits on its own; a hold inside your transaction would be invisible to others until it commits)",
    );
  }
  const dialect = parsed.dialect ?? detectDialect(kysely);
  if (dialect === undefined) {
    throw invalid(
      "kysely",
      "unsupported dialect",
      ` ${dialectName(kysely)} (supported: PostgreSQL, MySQL/MariaDB, SQLite; set \`dialect\` for a third-party dialect that speaks one of them)`,
    );
  }
  if (parsed.listener !== undefined && dialect !== "postgres") {
    throw new InvalidArgumentError(
      `Invalid ${adapter} settings: listener: only PostgreSQL has release notifications (the dialect is ${dialect})`,
      [{ path: "listener", message: "only for PostgreSQL" }],
    );
  }
  for (const [field, value] of Object.entries(parsed.mysqlOnly ?? {})) {
    if (value !== undefined && dialect !== "mysql") {
      throw new InvalidArgumentError(
        `Invalid ${adapter} settings: ${field}: only for MySQL and MariaDB (the dialect is ${dialect})`,
        [{ path: field, message: "only for MySQL and MariaDB" }],
      );
    }
  }
  return dialect;
}

function detectDialect(kysely: Kysely<unknown>): SqlDialectName | undefined {
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
