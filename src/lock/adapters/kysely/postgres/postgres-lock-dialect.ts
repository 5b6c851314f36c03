import { CompiledQuery, type Kysely, type QueryResult } from "kysely";
import { PooledStatementQueue } from "../pooled-statement-queue.js";
import {
  compiledQuery,
  type ISqlLockDialect,
  type RunnableStatement,
} from "../sql-lock-dialect.js";
import { type PostgresLockStatements, postgresStatements } from "./postgres-lock-statements.js";

/** PostgreSQL: a CALL of the table's own procedure per operation, on a connection of the pool. */
export class PostgresLockDialect implements ISqlLockDialect {
  readonly name = "postgres";
  readonly statements: PostgresLockStatements;
  readonly missingSchema: string;
  // biome-ignore lint/suspicious/noExplicitAny: the adapter brings its own table
  readonly #db: Kysely<any>;
  readonly #queue: PooledStatementQueue;
  readonly #table: string;

  // biome-ignore lint/suspicious/noExplicitAny: the adapter brings its own table
  constructor(db: Kysely<any>, table: string) {
    this.#db = db;
    // Straight to a connection: the statements' rows are the adapter's own, so there is no
    // result for plugins to transform, and no layer of Kysely's to pass on the way.
    this.#queue = new PooledStatementQueue(db.getExecutor());
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
    const query = compiledQuery(statement, parameters);
    return this.#queue.run((connection) => connection.executeQuery(query));
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
