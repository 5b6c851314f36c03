import type { Cluster, Redis } from "ioredis";
import { z } from "zod";
import { HaspError } from "../../../errors/hasp-error.js";
import { parseSettings } from "../../../errors/invalid-argument-error.js";
import { delay } from "../../../task/timers.js";
import { type ITimeSpan, TimeSpan } from "../../../time-span/time-span.js";
import { nonNegativeTimeSpanSchema } from "../../../time-span/time-span-schema.js";
import type {
  ILockAdapter,
  LockAcquireResult,
  LockAdapterState,
} from "../../contracts/lock-adapter.js";
import {
  ACQUIRE_SCRIPT,
  FORCE_RELEASE_SCRIPT,
  GET_STATE_SCRIPT,
  REFRESH_SCRIPT,
  RELEASE_SCRIPT,
} from "./redis-lock-scripts.js";

/** A standalone, Sentinel or Cluster ioredis client. */
export type RedisLockClient = Redis | Cluster;

/**
 * Settings of {@link RedisLockAdapter}; its constructor also takes the client alone, for
 * `{ database: client }`.
 */
export type RedisLockAdapterSettings = {
  /** The client that runs the scripts. The adapter never closes it: it is yours. */
  database: RedisLockClient;
  /**
   * How long a key's release subscription is kept after its last waiter left, so that a
   * steady stream of waiters does not subscribe and unsubscribe on every hand-off.
   * @default 5 seconds
   */
  subscriptionLinger?: ITimeSpan;
  /**
   * Make every grant (acquire, refresh) wait until `count` replicas acknowledged it, within
   * `timeout`, with `WAIT` in the same round trip (a pipeline). A grant that did not reach them
   * is undone and the call fails with a `RedisReplicaAckError`, so a failover cannot hand the
   * key to a second owner because the grant never reached the new primary. Costs the
   * replication delay on every acquire and refresh; releases do not wait (a lost release only
   * delays the next owner until the TTL).
   * @default off
   */
  waitForReplicas?: {
    /** How many replicas must acknowledge (`WAIT`'s `numreplicas`), at least 1. */
    count: number;
    /** How long `WAIT` may wait for them (`0` waits without limit). */
    timeout: ITimeSpan;
  };
};

/** A grant did not reach the replicas `waitForReplicas` asks for; it was undone. */
export class RedisReplicaAckError extends HaspError {
  override name = "RedisReplicaAckError" as const;

  constructor(
    /** The key as the adapter received it (namespaced). */
    readonly key: string,
    /** The grant that was undone. */
    readonly operation: "acquire" | "refresh",
    /** How many replicas acknowledged in time. */
    readonly acknowledged: number,
    /** How many `waitForReplicas.count` asks for. */
    readonly required: number,
  ) {
    super(
      `Redis lock "${key}": the ${operation} reached ${acknowledged} of ${required} replicas in time and was undone`,
    );
  }
}

/** The acquire script's answer: the token, or the holder and its PTTL. */
type AcquireReply = number | [owner: string, pttl: number];

/** The scripts as ioredis commands on the client, once `defineCommand` registered them. */
type HaspLockCommands = {
  hasp_lock_acquire(hold: string, fence: string, owner: string, ttl: string): Promise<AcquireReply>;
  hasp_lock_release(hold: string, fence: string, owner: string): Promise<number>;
  hasp_lock_force_release(hold: string, fence: string): Promise<number>;
  hasp_lock_refresh(hold: string, fence: string, owner: string, ttl: string): Promise<number>;
  hasp_lock_get_state(hold: string): Promise<[string, string, number] | null>;
};

const COMMANDS = {
  hasp_lock_acquire: { numberOfKeys: 2, lua: ACQUIRE_SCRIPT },
  hasp_lock_release: { numberOfKeys: 2, lua: RELEASE_SCRIPT },
  hasp_lock_force_release: { numberOfKeys: 2, lua: FORCE_RELEASE_SCRIPT },
  hasp_lock_refresh: { numberOfKeys: 2, lua: REFRESH_SCRIPT },
  hasp_lock_get_state: { numberOfKeys: 1, lua: GET_STATE_SCRIPT },
} as const;

