import type { Collection, Db, Document } from "mongodb";
import { toNumber, toRemainingTime, toTtlMs } from "../../../backends/mongodb/mongodb-answers.js";
import { MongodbDocuments } from "../../../backends/mongodb/mongodb-documents.js";
import type { TimeSpan } from "../../../time-span/time-span.js";
import type {
  ILockAdapter,
  LockAcquireResult,
  LockAdapterState,
} from "../../contracts/lock-adapter.js";
import { LockBackendError } from "../../contracts/lock-errors.js";
import {
  acquireUpdate,
  expiringHoldOfOwner,
  HOLD_PROJECTION,
  liveHoldOf,
  liveHoldOfOwner,
  refreshUpdate,
  releaseUpdate,
} from "./mongodb-lock-queries.js";

/**
 * Settings of {@link MongodbLockAdapter}: a database (the adapter names the collection) or a
 * collection of your own. (Spelt out, not an alias of the internal MongodbCollectionSettings, so
 * that the API reference documents it.)
 */
export type MongodbLockAdapterSettings =
  | {
      /** The database that holds the collection (`client.db(name)`). The client stays yours. */
      database: Db;
      /**
       * The collection of the locks, one document per key.
       * @default "hasp_locks"
       */
      collectionName?: string;
    }
  | {
      /**
       * The collection of the locks, when you want to choose its options (write concern, …)
       * yourself. The client stays yours.
       */
      collection: Collection<Document>;
    };

const ADAPTER_NAME = "MongodbLockAdapter";

/** A hold as {@link HOLD_PROJECTION} returns it. */
type ProjectedHold = { owner: string; token: unknown; remainingMs: unknown };

/**
 * Locks in MongoDB: one document per key in one collection, `_id` being the key. Each
 * operation is one command (findOneAndUpdate, updateOne or findOne) on that document, and every
 * time is the server's `$$NOW`, so a client whose clock is off cannot take a live lock.
 *
 * Acquire is one upsert whose update pipeline takes the document only when it is free or
 * expired, and otherwise leaves it as it is and returns the holder; release, refresh and
 * forceRelease name the owner (or a live hold) in their filter, so they change nothing of
 * anyone else's hold. Fencing tokens are `max(last token + 1, server time in µs)`; a release keeps
 * the document and its token, and the TTL index created by {@link init} deletes a document only
 * 60 s after its hold ended.
 *
 * There is no release signal: blocking acquires retry at their interval, never sleeping past
 * the holder's remaining time.
 *
 * Needs MongoDB 4.4 or later (update pipelines with `$$NOW`, projections with expressions).
 *
 * @example
 * const adapter = new MongodbLockAdapter({ database: client.db("app") });
 * await adapter.init();
 */
export class MongodbLockAdapter implements ILockAdapter {
  readonly #documents: MongodbDocuments;

  /** @throws InvalidArgumentError unless exactly one of a Db and a Collection is given, or a setting is bad. */
  constructor(settings: MongodbLockAdapterSettings) {
    this.#documents = new MongodbDocuments(
      { adapter: ADAPTER_NAME, primitive: "lock", defaultName: "hasp_locks" },
      settings,
    );
  }

  /**
   * Creates the TTL index that deletes a document 60 s after its hold ended (released, or
   * expired). Idempotent; run it once at start-up or in a migration. Locks work without it, but
   * the documents of free keys then stay.
   *
   * @throws LockBackendError (`operation` `"init"`, the driver's error as `cause`) when the
   *   server fails or cannot be reached.
   */
  init(): Promise<void> {
    return this.#documents.createReapIndex((cause) => new LockBackendError("", "init", { cause }));
  }

  async acquire(key: string, lockId: string, ttl: TimeSpan | null): Promise<LockAcquireResult> {
    const ttlMs = ttl === null ? null : toTtlMs(ADAPTER_NAME, ttl);
    const hold = await this.#documents.upsert<ProjectedHold>(
      key,
      acquireUpdate(lockId, ttlMs),
      HOLD_PROJECTION,
    );
    if (hold.owner === lockId) {
      return { acquired: true, fencingToken: toNumber(hold.token) };
    }
    return { acquired: false, owner: hold.owner, remainingTime: toRemainingTime(hold.remainingMs) };
  }

  async release(key: string, lockId: string): Promise<boolean> {
    return this.#documents.update(liveHoldOfOwner(key, lockId), releaseUpdate());
  }

  async forceRelease(key: string): Promise<boolean> {
    return this.#documents.update(liveHoldOf(key), releaseUpdate());
  }

  async refresh(key: string, lockId: string, ttl: TimeSpan): Promise<boolean> {
    const ttlMs = toTtlMs(ADAPTER_NAME, ttl);
    return this.#documents.update(expiringHoldOfOwner(key, lockId), refreshUpdate(ttlMs));
  }

  async getState(key: string): Promise<LockAdapterState | null> {
    const hold = await this.#documents.findOne<ProjectedHold>(liveHoldOf(key), HOLD_PROJECTION);
    return hold === null
      ? null
      : {
          owner: hold.owner,
          fencingToken: toNumber(hold.token),
          remainingTime: toRemainingTime(hold.remainingMs),
        };
  }
}
