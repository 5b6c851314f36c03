import { CompiledQuery, type DatabaseConnection, type Kysely, type QueryResult } from "kysely";
import { executeWithRetries } from "../execute-with-retries.js";
import { PooledStatementQueue } from "../pooled-statement-queue.js";
import {
  compiledQuery,
  type ISqlDialect,
  SqlDialectBase,
  type SqlDialectSettings,
} from "../sql-dialect.js";
import type { RunnableStatement, SqlSchemaStatements, SqlStatement } from "../sql-statement.js";
import type { MysqlServerOptions } from "./mysql-statement.js";

/**
 * `init()`: how long the pool may take to hand out a connection (see `#poolAnswers`); above
 * mysql2's default `connectTimeout`, 10 s.
 */
const POOL_ANSWER_MS = 15_000;
const MYSQL_PROMISE_POOL_HINT =
  'Is it a pool from "mysql2/promise"? Kysely\'s MysqlDialect needs the callback pool, createPool from "mysql2" (a promise pool never answers it). Otherwise the pool is exhausted, or its connectTimeout is above 15 s';

/** A statement to run prepared: its SQL, and how to prepare and execute it. */
type PreparedStatement = {
  readonly sql: string;
  readonly prepared: NonNullable<SqlStatement<never>["prepared"]>;
};

/** Per connection, the names of the statements prepared on it, which it keeps for its life. */
const preparedOn = new WeakMap<DatabaseConnection, Set<string>>();

/** How a MySQL dialect is made: its statements depend on the server (see `MysqlServerOptions`). */
export type MysqlSqlDialectSettings<TStatements> = Omit<
  SqlDialectSettings<TStatements>,
  "statements"
> & {
  /** The statements for a server of these options. */
  readonly statements: (options: MysqlServerOptions) => TStatements;
  /** The options the settings decided; the server's version decides the others. */
  readonly options: Partial<MysqlServerOptions>;
};

/**
 * MySQL and MariaDB: plain statements, prepared once per connection on MariaDB. Which the server
 * is decides the statements (`RETURNING`, prepared), so unless the settings decided both, the
 * first operation asks `SELECT VERSION()`.
 */
