import type { Kysely, QueryResult } from "kysely";
import { executeWithRetries } from "../execute-with-retries.js";
import {
  compiledQuery,
  type ISqlDialect,
  SqlDialectBase,
  type SqlDialectSettings,
} from "../sql-dialect.js";
import type { RunnableStatement, SqlSchemaStatements } from "../sql-statement.js";
import { SqliteStatementQueue } from "./sqlite-statement-queue.js";

/** SQLite: a primitive's plain statements, run in the Kysely instance's statement queue. */
export class SqliteSqlDialect<TStatements extends SqlSchemaStatements>
  extends SqlDialectBase
  implements ISqlDialect<TStatements>
{
  readonly name = "sqlite";
  readonly statements: TStatements;
  readonly #queue: SqliteStatementQueue;

  /**
   * @param kysely the instance the adapter was given: its adapters (of every primitive) share
   *   one queue.
   */
  constructor(
    // biome-ignore lint/suspicious/noExplicitAny: any Kysely instance
    kysely: Kysely<any>,
    { db, statements, missingSchema, owner }: SqlDialectSettings<TStatements>,
  ) {
    super({ owner, missingSchema });
    this.statements = statements;
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

  async createSchema(): Promise<void> {
    for (const ddl of this.statements.createSchema) {
      await executeWithRetries(this, { sql: ddl }, []);
    }
  }
}
