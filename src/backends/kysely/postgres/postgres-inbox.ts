/** The inbox's statements, run on its listening connection (`$1`: the inbox, `$2`: its secret). */
export type PostgresInboxStatements = {
  /** Keeps the inbox's secret (and drops the rows of listening backends gone). */
  readonly register: string;
  /** Drops the inbox's row. */
  readonly unregister: string;
};

/** What a `pg` notification carries. */
export type PgNotification = { channel: string; payload?: string | undefined };

/** The part of a connected `pg.Client` (or a client checked out of a `pg.Pool`) the listener uses. */
export type PgListenClient = {
  /** Runs `LISTEN` / `UNLISTEN`, and the inbox's registration (with `values`). */
  query(text: string, values?: unknown[]): Promise<unknown>;
  // pg declares its events with one generic signature: a loose one here accepts it (the
  // listeners below take what pg documents for "notification", "error" and "end").
  /** Subscribes to the connection's notifications, errors and end. */
  on(event: "notification" | "error" | "end", listener: (...args: never[]) => void): unknown;
  /** Unsubscribes what `on` subscribed. */
  // biome-ignore lint/suspicious/noExplicitAny: EventEmitter's own listener type
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
};

/**
 * The part of a `pg.Pool` the listener uses: it checks out one client and keeps it until the
 * pool is ended (`ending`), the adapter is closed, or the client fails.
 */
export type PgListenPool = {
  /** How many clients the pool holds (pg.Pool's own count). */
  readonly totalCount: number;
  /**
   * `true` once `end()` was called (pg.Pool's own flag): the listener then gives its client
   * back at once, as `end()` waits for every checked-out client. A pool without it cannot be
   * ended while the adapter listens: close the adapter first.
   */
  readonly ending?: boolean;
  /** Checks a client out; the listener keeps it until `close()` or until it fails. */
  connect(): Promise<
    PgListenClient & {
      /** Gives the client back to the pool (destroyed when it failed). */
      release(destroy?: boolean | Error): void;
    }
  >;
};

/** The listening connection of a Kysely adapter's `listener` setting: a pg.Pool or a connected pg.Client. */
export type PgListenConnection = PgListenClient | PgListenPool;

/** The table of the listening adapters' secrets, beside a primitive's table `table`. */
export function inboxes(table: string): string {
  return `"${table}:inboxes"`;
}

/**
 * The inbox's registration, on its listening connection: its secret, and the pid of that
 * connection's backend; the rows of backends gone (processes that died listening) go.
 */
export function inboxStatements(table: string): PostgresInboxStatements {
  const i = inboxes(table);
  return {
    // SKIP LOCKED: registrations at once (processes back after a restart) each sweep the rows
    // the others are not sweeping, rather than deadlock on them.
    register: `WITH gone AS (DELETE FROM ${i} WHERE inbox IN (SELECT g.inbox FROM ${i} AS g
  WHERE g.inbox <> $1 AND NOT EXISTS (SELECT FROM pg_stat_activity AS a WHERE a.pid = g.pid)
  FOR UPDATE SKIP LOCKED))
INSERT INTO ${i} (inbox, secret, pid) VALUES ($1, $2, pg_backend_pid())
ON CONFLICT (inbox) DO UPDATE SET secret = excluded.secret, pid = excluded.pid`,
    unregister: `DELETE FROM ${i} WHERE inbox = $1`,
  };
}

/** PostgreSQL's undefined_table. */
const UNDEFINED_TABLE = "42P01";

/**
 * No inboxes table: a registration dropped with it (`dropSchema()` before `close()`) has nothing
 * to drop, and one made for a schema without it has nothing to keep.
 */
function tableGone(error: unknown): void {
  if ((error as { code?: unknown } | null)?.code !== UNDEFINED_TABLE) {
    throw error;
  }
}

/**
 * Gives a pooled client back to its pool once: a connection lost while the inbox registers is
 * let go by `onLost`, and then by the failed query's catch (pg throws on a second release).
 */
function releaseOnce(
  pooled: Awaited<ReturnType<PgListenPool["connect"]>> | undefined,
): (destroy?: boolean) => void {
  let given = false;
  return (destroy) => {
    if (!given) {
      given = true;
      pooled?.release(destroy);
    }
  };
}

/** How often a listening client checked out of a pool looks whether the pool is ending (ms). */
const POOL_ENDING_CHECK_MS = 100;

