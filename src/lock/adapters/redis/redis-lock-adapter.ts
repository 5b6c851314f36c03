import { randomBytes } from "node:crypto";
import type { Cluster, Redis } from "ioredis";
import * as v from "valibot";
import { HaspError } from "../../../errors/hasp-error.js";
import type { InvalidArgumentError } from "../../../errors/invalid-argument-error.js";
import { followEnd } from "../../../lifecycle/end-listeners.js";
import { mustBe, parseSettings, settingsObject } from "../../../settings/parse-settings.js";
import { type ITimeSpan, TimeSpan } from "../../../time-span/time-span.js";
import {
  durationTooLong,
  MAX_DURATION_MS,
  nonNegativeTimeSpanSchema,
  storeMilliseconds,
} from "../../../time-span/time-span-schema.js";
import { delay, wholeMs } from "../../../timers/timers.js";
import type {
  ILockAdapter,
  LockAcquireResult,
  LockAdapterState,
  LockHandOff,
  LockWaitClaim,
} from "../../contracts/lock-adapter.js";
import {
  type LeaveMode,
  QueuedWaits,
  type QueueEntry,
  type WaitCheck,
  type WaitQueue,
} from "../queued-wait.js";
import {
  ACQUIRE_NOTING_SCRIPT,
  ACQUIRE_SCRIPT,
  CHECK_SCRIPT,
  FORCE_RELEASE_SCRIPT,
  GET_STATE_SCRIPT,
  LEAVE_SCRIPT,
  REFRESH_NOTING_SCRIPT,
  REFRESH_SCRIPT,
  RELEASE_SCRIPT,
  RESTORE_EXPIRY_SCRIPT,
  WAIT_SCRIPT,
} from "./redis-lock-scripts.js";

/** A standalone, Sentinel or Cluster ioredis client. */
export type RedisLockClient = Redis | Cluster;

/**
 * Whether the application closed `client`, or is closing it: between `quit()`'s answer and the
 * socket's close, ioredis still says "ready" but has marked the close as its user's.
 */
function isClosed(client: RedisLockClient): boolean {
  return (
    client.status === "end" ||
    (client as unknown as { manuallyClosing?: boolean }).manuallyClosing === true
  );
}

/**
 * Settings of {@link RedisLockAdapter}; its constructor also takes the client alone, for
 * `{ database: client }`.
 */