export class MysqlSqlDialect<TStatements extends SqlSchemaStatements>
  extends SqlDialectBase
  implements ISqlDialect<TStatements>
{
  readonly name = "mysql";
  // biome-ignore lint/suspicious/noExplicitAny: the adapter brings its own table
  readonly #db: Kysely<any>;
  readonly #queue: PooledStatementQueue;
  readonly #build: (options: MysqlServerOptions) => TStatements;
  /** The settings given, the server's version deciding the rest. */
  readonly #options: Partial<MysqlServerOptions>;
  /** Unset before the server's version was learned, unless the settings decided both. */
  #statements: TStatements | undefined;
  /** The question of the server's version, while it is asked. */
  #detecting: Promise<TStatements> | undefined;

  constructor({
    db,
    statements,
    missingSchema,
    owner,
    options,
  }: MysqlSqlDialectSettings<TStatements>) {
    super({ owner, missingSchema });
    this.#db = db;
    this.#queue = new PooledStatementQueue(db.getExecutor());
    this.#build = statements;
    this.#options = {
      returning: options.returning,
      // RETURNING on an upsert is MariaDB 10.5+, where EXECUTE takes values.
      prepared: options.prepared ?? (options.returning === true ? true : undefined),
    };
    const { returning, prepared } = this.#options;
    if (returning !== undefined && prepared !== undefined) {
      this.#statements = statements({ returning, prepared });
    }
  }

  get statements(): TStatements | undefined {
    return this.#statements;
  }

  ready(): TStatements | Promise<TStatements> {
    if (this.#statements !== undefined) {
      return this.#statements;
    }
    if (this.#detecting !== undefined) {
      return this.#detecting;
    }
    const detected = executeWithRetries<{ version: string }>(
      this,
      { sql: "SELECT VERSION() AS version" },
      [],
    ).then(({ rows }) => {
      const version = rows[0]?.version ?? "";
      const statements = this.#build({
        returning: this.#options.returning ?? isMariadbSince(version, 10, 5),
        prepared: this.#options.prepared ?? isMariadbSince(version, 10, 2),
      });
      this.#statements = statements;
      return statements;
    });
    this.#detecting = detected;
    // A failed detection (the server is down) is asked again by the next call, not before.
    detected.catch(() => {
      if (this.#detecting === detected) {
        this.#detecting = undefined;
      }
    });
    return detected;
  }

  execute<TRow>(
    statement: RunnableStatement,
    parameters: readonly unknown[],
  ): Promise<QueryResult<TRow>> {
    const prepared =
      statement.prepared === undefined ? undefined : (statement as PreparedStatement);
    const query = compiledQuery(statement, parameters, prepared?.prepared.execute);
    return this.#queue.run((connection) =>
      prepared === undefined
        ? connection.executeQuery(query)
        : executePrepared(connection, query, prepared),
    );
  }

  async createSchema(): Promise<void> {
    await this.#poolAnswers();
    const statements = await this.ready();
    for (const ddl of statements.createSchema) {
      await executeWithRetries(this, { sql: ddl }, []);
    }
  }

  /**
   * Whether the pool hands out a connection. Kysely's MysqlDialect asks the pool with
   * `getConnection(callback)`; a pool from `mysql2/promise` ignores the callback, so every
   * statement would wait forever. The pool is out of reach (Kysely keeps it private), so the
   * sign is the wait: mysql2's callback pool answers within its `connectTimeout` (10 s by
   * default), even with the server down.
   */
  async #poolAnswers(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const silent = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          this.owner.error("", "init", {
            cause: new Error(`the MySQL pool gave no connection in ${POOL_ANSWER_MS / 1000} s`),
            hint: MYSQL_PROMISE_POOL_HINT,
          }),
        );
      }, POOL_ANSWER_MS);
      // Not unref'd: init() is awaited, and must end with this answer rather than a silent exit.
    });
    try {
      await Promise.race([this.#db.getExecutor().provideConnection(async () => {}), silent]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Whether `SELECT VERSION()` names MariaDB of at least that version. MariaDB 10.5 added
 * `RETURNING` to `INSERT`, upserts included, and 10.2 values to `EXECUTE ... USING`; MySQL has
 * neither.
 */
function isMariadbSince(version: string, major: number, minor: number): boolean {
  const match = /^(\d+)\.(\d+)/.exec(version);
  if (!version.toLowerCase().includes("mariadb") || match === null) {
    return false;
  }
  const [actualMajor, actualMinor] = [Number(match[1]), Number(match[2])];
  return actualMajor > major || (actualMajor === major && actualMinor >= minor);
}

/**
 * MariaDB: runs a prepared statement (`query` is its `EXECUTE`), preparing it first on a
 * connection that has not yet. A connection that lost it (reset, or deallocated by another user
 * of the pool) answers that it does not know it, having run nothing: prepared again.
 */
async function executePrepared<TRow>(
  connection: DatabaseConnection,
  query: CompiledQuery,
  { sql, prepared: { name, prepare } }: PreparedStatement,
): Promise<QueryResult<TRow>> {
  let names = preparedOn.get(connection);
  if (names === undefined) {
    names = new Set();
    preparedOn.set(connection, names);
  }
  if (names.has(name)) {
    try {
      return await connection.executeQuery<TRow>(query);
    } catch (error) {
      if ((error as { code?: unknown }).code !== "ER_UNKNOWN_STMT_HANDLER") {
        throw error;
      }
      names.delete(name);
    }
  }
  await connection.executeQuery(CompiledQuery.raw(prepare, [sql]));
  names.add(name);
  return connection.executeQuery<TRow>(query);
}
