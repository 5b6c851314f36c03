import type { Cluster, Redis } from "ioredis";
import {
  fromPttl,
  redisClientSchema,
  redisHashTag,
  redisSettings,
  toPx,
} from "../../../backends/redis/redis-client.js";
import { redisWaitQueue } from "../../../backends/redis/redis-wait-queue.js";
import { RedisWaits } from "../../../backends/redis/redis-waits.js";
import type { EntryClaimFields } from "../../../backends/wait-queue/wait-entry.js";
import type { WaitQueue } from "../../../backends/wait-queue/wait-queue.js";
import { badLimit } from "../../../primitive/slot-limit.js";
import { parseSettings, settingsObject } from "../../../settings/parse-settings.js";
import type { TimeSpan } from "../../../time-span/time-span.js";
import { durationTooLong } from "../../../time-span/time-span-schema.js";
import type {
  ISemaphoreAdapter,
  SemaphoreAcquireResult,
  SemaphoreAdapterState,
  SemaphoreWaitClaim,
  SemaphoreWaitResult,
} from "../../contracts/semaphore-adapter.js";
import {
  defineRedisSemaphoreCommands,
  type RedisSemaphoreCommands,
  type SemaphoreAcquireReply,
} from "./redis-semaphore-commands.js";

/**
 * Settings of {@link RedisSemaphoreAdapter}; its constructor also takes the client alone, for
 * `{ database: client }`.
 */
export type RedisSemaphoreAdapterSettings = {
  /** The client that runs the scripts. The adapter never closes it: it is yours. */
  database: RedisSemaphoreClient;
};

/** A standalone, Sentinel or Cluster ioredis client. */
export type RedisSemaphoreClient = Redis | Cluster;

const settingsSchema = settingsObject({ database: redisClientSchema });

const ADAPTER = "RedisSemaphoreAdapter";

/**
 * Semaphores in Redis: each operation is one script call (one round trip) on the server's clock
 * (`TIME`), and both keys of a semaphore share its hash tag, so it works on Redis Cluster. A
 * key's slots live in one hash (`{key}`: slot id, expiry, limit, token per slot, and the
 * fencing counter), which expires `FENCE_GRACE_MS` after its last slot; expired slots are
 * dropped by every script before it decides.
 *
 * Fencing tokens are `max(last token + 1, server time in µs)`, as the lock's: they grow across
 * release, expiry and force release, and across a restart of a Redis that keeps nothing, as
 * long as the server's clock does not go back.
 *
 * Blocking acquires queue their claim (slot id, limit, TTL) in `{key}:queue`, and a release, a
 * force release, or a waiter's check at a slot's expiry hands the free slots to the oldest
 * claims in the same script: first come, first served, and the first claim the limit rule does
 * not admit keeps the ones behind it waiting. The served wait is told on its adapter's channel
 * (`PUBLISH`), a wake-up only: it reads its grant from Redis. The messages arrive on one
 * subscriber connection per adapter, duplicated from the client when first needed, which
 * follows the client (see `RedisLockAdapter`).
 *
 * @example
 * const adapter = new RedisSemaphoreAdapter(new Redis("redis://127.0.0.1:6379"));
 */
export class RedisSemaphoreAdapter implements ISemaphoreAdapter {
  readonly #commands: RedisSemaphoreCommands;
  /** The waits under way, told of their hand-offs on the adapter's inbox channel. */
  readonly #waits: RedisWaits;

  /** `true`: a wait with a claim takes a free slot (or re-takes its own) at once. */
  readonly waitAcquires = true;

  /** `true`: a wait keeps its place while holders refresh, and is served at a slot's expiry. */
  readonly waitsPastExpiry = true;

