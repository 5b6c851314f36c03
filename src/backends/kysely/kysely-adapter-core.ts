import type { QueryResult } from "kysely";
import { executeWithRetries } from "./execute-with-retries.js";
import type { PgListenConnection } from "./postgres/postgres-inbox.js";
import { PostgresSqlDialect } from "./postgres/postgres-sql-dialect.js";
import { type PostgresQueueStatements, PostgresWaitQueue } from "./postgres/postgres-wait-queue.js";
import type { ISqlDialect, SqlSchemaOwner } from "./sql-dialect.js";
import {
  DEAD_ROW_GRACE_MS,
  type RunnableStatement,
  type SqlSchemaStatements,
  type SqlStatement,
} from "./sql-statement.js";
import { type SweepSettings, startSweep } from "./sweep.js";

/** What the core needs of a primitive's statements: its schema, and its dead rows' clean-up. */
export type KyselyCoreStatements = SqlSchemaStatements & {
  readonly removeExpired: SqlStatement<{ grace: number }>;
};

/** How a primitive's Kysely adapter makes its core. */
export type KyselyAdapterCoreSettings<
  TStatements extends KyselyCoreStatements,
  TQueueStatements extends TStatements & PostgresQueueStatements,
> = {
  /** Whose schema it is: the adapter's name and backend error. */
  readonly owner: SqlSchemaOwner;
  /** The dialect the adapter's constructor picked. */
  readonly dialect: ISqlDialect<TStatements> | PostgresSqlDialect<TQueueStatements>;
  /** The adapter's parsed settings: its sweep, and its `listener` (PostgreSQL only). */
  readonly settings: SweepSettings & { readonly listener?: PgListenConnection | undefined };
  /** The adapter's release, which the wait queue calls to give back a hold a gone wait was handed. */
  readonly release: (key: string, owner: string) => Promise<boolean>;
};

/**
 * What every primitive's Kysely adapter does the same way: its dialect, its sweep, its wait
 * queue (PostgreSQL with a `listener`), `init()`, `dropSchema()`, `removeExpired()`, `close()`
 * and sending one statement. Each adapter holds one (a delegate, so the public class extends
 * nothing) and keeps what differs: its rows' meaning and its documentation.
 */
export class KyselyAdapterCore<
  TStatements extends KyselyCoreStatements,
  TQueueStatements extends TStatements & PostgresQueueStatements = TStatements &
    PostgresQueueStatements,
> {
  readonly dialect: ISqlDialect<TStatements>;
  /** PostgreSQL with a `listener`: the queue waits join. */
  readonly waitQueue: PostgresWaitQueue | undefined;
  readonly #owner: SqlSchemaOwner;
  readonly #sweep: ReturnType<typeof setInterval> | undefined;

  constructor({
    owner,
    dialect,
    settings,
    release,
  }: KyselyAdapterCoreSettings<TStatements, TQueueStatements>) {
    this.#owner = owner;
    this.dialect = dialect;
    if (settings.listener !== undefined && dialect instanceof PostgresSqlDialect) {
      this.waitQueue = new PostgresWaitQueue({
        adapter: owner.adapter,
        listener: settings.listener,
        statements: dialect.statements,
        send: (statement, parameters, key) =>
          this.send(statement, parameters, "waitForRelease", key),
        release,
      });
    }
    this.#sweep = startSweep(owner.adapter, () => this.removeExpired(), settings);
  }

  /** Runs the schema's DDL; a failure becomes the owner's backend error, operation `"init"`. */
  async init(): Promise<void> {
    try {
      await this.dialect.createSchema();
    } catch (error) {
      throw this.#owner.isError(error) ? error : this.#owner.error("", "init", { cause: error });
    }
  }

  async dropSchema(): Promise<void> {
    for (const ddl of (await this.dialect.ready()).dropSchema) {
      await executeWithRetries(this.dialect, { sql: ddl }, []);
    }
  }

  /** @returns the affected-row count of `removeExpired`. */
  async removeExpired(): Promise<number> {
    const { removeExpired } = await this.dialect.ready();
    const result = await this.send(
      removeExpired,
      removeExpired.parameters({ grace: DEAD_ROW_GRACE_MS }),
      "removeExpired",
    );
    return Number(result.numAffectedRows ?? 0);
  }

  /** Stops the sweep, and ends the waits under way and the listener. */
  async close(): Promise<void> {
    clearInterval(this.#sweep);
    await this.waitQueue?.close();
  }

  /**
   * Runs one statement (its `EXECUTE`, when prepared: MariaDB), again on the transient failures
   * a lone statement can still meet; a missing table or procedure becomes the owner's backend
   * error that says to run `init()`. Not async itself: an operation awaits one frame, not two.
   */
  send<TRow = unknown>(
    statement: RunnableStatement,
    parameters: readonly unknown[],
    operation: string,
    key = "",
  ): Promise<QueryResult<TRow>> {
    return executeWithRetries<TRow>(this.dialect, statement, parameters, operation, key);
  }
}
