import type { DatabaseConnection, QueryExecutor, QueryResult } from "kysely";

/** One statement waiting for a connection: what it runs on it, and its caller's promise. */
type Queued = {
  readonly run: (connection: DatabaseConnection) => Promise<QueryResult<never>>;
  readonly resolve: (result: QueryResult<never>) => void;
  readonly reject: (error: unknown) => void;
};

/**
 * Statements a lane runs on one connection before giving it back to the pool, so the
 * application's own queries waiting for a connection keep their turn.
 */
const MAX_STATEMENTS_PER_LEASE = 8;

/** Requests for a connection under way at once, at most. */
const MAX_ASKING = 4;

/**
 * A server's statements on a Kysely pool (PostgreSQL, MySQL), in order. Taking a connection
 * from Kysely and giving it back is six async steps on every statement, so under load a
 * connection, once taken, runs the next queued statement too (a few, then it goes back).
 * A connection is asked for per few statements queued (as many as one lease runs), at most
 * `MAX_ASKING` at once: the statements still run on as many connections at once as the pool
 * gives, a cold pool opens a few at a time, and the application's own queries waiting for the
 * pool are behind at most those few requests. Alone, a statement takes and gives back its
 * connection as before. A failed statement gives its connection back (the pool checks it), and
 * a failed request for a connection fails every statement waiting: each would have asked the
 * same pool, and an unreachable server then fails them within one connect, not one after
 * another.
 */
export class PooledStatementQueue {
  readonly #executor: QueryExecutor;
  readonly #queued: Queued[] = [];
  /** The lanes waiting for a connection: one per lease's worth of queued statements. */
  #asking = 0;

  constructor(executor: QueryExecutor) {
    this.#executor = executor;
  }

  /** Runs `statement` on a connection of the pool, in turn. */
  run<TRow>(
    statement: (connection: DatabaseConnection) => Promise<QueryResult<TRow>>,
  ): Promise<QueryResult<TRow>> {
    return new Promise<QueryResult<TRow>>((resolve, reject) => {
      this.#queued.push({
        run: statement as Queued["run"],
        resolve: resolve as Queued["resolve"],
        reject,
      });
      this.#more();
    });
  }

  /**
   * Asks for a connection and runs queued statements on it. The last one's answer is given once
   * the connection is back in the pool, so its caller's next statement can take it again.
   */
  #lane(): void {
    this.#asking += 1;
    let connected = false;
    let last: (() => void) | undefined;
    this.#executor
      .provideConnection(async (connection) => {
        connected = true;
        this.#asking -= 1;
        last = await this.#drain(connection);
      })
      .then(
        () => last?.(),
        (error: unknown) => {
          if (connected) {
            // The connection failed to go back: the statements that ran keep their answers.
            last?.();
          } else {
            this.#asking -= 1;
            for (const failed of this.#queued.splice(0)) {
              failed.reject(error);
            }
          }
        },
      )
      .finally(() => this.#more());
  }

  /**
   * Runs queued statements on `connection`, a few at most (another lane takes the rest), and
   * answers each but the last, whose answer it returns. A failed statement ends the lease.
   */
  async #drain(connection: DatabaseConnection): Promise<(() => void) | undefined> {
    for (let ran = 1; ; ran++) {
      const next = this.#queued.shift();
      if (next === undefined) {
        return undefined;
      }
      this.#more();
      let result: QueryResult<never>;
      try {
        result = await next.run(connection);
      } catch (error) {
        return () => next.reject(error);
      }
      if (ran === MAX_STATEMENTS_PER_LEASE || this.#queued.length === 0) {
        return () => next.resolve(result);
      }
      next.resolve(result);
    }
  }

  /** Fewer lanes ask for a connection than the queued statements need: more do, a few at most. */
  #more(): void {
    while (
      this.#asking < MAX_ASKING &&
      this.#asking * MAX_STATEMENTS_PER_LEASE < this.#queued.length
    ) {
      this.#lane();
    }
  }
}