export type RedisLockAdapterSettings = {
  /** The client that runs the scripts. The adapter never closes it: it is yours. */
  database: RedisLockClient;
  /**
   * Make every grant (acquire, refresh) wait until `count` replicas acknowledged it, within
   * `timeout`, with `WAIT` in the same round trip (a pipeline). A grant that did not reach them
   * is undone and the call fails with a `RedisReplicaAckError`, so a failover cannot hand the
   * key to a second owner because the grant never reached the new primary. The undo puts back
   * what the grant replaced: a new hold is released, while a re-acquire or refresh of a live
   * hold only gets the hold's previous expiry back (same owner, same token). Costs the
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

/**
 * A noting script's answer: the script's own reply, and the owner's hold before it, its token
 * ("": none) and its expiry in ms of the server's clock (-1: never).
 */
type NotedReply<TReply> = [reply: TReply, token: string, expiry: number];

/** The scripts as ioredis commands on the client, once `defineCommand` registered them. */
type HaspLockCommands = {
  hasp_lock_acquire(hold: string, fence: string, owner: string, ttl: string): Promise<AcquireReply>;
  hasp_lock_release(hold: string, fence: string, queue: string, owner: string): Promise<number>;
  hasp_lock_force_release(hold: string, fence: string, queue: string): Promise<number>;
  /** The token when the key was taken at once, else the queue entry and the holder's PTTL. */
  hasp_lock_wait(
    hold: string,
    fence: string,
    queue: string,
    owner: string,
    ttl: string,
    maxWait: string,
    inbox: string,
    waitId: string,
  ): Promise<number | [entry: string, pttl: number]>;
  hasp_lock_leave(
    hold: string,
    fence: string,
    queue: string,
    entry: string,
    owner: string,
    mode: LeaveMode,
  ): Promise<number>;
  /** {1, token, pttl}: handed the key; {0, pttl, entry}: still queued (renewed); {-1, 0}: gone. */
  hasp_lock_check(
    hold: string,
    fence: string,
    queue: string,
    entry: string,
    owner: string,
    left: string,
    serve: "0" | "1",
  ): Promise<[state: number, value: number, third?: string | number]>;
  hasp_lock_refresh(hold: string, fence: string, owner: string, ttl: string): Promise<number>;
  hasp_lock_get_state(hold: string): Promise<[string, string, number] | null>;
  hasp_lock_acquire_noting(
    hold: string,
    fence: string,
    owner: string,
    ttl: string,
  ): Promise<NotedReply<AcquireReply>>;
  hasp_lock_refresh_noting(
    hold: string,
    fence: string,
    owner: string,
    ttl: string,
  ): Promise<NotedReply<number>>;
  hasp_lock_restore_expiry(
    hold: string,
    fence: string,
    owner: string,
    token: string,
    expiry: string,
  ): Promise<number>;
};

const COMMANDS = {
  hasp_lock_acquire: { numberOfKeys: 2, lua: ACQUIRE_SCRIPT },
  hasp_lock_release: { numberOfKeys: 3, lua: RELEASE_SCRIPT },
  hasp_lock_force_release: { numberOfKeys: 3, lua: FORCE_RELEASE_SCRIPT },
  hasp_lock_wait: { numberOfKeys: 3, lua: WAIT_SCRIPT },
  hasp_lock_leave: { numberOfKeys: 3, lua: LEAVE_SCRIPT },
  hasp_lock_check: { numberOfKeys: 3, lua: CHECK_SCRIPT },
  hasp_lock_refresh: { numberOfKeys: 2, lua: REFRESH_SCRIPT },
  hasp_lock_get_state: { numberOfKeys: 1, lua: GET_STATE_SCRIPT },
  hasp_lock_acquire_noting: { numberOfKeys: 2, lua: ACQUIRE_NOTING_SCRIPT },
  hasp_lock_refresh_noting: { numberOfKeys: 2, lua: REFRESH_NOTING_SCRIPT },
  hasp_lock_restore_expiry: { numberOfKeys: 2, lua: RESTORE_EXPIRY_SCRIPT },
} as const;

/** The keys of one lock, in the order the scripts take them. */
type LockKeys = readonly [hold: string, fence: string, queue: string];

/** The claim of a wait as WAIT_SCRIPT takes it: no owner and ttl "-" for a wait without one. */
type QueuedClaim = { readonly owner: string; readonly ttl: string };

/** Why a wait fails once the client ended: no subscriber may outlive it. */
const CLIENT_ENDED =
  "the Redis client has ended (quit, disconnected, or given up reconnecting): no wait can subscribe on it";

/** A wait without a claim: woken to try, never handed the key. */
const NO_CLAIM: QueuedClaim = { owner: "", ttl: "-" };

const settingsSchema = settingsObject({
  database: v.custom<RedisLockClient>(isClient, mustBe("an ioredis client (Redis or Cluster)")),
  waitForReplicas: v.optional(
    settingsObject({
      count: v.pipe(
        v.number(mustBe("a number")),
        v.safeInteger("must be an integer"),
        v.minValue(1, "must be at least 1"),
      ),
      timeout: nonNegativeTimeSpanSchema,
    }),
  ),
});

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
 * Blocking acquires queue their claim in Redis (`{key}:queue`), and a release hands the key to
 * the oldest claim still waiting, in the same script, then tells its adapter (`PUBLISH` on the
 * adapter's inbox channel): first come, first served, one message per hand-off. A message only
 * wakes the wait, which reads its grant from Redis (anyone may publish). A claim keeps its place
 * while the holder refreshes, and is served at the holder's expiry too. The messages arrive on
 * one subscriber connection per adapter, duplicated from the client when first needed. It
 * follows the client: when the client ends (`quit()`, `disconnect()`, or ioredis gives up
 * reconnecting), the subscriber is disconnected too and the waits under way end, so a process
 * that quit its client exits by itself without calling {@link close}.
 *
 * @example
 * const adapter = new RedisLockAdapter(new Redis("redis://127.0.0.1:6379"));
 */
export class RedisLockAdapter implements ILockAdapter {
  readonly #client: RedisLockClient;
  readonly #commands: HaspLockCommands;
  readonly #replicas: { count: number; timeoutMs: number } | undefined;
  /** The waits under way, told of their hand-offs on the adapter's inbox channel. */
  readonly #waits = new QueuedWaits();
  readonly #inboxChannel: string;
  /** SUBSCRIBE of the inbox, made before the first wait is queued. */
  #inboxSubscribed: Promise<unknown> | undefined;
  #subscriber: RedisLockClient | undefined;
  /** Stops ending the subscriber with the client (while there is a subscriber). */
  #unfollowClient: (() => void) | undefined;
  #closed = false;

  /** @throws InvalidArgumentError when no ioredis client is given, or a setting is bad. */
  constructor(settings: RedisLockClient | RedisLockAdapterSettings) {
    const { database, waitForReplicas } = parseSettings(
      "RedisLockAdapter settings",
      settingsSchema,
      isClient(settings) ? { database: settings } : settings,
    );
    this.#client = database;
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
    // Random, so that two adapters (processes) never share one: a message reaches one.
    this.#inboxChannel = `hasp-lock-inbox-${randomBytes(12).toString("hex")}`;
  }

  // acquire and release are the hot path: plain functions returning the client's promise plus
  // one `then` (an async function would add a promise and ticks to every lock operation).
  acquire(key: string, lockId: string, ttl: TimeSpan | null): Promise<LockAcquireResult> {
    const hold = redisHoldKey(key);
    const ttlArg = ttl === null ? "" : toPx(ttl);
    if (ttlArg === undefined) {
      return Promise.reject(tooLong("ttl", ttl));
    }
    if (this.#replicas === undefined) {
      return this.#commands
        .hasp_lock_acquire(hold, `${hold}:fence`, lockId, ttlArg)
        .then(toAcquireResult);
    }
    return this.#replicated<AcquireReply>(
      "acquire",
      [hold, `${hold}:fence`, lockId, ttlArg],
      (reply) => typeof reply === "number",
      key,
    ).then(toAcquireResult);
  }

  release(key: string, lockId: string): Promise<boolean> {
    const hold = redisHoldKey(key);
    return this.#commands
      .hasp_lock_release(hold, `${hold}:fence`, `${hold}:queue`, lockId)
      .then(isOne);
  }

  forceRelease(key: string): Promise<boolean> {
    const hold = redisHoldKey(key);
    return this.#commands
      .hasp_lock_force_release(hold, `${hold}:fence`, `${hold}:queue`)
      .then(isOne);
  }

  async refresh(key: string, lockId: string, ttl: TimeSpan): Promise<boolean> {
    const hold = redisHoldKey(key);
    const ttlArg = toPx(ttl);
    if (ttlArg === undefined) {
      throw tooLong("ttl", ttl);
    }
    const args = [hold, `${hold}:fence`, lockId, ttlArg] as const;
    const refreshed =
      this.#replicas === undefined
        ? await this.#commands.hasp_lock_refresh(...args)
        : await this.#replicated<number>("refresh", args, (reply) => reply === 1, key);
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

  /**
   * `true`: a wait with a claim takes a free key (or re-takes the claim's own hold) at once, so
   * a blocking acquire starts with it. Not with `waitForReplicas`, whose waits carry no claim.
   */
  get waitAcquires(): boolean {
    return this.#replicas === undefined;
  }

  /** `true`: a wait keeps its place while the holder refreshes, and is served at its expiry. */
  readonly waitsPastExpiry = true;

  /**
   * Queues the wait in Redis (one script, which takes a free key for the claim at once instead).
   * A release then hands the key to the oldest claim, or wakes the oldest wait without one
   * (with `waitForReplicas` every wait is without one: a hand-off is a grant that no `WAIT`
   * would cover, so the waiter takes the key with an acquire).
   */
  waitForRelease(
    key: string,
    maxWait: TimeSpan,
    signal: AbortSignal,
    claim?: LockWaitClaim,
  ): Promise<LockHandOff | undefined> {
    if (signal.aborted) {
      return Promise.reject(signal.reason);
    }
    if (!(maxWait.toMilliseconds() <= MAX_DURATION_MS)) {
      return Promise.reject(tooLong("maxWait", maxWait));
    }
    const claimTtl = claim === undefined || claim.ttl === null ? "" : toPx(claim.ttl);
    if (claimTtl === undefined) {
      return Promise.reject(tooLong("claim.ttl", claim?.ttl ?? null));
    }
    if (this.#closed) {
      // No new subscriber after close(): a waiter left over waits out its time.
      return delay(maxWait, signal).then(() => undefined);
    }
    const hold = redisHoldKey(key);
    const keys: LockKeys = [hold, `${hold}:fence`, `${hold}:queue`];
    const queued: QueuedClaim =
      claim === undefined || this.#replicas !== undefined
        ? NO_CLAIM
        : { owner: claim.lockId, ttl: claimTtl };
    return this.#waits.start(
      signal,
      maxWait.toMilliseconds(),
      this.#queue(keys, queued),
      this.#inbox(),
    );
  }

  /** The key's queue in Redis, for one wait: WAIT_SCRIPT, LEAVE_SCRIPT, CHECK_SCRIPT, RELEASE_SCRIPT. */
  #queue(keys: LockKeys, claim: QueuedClaim): WaitQueue {
    const [hold, fence, queue] = keys;
    const commands = this.#commands;
    return {
      join: (maxWaitMs, waitId) => {
        const asked = wholeMs(maxWaitMs);
        return commands
          .hasp_lock_wait(
            hold,
            fence,
            queue,
            claim.owner,
            claim.ttl,
            String(asked),
            this.#inboxChannel,
            waitId,
          )
          .then((reply) => {
            if (typeof reply === "number") {
              return reply;
            }
            const [entry, pttl] = reply;
            return holderLeft(entry, pttl);
          });
      },
      leave: (entry, mode) =>
        commands.hasp_lock_leave(hold, fence, queue, entry, claim.owner, mode),
      check: (entry, leftMs, serve) =>
        commands
          .hasp_lock_check(
            hold,
            fence,
            queue,
            entry,
            claim.owner,
            String(Math.ceil(leftMs)),
            serve ? "1" : "0",
          )
          .then(toWaitCheck),
      giveBack: () => commands.hasp_lock_release(hold, fence, queue, claim.owner),
    };
  }

  /** The inbox subscription, made once (again after a failure). */
  #inbox(): Promise<unknown> {
    if (this.#inboxSubscribed === undefined) {
      if (isClosed(this.#client)) {
        // A subscriber duplicated now would outlive the client the application closed.
        return Promise.reject(new Error(CLIENT_ENDED));
      }
      const subscribed = this.#subscriberConnection().subscribe(this.#inboxChannel);
      subscribed.catch(() => {
        if (this.#inboxSubscribed === subscribed) {
          this.#inboxSubscribed = undefined;
        }
      });
      this.#inboxSubscribed = subscribed;
    }
    return this.#inboxSubscribed;
  }

  /**
   * After the subscriber reconnected: messages published while it was away were lost, so every
   * wait asks Redis whether it was handed the key, once the inbox is subscribed again (this
   * SUBSCRIBE answers after ioredis's own resubscription on that connection).
   */
  #recheckWaits(subscriber: RedisLockClient): void {
    if (this.#waits.size === 0) {
      return;
    }
    subscriber.subscribe(this.#inboxChannel).then(
      () => this.#waits.checkAll(),
      // Failed again: the next reconnect asks, or the waits' deadlines end them.
      () => {},
    );
  }

  /**
   * With `waitForReplicas`: runs the operation's noting script with `WAIT` pipelined behind it
   * (one round trip). When a grant did not reach enough replicas it is undone, and this throws:
   * a new hold is released (and goes to the waits), a re-acquire or refresh of the owner's live
   * hold gets the hold's previous expiry back.
   */
  async #replicated<T>(
    operation: "acquire" | "refresh",
    args: readonly [hold: string, fence: string, owner: string, ttl: string],
    granted: (reply: T) => boolean,
    key: string,
  ): Promise<T> {
    const replicas = this.#replicas as { count: number; timeoutMs: number };
    const script =
      operation === "acquire" ? "hasp_lock_acquire_noting" : "hasp_lock_refresh_noting";
    const pipeline = this.#client.pipeline();
    // On a pipeline a defined command queues itself (and returns the pipeline).
    (pipeline as unknown as Record<string, (...args: unknown[]) => unknown>)[script]?.(...args);
    pipeline.wait(replicas.count, replicas.timeoutMs);
    const results = (await pipeline.exec()) ?? [];
    const [scriptError, noted] = results[0] ?? [new Error("empty pipeline reply"), undefined];
    if (scriptError) {
      throw scriptError;
    }
    const [waitError, acknowledged] = results[1] ?? [undefined, 0];
    if (waitError) {
      throw waitError;
    }
    const [reply, token, expiry] = noted as NotedReply<T>;
    if (granted(reply) && Number(acknowledged) < replicas.count) {
      const [hold, fence, owner] = args;
      if (token === "") {
        await this.release(key, owner);
      } else {
        await this.#commands.hasp_lock_restore_expiry(hold, fence, owner, token, String(expiry));
      }
      throw new RedisReplicaAckError(key, operation, Number(acknowledged), replicas.count);
    }
    return reply;
  }

  /**
   * Closes the subscriber connection. Waits under way end at once, leaving the queue (a key
   * already handed to one is its caller's); a later wait waits out its time without queueing.
   * The client stays open: it runs those last scripts.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const subscriber = this.#forgetSubscriber();
    const ending = this.#waits.closeAll();
    if (subscriber !== undefined) {
      await subscriber.quit().catch(() => subscriber.disconnect());
    }
    await ending;
  }

  /** Closes the adapter (`close()`), for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #subscriberConnection(): RedisLockClient {
    if (this.#subscriber === undefined) {
      const subscriber = this.#client.duplicate();
      subscriber.on("message", (_channel: string, message: string) => {
        this.#waits.heard(message);
      });
      // ioredis reconnects and resubscribes by itself; without a handler it prints each error.
      subscriber.on("error", () => {});
      let connected = false;
      subscriber.on("ready", () => {
        if (connected) {
          this.#recheckWaits(subscriber);
        }
        connected = true;
      });
      // Ended without us (ioredis gave up reconnecting): the next wait makes a new one.
      subscriber.once("end", () => {
        if (this.#subscriber === subscriber) {
          this.#forgetSubscriber();
        }
      });
      this.#unfollowClient = followEnd(this.#client, () => {
        if (this.#subscriber === subscriber) {
          this.#forgetSubscriber();
        }
        subscriber.disconnect();
        // Their messages can no longer come, nor their queue entries be left: they end now
        // (failing, as the client is closed) rather than hold the process until their time.
        void this.#waits.closeAll();
      });
      this.#subscriber = subscriber;
    }
    return this.#subscriber;
  }

  /** Lets go of the subscriber (without ending it) and of its listener on the client. */
  #forgetSubscriber(): RedisLockClient | undefined {
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    this.#inboxSubscribed = undefined;
    this.#unfollowClient?.();
    this.#unfollowClient = undefined;
    return subscriber;
  }
}

