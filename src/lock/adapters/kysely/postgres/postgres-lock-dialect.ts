import { CompiledQuery, type Kysely, type QueryExecutor, type QueryResult } from "kysely";
import type { ISqlLockDialect, RunnableStatement } from "../sql-lock-dialect.js";
import { type PostgresLockStatements, postgresStatements } from "./postgres-lock-statements.js";

/** PostgreSQL: a CALL of the table's own procedure per operation, on a connection of the pool. */
export class PostgresLockDialect implements ISqlLockDialect {
  readonly name = "postgres";
  readonly statements: PostgresLockStatements;
  readonly missingSchema: string;
  // biome-ignore lint/suspicious/noExplicitAny: the adapter brings its own table
  readonly #db: Kysely<any>;
  readonly #executor: QueryExecutor;
  readonly #table: string;

  // biome-ignore lint/suspicious/noExplicitAny: the adapter brings its own table
  constructor(db: Kysely<any>, table: string) {
    this.#db = db;
    // Straight to a connection: the statements' rows are the adapter's own, so there is no
    // result for plugins to transform, and no layer of Kysely's to pass on the way.
    this.#executor = db.getExecutor();
    this.#table = table;
    this.statements = postgresStatements(table);
    this.missingSchema = `The table "${table}" or this hasp's procedures for it are missing`;
  }

  ready(): PostgresLockStatements {
    return this.statements;
  }

  execute<TRow>(
    statement: RunnableStatement,
    parameters: readonly unknown[],
  ): Promise<QueryResult<TRow>> {
    const query = CompiledQuery.raw(statement.sql, [...parameters]);
    return this.#executor.provideConnection((connection) => connection.executeQuery(query));
  }

  /**
   * Concurrent CREATE TABLE IF NOT EXISTS can fail on pg_type's unique index in PostgreSQL:
   * serialized with a transaction-scoped advisory lock.
   */
  async createSchema(): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      await trx.executeQuery(
        CompiledQuery.raw("SELECT pg_advisory_xact_lock(hashtext($1))", [
          `hasp:init:${this.#table}`,
        ]),
      );
      for (const ddl of this.statements.createSchema) {
        await trx.executeQuery(CompiledQuery.raw(ddl));
      }
    });
  }
}
