import { delay } from "../../../task/timers.js";
import type { TimeSpan } from "../../../time-span/time-span.js";

/** What a `pg` notification carries; the release statements send the key as the payload. */
export type PgNotification = { channel: string; payload?: string | undefined };

/** The part of a connected `pg.Client` (or a client checked out of a `pg.Pool`) the listener uses. */
export type PgListenClient = {
  /** Runs `LISTEN` / `UNLISTEN`. */
  query(text: string): Promise<unknown>;
  // pg declares its events with one generic signature: a loose one here accepts it (the
  // listeners below take what pg documents for "notification", "error" and "end").
  /** Subscribes to the connection's notifications, errors and end. */
  on(event: "notification" | "error" | "end", listener: (...args: never[]) => void): unknown;
  /** Unsubscribes what `on` subscribed. */
  // biome-ignore lint/suspicious/noExplicitAny: EventEmitter's own listener type
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
};

/** The part of a `pg.Pool` the listener uses: it checks out one client and keeps it. */
export type PgListenPool = {
  /** How many clients the pool holds (pg.Pool's own count). */
  readonly totalCount: number;
  /** Checks a client out; the listener keeps it until `close()` or until it fails. */
  connect(): Promise<
    PgListenClient & {
      /** Gives the client back to the pool (destroyed when it failed). */
      release(destroy?: boolean | Error): void;
    }
  >;
};

/** The listening connection of `KyselyLockAdapterSettings.listener`: a pg.Pool or a connected pg.Client. */
export type PgListenConnection = PgListenClient | PgListenPool;

type Listening = {
  readonly client: PgListenClient;
  /** Gives the connection back: released to its pool, or left to its owner (a pg.Client). */
  readonly giveBack: () => void;
  readonly detach: () => void;
};

/**
 * One `LISTEN` per adapter, on a connection that does nothing else, for PostgreSQL's release
 * notifications (sent by the release statements themselves). A notification wakes the longest
 * waiting waiter of this process for its key; a lost connection wakes every waiter, because a
 * release may have gone unheard.
 */
export class PostgresReleaseListener {
  readonly #connection: PgListenConnection;
  readonly #channel: string;
  readonly #waiters = new Map<string, Array<() => void>>();
  #listening: Promise<Listening> | undefined;
  #closed = false;
  /** A `pg.Client` given as the listener ended: it cannot come back (a pool's client can). */
  #clientLost = false;

  constructor(connection: PgListenConnection, channel: string) {
    this.#connection = connection;
    this.#channel = channel;
  }

  /**
   * Resolves on a release notification for `key`, after `maxWait`, or at once when `isFree`
   * says so once listening (a release before that was sent to nobody).
   */
  async wait(
    key: string,
    maxWait: TimeSpan,
    signal: AbortSignal,
    isFree: () => Promise<boolean>,
  ): Promise<void> {
    if (signal.aborted) {
      throw signal.reason;
    }
    if (this.#closed) {
      return delay(maxWait, signal);
    }
    const woken = new AbortController();
    let notified = false;
    const wake = () => {
      notified = true;
      woken.abort();
    };
    const onAbort = () => woken.abort(signal.reason);
    const queue = this.#waiters.get(key) ?? [];
    queue.push(wake);
    this.#waiters.set(key, queue);
    signal.addEventListener("abort", onAbort, { once: true });
    // The whole wait, the LISTEN included, is bounded by maxWait and the signal.
    const timeUp = delay(maxWait, woken.signal).catch((error: unknown) => {
      if (signal.aborted || !woken.signal.aborted) {
        throw signal.aborted ? signal.reason : error;
      }
    });
    try {
      const listening = await Promise.race([
        this.#listen().then(() => true),
        timeUp.then(() => false),
      ]);
      // A release before the LISTEN was sent to nobody: look at the key itself once.
      if (listening && !woken.signal.aborted && (await isFree())) {
        return;
      }
      await timeUp;
    } catch (error) {
      // A release woke this waiter, which leaves without trying the key: the next one must.
      if (notified) {
        this.wakeNext(key);
      }
      throw error;
    } finally {
      signal.removeEventListener("abort", onAbort);
      woken.abort(); // ends the timer when leaving early
      const index = queue.indexOf(wake);
      if (index !== -1) {
        queue.splice(index, 1);
      }
      if (queue.length === 0 && this.#waiters.get(key) === queue) {
        this.#waiters.delete(key);
      }
    }
  }

  /**
   * Wakes the longest waiting waiter of this process for `key`, as a release notification does.
   * For a release whose woken waiter could not take the key (its acquire failed), so that the
   * others do not sleep through a free key; a waiter woken for nothing tries once and waits again.
   */
  wakeNext(key: string): void {
    this.#waiters.get(key)?.shift()?.();
  }

  /** `UNLISTEN`s and gives the connection back; waiters left wait out their time. */
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
    try {
      await client?.query(`UNLISTEN "${this.#channel}"`);
    } finally {
      giveBack();
    }
  }

  #listen(): Promise<Listening> {
    if (this.#listening === undefined) {
      const listening = this.#connect();
      this.#listening = listening;
      // A failed LISTEN is seen by the waiters awaiting it; the next wait tries again.
      listening.catch(() => {
        if (this.#listening === listening) {
          this.#listening = undefined;
        }
      });
    }
    return this.#listening;
  }

  async #connect(): Promise<Listening> {
    const connection = this.#connection;
    const pooled = "totalCount" in connection ? await connection.connect() : undefined;
    if (pooled === undefined && this.#clientLost) {
      throw new Error(
        "the pg.Client given as the listener lost its connection and cannot LISTEN again (a pg.Pool listener reconnects)",
      );
    }
    const client = pooled ?? (connection as PgListenClient);
    const onNotification = (message: PgNotification) => {
      if (message.channel === this.#channel && message.payload !== undefined) {
        // One release, one waiter of this process: the others stay queued for the next one.
        this.wakeNext(message.payload);
      }
    };
    const onLost = () => {
      this.#listening = undefined;
      this.#clientLost ||= pooled === undefined;
      detach();
      pooled?.release(true);
      for (const queue of this.#waiters.values()) {
        for (const wake of queue.splice(0)) {
          wake();
        }
      }
    };
    const detach = () => {
      client.removeListener("notification", onNotification);
      client.removeListener("error", onLost);
      client.removeListener("end", onLost);
    };
    client.on("notification", onNotification);
    client.on("error", onLost);
    client.on("end", onLost);
    try {
      await client.query(`LISTEN "${this.#channel}"`);
    } catch (error) {
      detach();
      pooled?.release(true);
      throw error;
    }
    return { client, detach, giveBack: () => pooled?.release() };
  }
}
