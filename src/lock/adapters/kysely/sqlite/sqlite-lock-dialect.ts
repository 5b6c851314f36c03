import type { Kysely, QueryResult } from "kysely";
import { executeWithRetries } from "../execute-with-retries.js";
import type { KyselyLockStatements } from "../kysely-lock-statements.js";
import {
  compiledQuery,
  type ISqlLockDialect,
  type RunnableStatement,
} from "../sql-lock-dialect.js";
import { sqliteStatements } from "./sqlite-lock-statements.js";
import { SqliteStatementQueue } from "./sqlite-statement-queue.js";

/** SQLite: plain statements, run in the Kysely instance's statement queue. */
export class SqliteLockDialect implements ISqlLockDialect {
  readonly name = "sqlite";
  readonly statements: KyselyLockStatements;
  readonly missingSchema: string;
  readonly #queue: SqliteStatementQueue;

  /**
   * @param kysely the instance the adapter was given: its adapters share one queue.
   * @param db the instance the statements run on (`kysely` without its plugins).
   */
  // biome-ignore lint/suspicious/noExplicitAny: any Kysely instance
  constructor(kysely: Kysely<any>, db: Kysely<any>, table: string) {
    this.statements = sqliteStatements(table);
    this.missingSchema = `The table "${table}" is missing`;
    this.#queue = SqliteStatementQueue.of(kysely, db.getExecutor());
  }

  ready(): KyselyLockStatements {
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