type ChannelWaiters = {
  /** Waiters in arrival order; a release message wakes the first one. */
  readonly queue: Array<() => void>;
  readonly subscribed: Promise<unknown>;
  linger: ReturnType<typeof setTimeout> | undefined;
};

const settingsSchema = z
  .object({
    database: z.custom<RedisLockClient>(isClient, "must be an ioredis client (Redis or Cluster)"),
    subscriptionLinger: nonNegativeTimeSpanSchema.default(TimeSpan.fromSeconds(5)),
    waitForReplicas: z
      .object({
        count: z.number().int("must be an integer").min(1, "must be at least 1"),
        timeout: nonNegativeTimeSpanSchema,
      })
      .strict()
      .optional(),
  })
  .strict();

function isClient(value: unknown): value is RedisLockClient {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as RedisLockClient).defineCommand === "function"
  );
}

/** The Redis key of a lock's hold: the whole namespaced key is the hash tag. */
export function redisHoldKey(key: string): string {
  return `{${key}}`;
}

/**
 * Locks in Redis: each operation is one script call (one round trip), expiry is Redis's own
 * (`PEXPIRE`/`PTTL`), and the keys of a lock share a hash tag so it works on Redis Cluster.
 *
 * Fencing tokens are `max(last token + 1, server time in µs)`: they grow across release,
 * expiry and forceRelease, and across a restart of a Redis that keeps nothing, as long as the
 * server's clock does not go back. A failover to a replica that missed the last writes can hand
 * a key to a second owner (Redis replication is asynchronous); the fencing token is what lets
 * the protected resource refuse the stale one.
 *
 * Blocking acquires wait for a release message (`PUBLISH` in the release scripts) on one
 * subscriber connection per adapter, duplicated from the client when first needed and closed by
 * {@link close}; a message wakes the longest waiting waiter of this process for that key.
 *
 * @example
 * const adapter = new RedisLockAdapter(new Redis("redis://127.0.0.1:6379"));
 */
export class RedisLockAdapter implements ILockAdapter {
  readonly #client: RedisLockClient;
  readonly #commands: HaspLockCommands;
  readonly #lingerMs: number;
  readonly #replicas: { count: number; timeoutMs: number } | undefined;
  readonly #channels = new Map<string, ChannelWaiters>();
  #subscriber: RedisLockClient | undefined;
  #closed = false;

  /** @throws InvalidArgumentError when no ioredis client is given, or a setting is bad. */
  constructor(settings: RedisLockClient | RedisLockAdapterSettings) {
    const { database, subscriptionLinger, waitForReplicas } = parseSettings(
      "RedisLockAdapter settings",
      settingsSchema,
      isClient(settings) ? { database: settings } : settings,
    );
    this.#client = database;
    this.#lingerMs = subscriptionLinger.toMilliseconds();
    this.#replicas =
      waitForReplicas === undefined
        ? undefined
        : {
            count: waitForReplicas.count,
            timeoutMs: Math.ceil(waitForReplicas.timeout.toMilliseconds()),
          };
    for (const [name, definition] of Object.entries(COMMANDS)) {
      database.defineCommand(name, definition);
    }
    this.#commands = database as unknown as HaspLockCommands;
  }