function toAcquireResult(reply: AcquireReply): LockAcquireResult {
  if (typeof reply === "number") {
    return { acquired: true, fencingToken: reply };
  }
  return { acquired: false, owner: reply[0], remainingTime: fromPttl(reply[1]) };
}

/** A check's answer: {1, token, pttl} granted, {0, pttl, entry} queued, {-1, 0} gone. */
function toWaitCheck([state, value, third]: [number, number, (string | number)?]): WaitCheck {
  if (state === 1) {
    const pttl = Number(third ?? -1);
    return pttl >= 0
      ? { state: "granted", fencingToken: value, remainingMs: pttl }
      : { state: "granted", fencingToken: value };
  }
  if (state === 0 && typeof third === "string") {
    return { state: "queued", ...holderLeft(third, value) };
  }
  return { state: "gone" };
}

/** A queued entry, with the holder's PTTL as the wait takes it (-1: never expires; -2: no hold). */
function holderLeft(entry: string, pttl: number): QueueEntry {
  if (pttl === -2) {
    return { entry };
  }
  return { entry, holderLeftMs: pttl < 0 ? Number.POSITIVE_INFINITY : pttl };
}

function isOne(reply: number): boolean {
  return reply === 1;
}

/**
 * A TTL as the whole milliseconds `PX`/`PEXPIRE` take (at least 1: 0 is an error there), or
 * `undefined` above MAX_DURATION_MS (a number comparison: this is every acquire's path).
 */
function toPx(ttl: TimeSpan): string | undefined {
  const ms = storeMilliseconds(ttl);
  return ms === undefined ? undefined : String(ms);
}

/** The error for a duration above the bound, passed to the adapter directly. */
function tooLong(field: string, span: TimeSpan | null): InvalidArgumentError {
  return durationTooLong("RedisLockAdapter", field, span);
}

function fromPttl(pttl: number): TimeSpan | null {
  return pttl < 0 ? null : TimeSpan.fromMilliseconds(pttl);
}
