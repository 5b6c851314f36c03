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
import { NEVER_EXPIRES_TTL, NO_LIMIT } from "../../../backends/wait-queue/wait-entry.js";
import type { WaitQueue } from "../../../backends/wait-queue/wait-queue.js";
import { badLimit } from "../../../primitive/slot-limit.js";
import { parseSettings, settingsObject } from "../../../settings/parse-settings.js";
import type { TimeSpan } from "../../../time-span/time-span.js";
import { durationTooLong } from "../../../time-span/time-span-schema.js";
import type {
  ISharedLockAdapter,
  SharedLockAdapterState,
  SharedLockReaderAcquireResult,
  SharedLockWaitClaim,
  SharedLockWaitResult,
  SharedLockWriterAcquireResult,
} from "../../contracts/shared-lock-adapter.js";
import {
  defineRedisSharedLockCommands,
  type ReaderAcquireReply,
  type RedisSharedLockCommands,
  type WriterAcquireReply,
} from "./redis-shared-lock-commands.js";

/**
 * Settings of {@link RedisSharedLockAdapter}; its constructor also takes the client alone, for
 * `{ database: client }`.
 */
export type RedisSharedLockAdapterSettings = {
  /** The client that runs the scripts. The adapter never closes it: it is yours. */
  database: RedisSharedLockClient;
};

/** A standalone, Sentinel or Cluster ioredis client. */
export type RedisSharedLockClient = Redis | Cluster;

const settingsSchema = settingsObject({ database: redisClientSchema });

const ADAPTER = "RedisSharedLockAdapter";

/**
 * Shared (reader-writer) locks in Redis: each operation is one script call (one round trip) on
 * the server's clock (`TIME`), and both keys of a shared lock share its hash tag, so it works on
 * Redis Cluster. A key's writer and reader slots live in one hash (`{key}`: the writer's owner,
 * expiry and token, each reader slot's expiry, limit and token as the semaphore keeps them, and
 * the one fencing counter of both sides), which expires `FENCE_GRACE_MS` after its last member;
 * every script drops the expired writer and reader slots before it decides, so a crashed reader
 * keeps a writer out no longer than its TTL.
 *
 * Fencing tokens are `max(last token + 1, server time in µs)`, from one counter per key for
 * both sides: a writer's token is above every reader's before it.
 *
 * Blocking acquires queue their claim (side, lock id, limit, TTL) in `{key}:queue`, writers'
 * and readers' in arrival order, and a release, a force release, or a waiter's check at a
 * holder's expiry serves the oldest claims in the same script: the last reader out hands the
 * key to the writer at the head, and a writer's release admits together the readers queued
 * before the next writer. Once a writer's claim is queued no newcomer reader enters. The
 * served wait is told on its adapter's channel (`PUBLISH`), a wake-up only: it reads its grant
 * from Redis. The messages arrive on one subscriber connection per adapter, duplicated from
 * the client when first needed (see `RedisLockAdapter`).
 *
 * @example
 * const adapter = new RedisSharedLockAdapter(new Redis("redis://127.0.0.1:6379"));
 */
export class RedisSharedLockAdapter implements ISharedLockAdapter {
  readonly #commands: RedisSharedLockCommands;
  /** The waits under way, told of their hand-offs on the adapter's inbox channel. */
  readonly #waits: RedisWaits;

  /** `true`: a wait takes what it claims at once when an acquire would (or re-takes its own). */
  readonly waitAcquires = true;

  /** `true`: a wait keeps its place while holders refresh, and is served at their expiry. */
  readonly waitsPastExpiry = true;