  /** @throws InvalidArgumentError when no ioredis client is given. */
  constructor(settings: RedisSemaphoreClient | RedisSemaphoreAdapterSettings) {
    const { database } = parseSettings(
      `${ADAPTER} settings`,
      settingsSchema,
      redisSettings(settings),
    );
    this.#commands = defineRedisSemaphoreCommands(database);
    this.#waits = new RedisWaits(database, {
      adapter: ADAPTER,
      inboxPrefix: "hasp-semaphore-inbox",
    });
  }

  acquire(
    key: string,
    slotId: string,
    limit: number,
    ttl: TimeSpan | null,
  ): Promise<SemaphoreAcquireResult> {
    const slots = redisHashTag(key);
    const ttlArg = ttl === null ? "" : toPx(ttl);
    if (ttlArg === undefined) {
      return Promise.reject(durationTooLong(ADAPTER, "ttl", ttl));
    }
    const bad = badLimit(ADAPTER, limit);
    if (bad !== undefined) {
      return Promise.reject(bad);
    }
    return this.#commands
      .hasp_semaphore_acquire(slots, `${slots}:queue`, slotId, String(limit), ttlArg)
      .then(toAcquireResult);
  }

  release(key: string, slotId: string): Promise<boolean> {
    const slots = redisHashTag(key);
    return this.#commands.hasp_semaphore_release(slots, `${slots}:queue`, slotId).then(isOne);
  }

  forceReleaseAll(key: string): Promise<boolean> {
    const slots = redisHashTag(key);
    return this.#commands.hasp_semaphore_force_release_all(slots, `${slots}:queue`).then(isOne);
  }

  refresh(key: string, slotId: string, ttl: TimeSpan): Promise<boolean> {
    const slots = redisHashTag(key);
    const ttlArg = toPx(ttl);
    if (ttlArg === undefined) {
      return Promise.reject(durationTooLong(ADAPTER, "ttl", ttl));
    }
    return this.#commands
      .hasp_semaphore_refresh(slots, `${slots}:queue`, slotId, ttlArg)
      .then(isOne);
  }

  async getState(key: string, slotId: string): Promise<SemaphoreAdapterState | null> {
    const reply = await this.#commands.hasp_semaphore_get_state(redisHashTag(key), slotId);
    if (reply === null) {
      return null;
    }
    const [limit, acquiredSlotsCount, token, left] = reply;
    return {
      limit,
      acquiredSlotsCount,
      slot: token === "" ? null : { fencingToken: Number(token), remainingTime: fromPttl(left) },
    };
  }

  /**
   * Queues the wait in Redis (one script, which takes a free slot for the claim at once when
   * nobody is queued ahead). A release then hands free slots to the oldest claims.
   */
  waitForRelease(
    key: string,
    maxWait: TimeSpan,
    signal: AbortSignal,
    claim?: SemaphoreWaitClaim,
  ): Promise<SemaphoreWaitResult> {
    const bad = claim === undefined ? undefined : badLimit(ADAPTER, claim.limit);
    if (bad !== undefined) {
      return Promise.reject(bad);
    }
    return this.#waits.waitForRelease({
      maxWait,
      signal,
      claim:
        claim === undefined
          ? undefined
          : { owner: claim.slotId, ttl: claim.ttl, limit: claim.limit },
      queue: (fields) => this.#queue(key, fields),
    });
  }

  /** The key's queue for one wait whose entry holds `claim`. */
  #queue(key: string, claim: EntryClaimFields): WaitQueue {
    const slots = redisHashTag(key);
    const keys = [slots, `${slots}:queue`] as const;
    const commands = this.#commands;
    const inbox = this.#waits.channel;
    // A wait without a claim has no limit: the script checks its argument all the same.
    const limit = claim.limit === "" ? "1" : claim.limit;
    return redisWaitQueue({
      wait: (maxWait, waitId) =>
        commands.hasp_semaphore_wait(
          ...keys,
          claim.owner,
          claim.ttl,
          maxWait,
          inbox,
          waitId,
          limit,
        ),
      leave: (entry, mode) => commands.hasp_semaphore_leave(...keys, entry, claim.owner, mode),
      check: (entry, left, serve) =>
        commands.hasp_semaphore_check(...keys, entry, claim.owner, left, serve),
      release: () => commands.hasp_semaphore_release(...keys, claim.owner),
    });
  }

  /**
   * Closes the subscriber connection. Waits under way end at once, leaving the queue as an
   * aborted wait does (a slot handed to one meanwhile is given back), and fail with an error
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

function toAcquireResult(reply: SemaphoreAcquireReply): SemaphoreAcquireResult {
  if (typeof reply === "number") {
    return { acquired: true, fencingToken: reply };
  }
  const [limit, acquiredSlotsCount, soonest] = reply;
  return { acquired: false, limit, acquiredSlotsCount, remainingTime: fromPttl(soonest) };
}

function isOne(reply: number): boolean {
  return reply === 1;
}
