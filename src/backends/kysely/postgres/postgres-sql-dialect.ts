import { CompiledQuery, type Kysely, type QueryResult } from "kysely";
import { PooledStatementQueue } from "../pooled-statement-queue.js";
import {
  compiledQuery,
  type ISqlDialect,
  SqlDialectBase,
  type SqlDialectSettings,
} from "../sql-dialect.js";
import type { RunnableStatement, SqlSchemaStatements } from "../sql-statement.js";

/** PostgreSQL: a primitive's statements (CALLs of its procedures), on a connection of the pool. */
export class PostgresSqlDialect<TStatements extends SqlSchemaStatements>
  extends SqlDialectBase
  implements ISqlDialect<TStatements>
{
  readonly name = "postgres";
  readonly statements: TStatements;
  // biome-ignore lint/suspicious/noExplicitAny: the adapter brings its own table
  readonly #db: Kysely<any>;
  readonly #queue: PooledStatementQueue;
  readonly #table: string;

  constructor({ db, table, statements, missingSchema, owner }: SqlDialectSettings<TStatements>) {
    super({ owner, missingSchema });
    this.#db = db;
    // Straight to a connection: the statements' rows are the adapter's own, so there is no
    // result for plugins to transform, and no layer of Kysely's to pass on the way.
    this.#queue = new PooledStatementQueue(db.getExecutor());
    this.#table = table;
    this.statements = statements;
  }

  ready(): TStatements {
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
   * serialized with a transaction-scoped advisory lock. READ COMMITTED whatever the session's
   * default: the DDL's existence checks (a trigger's) must see what an init() that held the lock
   * before committed, not a snapshot taken before the lock.
   */
  async createSchema(): Promise<void> {
    await this.#db
      .transaction()
      .setIsolationLevel("read committed")
      .execute(async (trx) => {
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