  /** @throws InvalidArgumentError when no ioredis client is given. */
  constructor(settings: RedisSharedLockClient | RedisSharedLockAdapterSettings) {
    const { database } = parseSettings(
      `${ADAPTER} settings`,
      settingsSchema,
      redisSettings(settings),
    );
    this.#commands = defineRedisSharedLockCommands(database);
    this.#waits = new RedisWaits(database, {
      adapter: ADAPTER,
      inboxPrefix: "hasp-shared-lock-inbox",
    });
  }

  /** Records no intent: the queued writer claims hold newcomers back. */
  acquireWriter(
    key: string,
    lockId: string,
    ttl: TimeSpan | null,
    _intent: TimeSpan | null,
  ): Promise<SharedLockWriterAcquireResult> {
    const ttlArg = ttl === null ? NEVER_EXPIRES_TTL : toPx(ttl);
    if (ttlArg === undefined) {
      return Promise.reject(durationTooLong(ADAPTER, "ttl", ttl));
    }
    const hash = redisHashTag(key);
    return this.#commands
      .hasp_shared_lock_acquire_writer(hash, `${hash}:queue`, lockId, ttlArg)
      .then(toWriterResult);
  }

  releaseWriter(key: string, lockId: string): Promise<boolean> {
    const hash = redisHashTag(key);
    return this.#commands
      .hasp_shared_lock_release_writer(hash, `${hash}:queue`, lockId, "own")
      .then(isOne);
  }

  forceReleaseWriter(key: string): Promise<boolean> {
    const hash = redisHashTag(key);
    return this.#commands
      .hasp_shared_lock_release_writer(hash, `${hash}:queue`, "", "force")
      .then(isOne);
  }

  refreshWriter(key: string, lockId: string, ttl: TimeSpan): Promise<boolean> {
    return this.#refresh(key, lockId, "writer", ttl);
  }

  acquireReader(
    key: string,
    lockId: string,
    limit: number,
    ttl: TimeSpan | null,
  ): Promise<SharedLockReaderAcquireResult> {
    const ttlArg = ttl === null ? NEVER_EXPIRES_TTL : toPx(ttl);
    if (ttlArg === undefined) {
      return Promise.reject(durationTooLong(ADAPTER, "ttl", ttl));
    }
    const bad = badLimit(ADAPTER, limit);
    if (bad !== undefined) {
      return Promise.reject(bad);
    }
    const hash = redisHashTag(key);
    return this.#commands
      .hasp_shared_lock_acquire_reader(hash, `${hash}:queue`, lockId, String(limit), ttlArg)
      .then(toReaderResult);
  }

  releaseReader(key: string, lockId: string): Promise<boolean> {
    const hash = redisHashTag(key);
    return this.#commands
      .hasp_shared_lock_release_reader(hash, `${hash}:queue`, lockId)
      .then(isOne);
  }

  forceReleaseAllReaders(key: string): Promise<boolean> {
    const hash = redisHashTag(key);
    return this.#commands
      .hasp_shared_lock_force_release(hash, `${hash}:queue`, "readers")
      .then(isOne);
  }

  refreshReader(key: string, lockId: string, ttl: TimeSpan): Promise<boolean> {
    return this.#refresh(key, lockId, "reader", ttl);
  }

  forceRelease(key: string): Promise<boolean> {
    const hash = redisHashTag(key);
    return this.#commands.hasp_shared_lock_force_release(hash, `${hash}:queue`, "all").then(isOne);
  }

  async getState(key: string, lockId: string): Promise<SharedLockAdapterState | null> {
    const hash = redisHashTag(key);
    const reply = await this.#commands.hasp_shared_lock_get_state(hash, `${hash}:queue`, lockId);
    if (reply === null) {
      return null;
    }
    if (reply[0] === 1) {
      const [, owner, pttl, token] = reply;
      return {
        heldBy: "writer",
        owner,
        remainingTime: fromPttl(pttl),
        fencingToken: Number(token),
      };
    }
    const [, limit, acquiredSlotsCount, token, left, writerWaiting] = reply;
    return {
      heldBy: "readers",
      limit,
      acquiredSlotsCount,
      slot: token === "" ? null : { fencingToken: Number(token), remainingTime: fromPttl(left) },
      writerWaiting: writerWaiting === 1,
    };
  }

  /**
   * Queues the claim in Redis (one script, which takes the hold at once when an acquire would).
   * A release then hands the key or reader slots to the oldest claims.
   */
  waitForRelease(
    key: string,
    maxWait: TimeSpan,
    signal: AbortSignal,
    claim: SharedLockWaitClaim,
  ): Promise<SharedLockWaitResult> {
    const bad = claim.side === "reader" ? badLimit(ADAPTER, claim.limit) : undefined;
    if (bad !== undefined) {
      return Promise.reject(bad);
    }
    return this.#waits.waitForRelease({
      maxWait,
      signal,
      claim:
        claim.side === "reader"
          ? { owner: claim.lockId, ttl: claim.ttl, limit: claim.limit }
          : { owner: claim.lockId, ttl: claim.ttl },
      queue: (fields) => this.#queue(key, claim, fields.ttl),
    });
  }

  /** The key's queue for one wait of `claim` (its ttl field as the entry holds it). */
  #queue(key: string, claim: SharedLockWaitClaim, ttl: string): WaitQueue {
    const hash = redisHashTag(key);
    const keys = [hash, `${hash}:queue`] as const;
    const commands = this.#commands;
    const inbox = this.#waits.channel;
    const lockId = claim.lockId;
    const limit = claim.side === "reader" ? String(claim.limit) : NO_LIMIT;
    return redisWaitQueue({
      wait: (maxWait, waitId) =>
        commands.hasp_shared_lock_wait(...keys, lockId, ttl, maxWait, inbox, waitId, limit),
      leave: (entry, mode) => commands.hasp_shared_lock_leave(...keys, entry, lockId, mode),
      check: (entry, left, serve) =>
        commands.hasp_shared_lock_check(...keys, entry, lockId, left, serve),
      // A give-back releases the side the claim was for.
      release: () =>
        claim.side === "writer"
          ? commands.hasp_shared_lock_release_writer(...keys, lockId, "own")
          : commands.hasp_shared_lock_release_reader(...keys, lockId),
    });
  }

  /**
   * Closes the subscriber connection. Waits under way end at once, leaving the queue as an
   * aborted wait does (a hold handed to one meanwhile is given back), and fail with an error
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

  #refresh(
    key: string,
    lockId: string,
    side: "writer" | "reader",
    ttl: TimeSpan,
  ): Promise<boolean> {
    const ttlArg = toPx(ttl);
    if (ttlArg === undefined) {
      return Promise.reject(durationTooLong(ADAPTER, "ttl", ttl));
    }
    const hash = redisHashTag(key);
    return this.#commands
      .hasp_shared_lock_refresh(hash, `${hash}:queue`, lockId, side, ttlArg)
      .then(isOne);
  }
}

function toWriterResult(reply: WriterAcquireReply): SharedLockWriterAcquireResult {
  if (typeof reply === "number") {
    return { acquired: true, fencingToken: reply };
  }
  switch (reply[0]) {
    case 1:
      return {
        acquired: false,
        blockedBy: "writer",
        owner: reply[1],
        remainingTime: fromPttl(reply[2]),
      };
    case 2:
      return {
        acquired: false,
        blockedBy: "readers",
        acquiredSlotsCount: reply[1],
        remainingTime: fromPttl(reply[2]),
      };
    default:
      return { acquired: false, blockedBy: "waiters", remainingTime: null };
  }
}

function toReaderResult(reply: ReaderAcquireReply): SharedLockReaderAcquireResult {
  if (typeof reply === "number") {
    return { acquired: true, fencingToken: reply };
  }
  switch (reply[0]) {
    case 1:
      return {
        acquired: false,
        blockedBy: "writer",
        owner: reply[1],
        remainingTime: fromPttl(reply[2]),
      };
    case 2:
      return {
        acquired: false,
        blockedBy: "waiters",
        acquiredSlotsCount: reply[1],
        remainingTime: fromPttl(reply[2]),
      };
    default:
      return {
        acquired: false,
        blockedBy: "limit",
        limit: reply[1],
        acquiredSlotsCount: reply[2],
        remainingTime: fromPttl(reply[3]),
      };
  }
}

function isOne(reply: number): boolean {
  return reply === 1;
}