type Listening = {
  readonly client: PgListenClient;
  /**
   * Gives the connection back: released to its pool (destroyed when `broken`: it may still
   * listen), or left to its owner (a pg.Client).
   */
  readonly giveBack: (broken?: boolean) => void;
  readonly detach: () => void;
};

/** What an inbox listens on, and whom it tells. */
export type PostgresInboxSettings = {
  readonly connection: PgListenConnection;
  /** The channel, the adapter's own. */
  readonly channel: string;
  /** The secret releases sign their grants with, registered with the channel. */
  readonly secret: string;
  readonly statements: PostgresInboxStatements;
  readonly onMessage: (payload: string) => void;
  /** The connection was lost: messages sent meanwhile were not heard. */
  readonly onLost: () => void;
};

/**
 * The adapter's inbox: one `LISTEN`, on a connection that does nothing else, on a channel of
 * the adapter's own, where releases tell its queued waits that they were handed the key or
 * woken. The same connection registers the channel's secret, which releases sign their grants
 * with (and drops it at close). A lost connection is reported (`onLost`).
 */
export class PostgresInbox {
  readonly #settings: PostgresInboxSettings;
  #listening: Promise<Listening> | undefined;
  #closed = false;
  /** A `pg.Client` given as the listener ended: it cannot come back (a pool's client can). */
  #clientLost = false;

  constructor(settings: PostgresInboxSettings) {
    this.#settings = settings;
  }

  get channel(): string {
    return this.#settings.channel;
  }

  /** Resolves once the channel is listened to (again, after a failure or a lost connection). */
  listen(): Promise<unknown> {
    if (this.#closed) {
      return Promise.reject(new Error("the listener is closed"));
    }
    if (this.#listening === undefined) {
      const listening = this.#connect();
      this.#listening = listening;
      // A failed LISTEN is seen by the waits awaiting it; the next wait tries again.
      listening.catch(() => {
        if (this.#listening === listening) {
          this.#listening = undefined;
        }
      });
    }
    return this.#listening;
  }

  /** Drops the registration, `UNLISTEN`s and gives the connection back. */
  async close(): Promise<void> {
    this.#closed = true;
    const listening = this.#listening;
    this.#listening = undefined;
    if (listening === undefined) {
      return;
    }
    const { client, giveBack, detach } = await listening.catch(() => ({
      client: undefined,
      giveBack: () => {},
      detach: () => {},
    }));
    detach();
    let broken = true;
    try {
      await client?.query(this.#settings.statements.unregister, [this.channel]).catch(tableGone);
      await client?.query(`UNLISTEN "${this.channel}"`);
      broken = false;
    } finally {
      giveBack(broken);
    }
  }

  async #connect(): Promise<Listening> {
    const { connection, channel, secret, statements } = this.#settings;
    const pooled = "totalCount" in connection ? await connection.connect() : undefined;
    if (pooled === undefined && this.#clientLost) {
      throw new Error(
        "the pg.Client given as the listener lost its connection and cannot LISTEN again (a pg.Pool listener reconnects)",
      );
    }
    const client = pooled ?? (connection as PgListenClient);
    const giveBack = releaseOnce(pooled);
    const onNotification = (message: PgNotification) => {
      if (message.channel === channel && message.payload !== undefined) {
        this.#settings.onMessage(message.payload);
      }
    };
    const onLost = () => {
      this.#listening = undefined;
      this.#clientLost ||= pooled === undefined;
      detach();
      giveBack(true);
      if (!this.#closed) {
        this.#settings.onLost();
      }
    };
    let poolWatch: ReturnType<typeof setInterval> | undefined;
    const detach = () => {
      clearInterval(poolWatch);
      client.removeListener("notification", onNotification);
      client.removeListener("error", onLost);
      client.removeListener("end", onLost);
    };
    client.on("notification", onNotification);
    client.on("error", onLost);
    client.on("end", onLost);
    try {
      // Without the table (dropped since init()), grants come unsigned and each wait asks; the
      // release's trigger names the missing table.
      await client.query(statements.register, [channel, secret]).catch(tableGone);
      await client.query(`LISTEN "${channel}"`);
    } catch (error) {
      detach();
      giveBack(true);
      throw error;
    }
    if (pooled !== undefined) {
      // pool.end() waits for every checked-out client and tells nobody: the client is given
      // back as soon as the pool is ending, so that the application's end() completes.
      const pool = connection as PgListenPool;
      poolWatch = setInterval(() => {
        if (pool.ending === true) {
          onLost();
        }
      }, POOL_ENDING_CHECK_MS);
      poolWatch.unref();
    }
    return { client, detach, giveBack };
  }
}
