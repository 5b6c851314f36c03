import type { Cluster, Redis } from "ioredis";
import * as v from "valibot";
import {
  fromPttl,
  redisClientSchema,
  redisHashTag,
  redisSettings,
  toPx,
} from "../../../backends/redis/redis-client.js";
import { redisWaitQueue } from "../../../backends/redis/redis-wait-queue.js";
import { RedisWaits } from "../../../backends/redis/redis-waits.js";
import { type EntryClaimFields, NO_CLAIM } from "../../../backends/wait-queue/wait-entry.js";
import { HaspError } from "../../../errors/hasp-error.js";
import type { InvalidArgumentError } from "../../../errors/invalid-argument-error.js";
import { mustBe, parseSettings, settingsObject } from "../../../settings/parse-settings.js";
import type { ITimeSpan, TimeSpan } from "../../../time-span/time-span.js";
import { durationTooLong, nonNegativeTimeSpanSchema } from "../../../time-span/time-span-schema.js";
import type {
  ILockAdapter,
  LockAcquireResult,
  LockAdapterState,
  LockHandOff,
  LockWaitClaim,
} from "../../contracts/lock-adapter.js";
import {
  type AcquireReply,
  defineRedisLockCommands,
  type NotedReply,
  type RedisLockCommands,
} from "./redis-lock-commands.js";

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

const settingsSchema = settingsObject({
  database: redisClientSchema,
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

/** The Redis key of a lock's hold: the whole namespaced key is the hash tag. */
export const redisHoldKey = redisHashTag;

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
  readonly #commands: RedisLockCommands;
  readonly #replicas: { count: number; timeoutMs: number } | undefined;
  /** The waits under way, told of their hand-offs on the adapter's inbox channel. */
  readonly #waits: RedisWaits;

  /** @throws InvalidArgumentError when no ioredis client is given, or a setting is bad. */
  constructor(settings: RedisLockClient | RedisLockAdapterSettings) {
    const { database, waitForReplicas } = parseSettings(
      "RedisLockAdapter settings",
      settingsSchema,
      redisSettings(settings),
    );
    this.#client = database;
    this.#replicas =
      waitForReplicas === undefined
        ? undefined
        : {
            count: waitForReplicas.count,
            timeoutMs: Math.ceil(waitForReplicas.timeout.toMilliseconds()),
          };
    this.#commands = defineRedisLockCommands(database);
    this.#waits = new RedisWaits(database, {
      adapter: "RedisLockAdapter",
      inboxPrefix: "hasp-lock-inbox",
    });
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
    return this.#waits.waitForRelease({
      maxWait,
      signal,
      claim: claim === undefined ? undefined : { owner: claim.lockId, ttl: claim.ttl },
      queue: (fields) => this.#queue(key, this.#replicas === undefined ? fields : NO_CLAIM),
    });
  }

  /** The key's queue for one wait whose entry holds `claim` (the lock's scripts). */
  #queue(key: string, claim: EntryClaimFields) {
    const hold = redisHoldKey(key);
    const keys = [hold, `${hold}:fence`, `${hold}:queue`] as const;
    const commands = this.#commands;
    const inbox = this.#waits.channel;
    return redisWaitQueue({
      wait: (maxWait, waitId) =>
        commands.hasp_lock_wait(...keys, claim.owner, claim.ttl, maxWait, inbox, waitId),
      leave: (entry, mode) => commands.hasp_lock_leave(...keys, entry, claim.owner, mode),
      check: (entry, left, serve) =>
        commands.hasp_lock_check(...keys, entry, claim.owner, left, serve),
      release: () => commands.hasp_lock_release(...keys, claim.owner),
    });
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
   * Closes the subscriber connection. Waits under way end at once, leaving the queue as an
   * aborted wait does (a key handed to one meanwhile is given back), and fail with an error
   * naming close(); a later wait fails at once (no new subscriber).
   * The client stays open: it runs those last scripts.
   */
  async close(): Promise<void> {
    await this.#waits.close();
  }

  /** Closes the adapter (`close()`), for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
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

/** The error for a duration above the bound, passed to the adapter directly. */
function tooLong(field: string, span: TimeSpan | null): InvalidArgumentError {
  return durationTooLong("RedisLockAdapter", field, span);
}
