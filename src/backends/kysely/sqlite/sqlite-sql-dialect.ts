import type { Kysely, QueryResult } from "kysely";
import { executeWithRetries } from "../execute-with-retries.js";
import {
  compiledQuery,
  type ISqlDialect,
  missingSchemaError,
  type SqlDialectSettings,
  type SqlSchemaOwner,
} from "../sql-dialect.js";
import type { RunnableStatement, SqlSchemaStatements } from "../sql-statement.js";
import { SqliteStatementQueue } from "./sqlite-statement-queue.js";

/** SQLite: a primitive's plain statements, run in the Kysely instance's statement queue. */
export class SqliteSqlDialect<TStatements extends SqlSchemaStatements>
  implements ISqlDialect<TStatements>
{
  readonly name = "sqlite";
  readonly statements: TStatements;
  readonly #queue: SqliteStatementQueue;
  readonly #missingSchema: string;
  readonly #owner: SqlSchemaOwner;

  /**
   * @param kysely the instance the adapter was given: its adapters (of every primitive) share
   *   one queue.
   */
  constructor(
    // biome-ignore lint/suspicious/noExplicitAny: any Kysely instance
    kysely: Kysely<any>,
    { db, statements, missingSchema, owner }: SqlDialectSettings<TStatements>,
  ) {
    this.statements = statements;
    this.#missingSchema = missingSchema;
    this.#owner = owner;
    this.#queue = SqliteStatementQueue.of(kysely, db.getExecutor());
  }

  ready(): TStatements {
    return this.statements;
  }

  execute<TRow>(
    statement: RunnableStatement,
    parameters: readonly unknown[],
  ): Promise<QueryResult<TRow>> {
    return this.#queue.run(compiledQuery(statement, parameters));
  }

  missingSchemaError(cause: unknown, operation: string, key: string): Error {
    return missingSchemaError(this.#owner, this.#missingSchema, cause, operation, key);
  }

  async createSchema(): Promise<void> {
    for (const ddl of this.statements.createSchema) {
      await executeWithRetries(this, { sql: ddl }, []);
    }
  }
}
