import { CompiledQuery, createQueryId, type Kysely, type QueryResult } from "kysely";
import type { RunnableStatement, SqlDialectName, SqlSchemaStatements } from "./sql-statement.js";

/** Per statement, the query Kysely's `CompiledQuery.raw` made of its text once. */
const compiled = new WeakMap<RunnableStatement, CompiledQuery>();

/**
 * `statement` run with `parameters` (an array made for this call), as Kysely's compiled query of
 * `sql` (by default the statement's text). The statement's part is made once: `CompiledQuery.raw`
 * at every call would copy and freeze the same text's query node again.
 */
export function compiledQuery(
  statement: RunnableStatement,
  parameters: readonly unknown[],
  sql = statement.sql,
): CompiledQuery {
  let template = compiled.get(statement);
  if (template === undefined) {
    template = CompiledQuery.raw(sql);
    compiled.set(statement, template);
  }
  return { sql: template.sql, query: template.query, queryId: createQueryId(), parameters };
}

/** Builds a primitive's backend error (`LockBackendError`, …) for an operation on `key`. */
export type SqlBackendErrorFactory = (
  key: string,
  operation: string,
  options: { cause: unknown; hint?: string },
) => Error;

/** Which adapter a dialect serves: for its errors, which must name that adapter's `init()`. */
export type SqlSchemaOwner = {
  /** The adapter's class name, as its `init()` is named in a missing-schema hint. */
  readonly adapter: string;
  /** Where hasp's docs give the migration, for the hint: `docs/adapters/sql.md (Schema)`. */
  readonly docs: string;
  /** The primitive's backend error. */
  readonly error: SqlBackendErrorFactory;
  /** Whether `error` is already one (`init()` throws it as it is). */
  readonly isError: (error: unknown) => boolean;
};

/** How a dialect is made: the instance, the table, the statements and whose they are. */
export type SqlDialectSettings<TStatements> = {
  /** The instance the statements run on (the adapter's, without its plugins). */
  // biome-ignore lint/suspicious/noExplicitAny: the adapter brings its own table
  readonly db: Kysely<any>;
  /** The primitive's main table (named in errors, and in PostgreSQL's init lock). */
  readonly table: string;
  /** What a missing-schema error says is missing. */
  readonly missingSchema: string;
  readonly owner: SqlSchemaOwner;
  /** The statements (PostgreSQL, SQLite). */
  readonly statements: TStatements;
};

/**
 * What runs a statement once, and what a statement that found no schema becomes: what
 * `executeWithRetries` needs.
 */
export interface ISqlStatementRunner {
  /**
   * Runs one statement with its parameters (an array of the caller's, made for this call),
   * once: the caller retries what is transient. A statement with `prepared` runs as its
   * `EXECUTE`, prepared first on a connection that has not yet.
   */
  execute<TRow>(
    statement: RunnableStatement,
    parameters: readonly unknown[],
  ): Promise<QueryResult<TRow>>;
  /**
   * The error a statement of `operation` on `key` becomes when a table or procedure `init()`
   * makes is missing: the owner's backend error, with a hint that names its `init()`.
   */
  missingSchemaError(cause: unknown, operation: string, key: string): Error;
}

/**
 * What differs between the SQL dialects hasp's Kysely adapters speak: their statements, how a
 * statement reaches the server, and how the schema is made. Everything else (settings, retries,
 * the rows' meaning) is the adapter's, the same on every dialect. One is chosen in the adapter's
 * constructor, never `if (mysql)` inside an operation.
 */
export interface ISqlDialect<TStatements extends SqlSchemaStatements> extends ISqlStatementRunner {
  /** Which dialect this is. */
  readonly name: SqlDialectName;
  /**
   * The statements, when known without asking the server; `undefined` until they are (MySQL:
   * they depend on the server's version). Read first, so an operation awaits nothing then.
   */
  readonly statements: TStatements | undefined;
  /** The statements, asking the server what they depend on first (once, unless it fails). */
  ready(): TStatements | Promise<TStatements>;
  /** Runs `createSchema` for `init()`, safe from several processes at once. */
  createSchema(): Promise<void>;
}

/**
 * What every dialect does alike: whose schema it runs on, and the missing-schema error that
 * names its owner's `init()`. Each dialect extends it with its statements, how it runs one and
 * how it makes the schema.
 */
export abstract class SqlDialectBase {
  /** Whose schema the statements run on (its errors are the owner's). */
  protected readonly owner: SqlSchemaOwner;
  readonly #missingSchema: string;

  protected constructor({
    owner,
    missingSchema,
  }: Pick<SqlDialectSettings<unknown>, "owner" | "missingSchema">) {
    this.owner = owner;
    this.#missingSchema = missingSchema;
  }

  /** The owner's backend error, saying what is missing and how to make it. */
  missingSchemaError(cause: unknown, operation: string, key: string): Error {
    return this.owner.error(key, operation, {
      cause,
      hint: `${this.#missingSchema}: call init() on the ${this.owner.adapter} at start-up, or apply the migration in hasp's ${this.owner.docs}`,
    });
  }
}
