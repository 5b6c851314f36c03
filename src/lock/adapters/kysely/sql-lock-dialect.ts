import { CompiledQuery, createQueryId, type QueryResult } from "kysely";
import type {
  KyselyLockDialect,
  KyselyLockStatement,
  KyselyLockStatements,
} from "./kysely-lock-statements.js";

/** A statement as a dialect runs it: its text, and how to prepare it (MariaDB). */
export type RunnableStatement = Pick<KyselyLockStatement<never>, "sql" | "prepared">;

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

/**
 * What differs between the SQL dialects KyselyLockAdapter speaks: their statements, how a
 * statement reaches the server, and how the schema is made. Everything else (settings, retries,
 * the rows' meaning) is the adapter's, the same on every dialect. One is chosen in the adapter's
 * constructor, never `if (mysql)` inside an operation.
 */
export interface ISqlLockDialect {
  /** Which dialect this is. */
  readonly name: KyselyLockDialect;
  /**
   * The statements, when known without asking the server; `undefined` until they are (MySQL:
   * they depend on the server's version). Read first, so an operation awaits nothing then.
   */
  readonly statements: KyselyLockStatements | undefined;
  /** The statements, asking the server what they depend on first (once, unless it fails). */
  ready(): KyselyLockStatements | Promise<KyselyLockStatements>;
  /**
   * Runs one statement with its parameters (an array of the caller's, made for this call),
   * once: the caller retries what is transient. A statement with `prepared` runs as its
   * `EXECUTE`, prepared first on a connection that has not yet.
   */
  execute<TRow>(
    statement: RunnableStatement,
    parameters: readonly unknown[],
  ): Promise<QueryResult<TRow>>;
  /** Runs `createSchema` for `init()`, safe from several processes at once. */
  createSchema(): Promise<void>;
  /** What a missing-schema error says is missing, for its hint. */
  readonly missingSchema: string;
}