  // acquire and release are the hot path: plain functions returning the client's promise plus
  // one `then` (an async function would add a promise and ticks to every lock operation).
  acquire(key: string, lockId: string, ttl: TimeSpan | null): Promise<LockAcquireResult> {
    const hold = redisHoldKey(key);
    const ttlArg = ttl === null ? "" : toPx(ttl);
    if (this.#replicas === undefined) {
      return this.#commands
        .hasp_lock_acquire(hold, `${hold}:fence`, lockId, ttlArg)
        .then(toAcquireResult, (error: unknown) => {
          // The caller may be a waiter woken by a release, now leaving without the key: the
          // next waiter of this process gets the wake-up, or it sleeps through a free key.
          this.#wakeNext(`${hold}:released`);
          throw error;
        });
    }
    return this.#withReplicas<AcquireReply>(
      "hasp_lock_acquire",
      [hold, `${hold}:fence`, lockId, ttlArg],
      (reply) => typeof reply === "number",
      async () => {
        await this.release(key, lockId);
        return "acquire";
      },
      key,
    ).then(toAcquireResult, (error: unknown) => {
      this.#wakeNext(`${hold}:released`);
      throw error;
    });
  }

  release(key: string, lockId: string): Promise<boolean> {
    const hold = redisHoldKey(key);
    return this.#commands.hasp_lock_release(hold, `${hold}:fence`, lockId).then(isOne);
  }

  forceRelease(key: string): Promise<boolean> {
    const hold = redisHoldKey(key);
    return this.#commands.hasp_lock_force_release(hold, `${hold}:fence`).then(isOne);
  }

  async refresh(key: string, lockId: string, ttl: TimeSpan): Promise<boolean> {
    const hold = redisHoldKey(key);
    const refreshed = await this.#withReplicas<number>(
      "hasp_lock_refresh",
      [hold, `${hold}:fence`, lockId, toPx(ttl)],
      (reply) => reply === 1,
      // A refresh that may be lost in a failover: the holder must not count on it.
      async () => "refresh",
      key,
    );
    return refreshed === 1;
  }

  async getState(key: string): Promise<LockAdapterState | null> {
    const reply = await this.#commands.hasp_lock_get_state(redisHoldKey(key));
    if (reply === null) {
      return null;
    }
    const [owner, token, pttl] = reply;
    return { owner, fencingToken: Number(token), remainingTime: fromPttl(pttl) };
  }

  async waitForRelease(key: string, maxWait: TimeSpan, signal: AbortSignal): Promise<void> {
    if (signal.aborted) {
      throw signal.reason;
    }
    if (this.#closed) {
      // No new subscriber after close(): a waiter left over waits out its time.
      return delay(maxWait, signal);
    }
    const hold = redisHoldKey(key);
    const channel = `${hold}:released`;
    const waiters = this.#waitersOf(channel);
    const woken = new AbortController();
    let notified = false;
    const wake = () => {
      notified = true;
      woken.abort();
    };
    const onAbort = () => woken.abort(signal.reason);
    waiters.queue.push(wake);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await waiters.subscribed;
      // A release that landed before the subscription (or before this waiter queued) sent its
      // message to nobody: look at the key itself once.
      if ((await this.#client.exists(hold)) === 0) {
        return;
      }
      await delay(maxWait, woken.signal).catch((error: unknown) => {
        if (signal.aborted || !woken.signal.aborted) {
          throw signal.aborted ? signal.reason : error;
        }
      });
    } catch (error) {
      // A release woke this waiter, which leaves without trying the key: the next one must.
      if (notified) {
        this.#wakeNext(channel);
      }
      throw error;
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.#leave(channel, waiters, wake);
    }
  }

  /** Wakes the longest waiting waiter of this process on `channel`, as a release message does. */
  #wakeNext(channel: string): void {
    this.#channels.get(channel)?.queue.shift()?.();
  }

  /**
   * Runs one script; with `waitForReplicas`, pipelines `WAIT` behind it (one round trip) and,
   * when a grant did not reach enough replicas, undoes it and throws.
   */
  async #withReplicas<T>(
    script: "hasp_lock_acquire" | "hasp_lock_refresh",
    args: ReadonlyArray<string | number>,
    granted: (reply: T) => boolean,
    undo: () => Promise<"acquire" | "refresh">,
    key: string,
  ): Promise<T> {
    const replicas = this.#replicas;
    if (replicas === undefined) {
      const command = this.#commands[script] as (...args: unknown[]) => Promise<T>;
      return command.apply(this.#commands, args as unknown[]);
    }
    const pipeline = this.#client.pipeline();
    // On a pipeline a defined command queues itself (and returns the pipeline).
    (pipeline as unknown as Record<string, (...args: unknown[]) => unknown>)[script]?.(...args);
    pipeline.wait(replicas.count, replicas.timeoutMs);
    const results = (await pipeline.exec()) ?? [];
    const [scriptError, reply] = results[0] ?? [new Error("empty pipeline reply"), undefined];
    if (scriptError) {
      throw scriptError;
    }
    const [waitError, acknowledged] = results[1] ?? [undefined, 0];
    if (waitError) {
      throw waitError;
    }
    if (granted(reply as T) && Number(acknowledged) < replicas.count) {
      const operation = await undo();
      throw new RedisReplicaAckError(key, operation, Number(acknowledged), replicas.count);
    }
    return reply as T;
  }

  /** Closes the subscriber connection (waiters then wait out their time). The client stays open. */
  async close(): Promise<void> {
    this.#closed = true;
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    for (const waiters of this.#channels.values()) {
      clearTimeout(waiters.linger);
    }
    this.#channels.clear();
    if (subscriber !== undefined) {
      await subscriber.quit().catch(() => subscriber.disconnect());
    }
  }

  #waitersOf(channel: string): ChannelWaiters {
    const existing = this.#channels.get(channel);
    if (existing !== undefined) {
      clearTimeout(existing.linger);
      existing.linger = undefined;
      return existing;
    }
    const subscriber = this.#subscriberConnection();
    const waiters: ChannelWaiters = {
      queue: [],
      subscribed: subscriber.subscribe(channel),
      linger: undefined,
    };
    // A failed SUBSCRIBE is seen by the waiters awaiting it; the entry goes with them.
    waiters.subscribed.catch(() => {
      if (this.#channels.get(channel) === waiters) {
        this.#channels.delete(channel);
      }
    });
    this.#channels.set(channel, waiters);
    return waiters;
  }

  #leave(channel: string, waiters: ChannelWaiters, wake: () => void): void {
    const index = waiters.queue.indexOf(wake);
    if (index !== -1) {
      waiters.queue.splice(index, 1);
    }
    if (waiters.queue.length > 0 || this.#channels.get(channel) !== waiters) {
      return;
    }
    waiters.linger = setTimeout(() => {
      if (waiters.queue.length === 0 && this.#channels.get(channel) === waiters) {
        this.#channels.delete(channel);
        this.#subscriber?.unsubscribe(channel).catch(() => {});
      }
    }, this.#lingerMs);
    waiters.linger.unref();
  }

  #subscriberConnection(): RedisLockClient {
    if (this.#subscriber === undefined) {
      const subscriber = this.#client.duplicate();
      subscriber.on("message", (channel: string) => {
        // One release, one waiter of this process: the others stay queued for the next one.
        this.#wakeNext(channel);
      });
      // ioredis reconnects and resubscribes by itself; without a handler it prints each error.
      subscriber.on("error", () => {});
      this.#subscriber = subscriber;
    }
    return this.#subscriber;
  }
}

function toAcquireResult(reply: AcquireReply): LockAcquireResult {
  if (typeof reply === "number") {
    return { acquired: true, fencingToken: reply };
  }
  return { acquired: false, owner: reply[0], remainingTime: fromPttl(reply[1]) };
}

function isOne(reply: number): boolean {
  return reply === 1;
}

/** A TTL as the whole milliseconds `PX`/`PEXPIRE` take (at least 1: 0 is an error there). */
function toPx(ttl: TimeSpan): string {
  return String(Math.max(1, Math.ceil(ttl.toMilliseconds())));
}

function fromPttl(pttl: number): TimeSpan | null {
  return pttl < 0 ? null : TimeSpan.fromMilliseconds(pttl);
}
