import type { CompiledQuery, Kysely, QueryExecutor, QueryResult } from "kysely";

type Queued = {
  readonly query: CompiledQuery;
  readonly resolve: (result: QueryResult<never>) => void;
  readonly reject: (error: unknown) => void;
};

/**
 * SQLite: the statements of every adapter on one Kysely instance, in order, in batches. Kysely's
 * SQLite driver has one connection behind a mutex that wakes every waiting statement at each
 * unlock (all but one wait again), and each statement takes and gives back the connection. Here
 * the statements queued while a batch runs make the next batch, which takes the connection once
 * and runs them one after another, each committing on its own as before. Between batches the
 * connection goes back, so the application's own queries keep their turn. SQLite runs one
 * statement at a time anyway.
 */
export class SqliteStatementQueue {
  /** Per Kysely instance given to a SQLite adapter, so several adapters on it share one queue. */
  // biome-ignore lint/suspicious/noExplicitAny: any Kysely instance
  static readonly #queues = new WeakMap<Kysely<any>, SqliteStatementQueue>();

  /** The queue of the Kysely instance `kysely`, made on `executor` by its first adapter. */
  // biome-ignore lint/suspicious/noExplicitAny: any Kysely instance
  static of(kysely: Kysely<any>, executor: QueryExecutor): SqliteStatementQueue {
    let queue = SqliteStatementQueue.#queues.get(kysely);
    if (queue === undefined) {
      queue = new SqliteStatementQueue(executor);
      SqliteStatementQueue.#queues.set(kysely, queue);
    }
    return queue;
  }

  readonly #executor: QueryExecutor;
  #queued: Queued[] = [];
  #draining = false;

  private constructor(executor: QueryExecutor) {
    this.#executor = executor;
  }

  run<TRow>(query: CompiledQuery): Promise<QueryResult<TRow>> {
    return new Promise<QueryResult<TRow>>((resolve, reject) => {
      this.#queued.push({ query, resolve: resolve as Queued["resolve"], reject });
      if (!this.#draining) {
        void this.#drain();
      }
    });
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    while (this.#queued.length > 0) {
      const batch = this.#queued;
      this.#queued = [];
      try {
        await this.#executor.provideConnection(async (connection) => {
          for (const { query, resolve, reject } of batch) {
            try {
              resolve(await connection.executeQuery<never>(query));
            } catch (error) {
              reject(error);
            }
          }
        });
      } catch (error) {
        // No connection (the instance was destroyed): what is not answered yet did not run.
        for (const { reject } of batch) {
          reject(error);
        }
      }
    }
    this.#draining = false;
  }
}
