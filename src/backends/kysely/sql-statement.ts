// What every primitive's SQL is written with: one statement object per operation, written once
// with named markers and turned into the dialect's placeholders. Every operation is one
// statement in autocommit, so no transaction spans a round trip and a lost race is an answer,
// not an error.

/** The SQL dialects hasp's Kysely adapters speak; MySQL covers MariaDB. */
export type SqlDialectName = "postgres" | "mysql" | "sqlite";

/** One statement: its text with the dialect's placeholders and how to order its parameters. */
export type SqlStatement<TArgs extends Record<string, unknown>> = {
  /** The text, with the dialect's placeholders (`$1` or `?`). */
  readonly sql: string;
  /** The parameter values in placeholder order. */
  readonly parameters: (args: TArgs) => unknown[];
  /**
   * MariaDB, with `prepared`: the statement is prepared once per connection (`PREPARE`, with
   * `sql` as its parameter) and then run as `EXECUTE ... USING` the parameters, which the server
   * neither parses nor resolves again.
   */
  readonly prepared?: {
    /** Its name on a connection, quoted: `` `<table>:<operation>:<hash of sql>` ``. */
    readonly name: string;
    /** `PREPARE <name> FROM ?`. */
    readonly prepare: string;
    /** `EXECUTE <name> USING ?, ...`, one `?` a placeholder of `sql`. */
    readonly execute: string;
  };
};

/** A statement as a dialect runs it: its text, and how to prepare it (MariaDB). */
export type RunnableStatement = Pick<SqlStatement<never>, "sql" | "prepared">;

/** The DDL of a primitive's schema, which every dialect's statements carry. */
export type SqlSchemaStatements = {
  /** DDL run in order by `init()`; each is idempotent. */
  readonly createSchema: readonly string[];
  /** Drops the tables and what belongs to them, in order (`dropSchema()`, for tests). */
  readonly dropSchema: readonly string[];
};

/** Longest key stored as it is, in UTF-8 bytes (the MySQL column's size); longer ones are hashed. */
export const KEY_MAX_BYTES = 255;

/** Rows dead for less than this stay, so a clock stepping back a little cannot reuse a token. */
export const DEAD_ROW_GRACE_MS = 60_000;

/** A named marker in a statement's text, `:key` (not the `::` of a cast). */
export const MARKER = /(?<![:\w]):([a-z]+)\b/g;

/**
 * Writes a statement with named markers (`:key`) once and turns it into the dialect's
 * placeholders: `$1` (PostgreSQL, each name numbered once) or `?` (MySQL, SQLite: the value
 * repeated at every use).
 */
export function statement<TArgs extends Record<string, unknown>>(
  dialect: SqlDialectName,
  text: string,
): SqlStatement<TArgs> {
  const order: string[] = [];
  const sql = text
    .trim()
    .replace(/\s+/g, " ")
    .replace(MARKER, (_marker, name: string) => {
      if (dialect !== "postgres") {
        order.push(name);
        return "?";
      }
      const index = order.indexOf(name);
      if (index !== -1) {
        return `$${index + 1}`;
      }
      order.push(name);
      return `$${order.length}`;
    });
  return { sql, parameters: (args) => order.map((name) => args[name]) };
}
