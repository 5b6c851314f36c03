import type { Collection, Db, Document } from "mongodb";
import {
  toNumber,
  toRemainingTime,
  toTtlMs,
  upsertRetryingDuplicateKey,
} from "../../../backends/mongodb/mongodb-answers.js";
import {
  createReapIndex,
  settingsCollection,
} from "../../../backends/mongodb/mongodb-collection.js";
import { HaspError } from "../../../errors/hasp-error.js";
import type { TimeSpan } from "../../../time-span/time-span.js";
import type {
  ILockAdapter,
  LockAcquireResult,
  LockAdapterState,
} from "../../contracts/lock-adapter.js";
import { LockBackendError } from "../../contracts/lock-errors.js";
import {
  acquireUpdate,
  byKey,
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

const DEFAULT_COLLECTION_NAME = "hasp_locks";
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
  readonly #collection: Collection<Document>;

  /** @throws InvalidArgumentError unless exactly one of a Db and a Collection is given, or a setting is bad. */
  constructor(settings: MongodbLockAdapterSettings) {
    this.#collection = settingsCollection(
      `${ADAPTER_NAME} settings`,
      settings,
      DEFAULT_COLLECTION_NAME,
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
  async init(): Promise<void> {
    try {
      await createReapIndex(this.#collection);
    } catch (error) {
      throw new LockBackendError("", "init", { cause: error });
    }
  }

  async acquire(key: string, lockId: string, ttl: TimeSpan | null): Promise<LockAcquireResult> {
    const hold = await upsertRetryingDuplicateKey(() => this.#acquire(key, lockId, ttl));
    if (hold.owner === lockId) {
      return { acquired: true, fencingToken: toNumber(hold.token) };
    }
    return { acquired: false, owner: hold.owner, remainingTime: toRemainingTime(hold.remainingMs) };
  }

  async release(key: string, lockId: string): Promise<boolean> {
    const result = await this.#collection.updateOne(liveHoldOfOwner(key, lockId), releaseUpdate());
    return result.matchedCount === 1;
  }

  async forceRelease(key: string): Promise<boolean> {
    const result = await this.#collection.updateOne(liveHoldOf(key), releaseUpdate());
    return result.matchedCount === 1;
  }

  async refresh(key: string, lockId: string, ttl: TimeSpan): Promise<boolean> {
    const result = await this.#collection.updateOne(
      expiringHoldOfOwner(key, lockId),
      refreshUpdate(toTtlMs(ADAPTER_NAME, ttl)),
    );
    return result.matchedCount === 1;
  }

  async getState(key: string): Promise<LockAdapterState | null> {
    const hold = await this.#collection.findOne<ProjectedHold>(liveHoldOf(key), {
      projection: HOLD_PROJECTION,
      // Whatever the collection's read preference: a secondary may not have seen the last write.
      readPreference: "primary",
    });
    return hold === null
      ? null
      : {
          owner: hold.owner,
          fencingToken: toNumber(hold.token),
          remainingTime: toRemainingTime(hold.remainingMs),
        };
  }

  async #acquire(key: string, lockId: string, ttl: TimeSpan | null): Promise<ProjectedHold> {
    const hold = await this.#collection.findOneAndUpdate(
      byKey(key),
      acquireUpdate(lockId, ttl === null ? null : toTtlMs(ADAPTER_NAME, ttl)),
      {
        upsert: true,
        returnDocument: "after",
        projection: HOLD_PROJECTION,
        includeResultMetadata: false,
      },
    );
    if (hold === null) {
      // An upsert that returns the document after the update always returns one.
      throw new HaspError(`MongoDB lock "${key}": findOneAndUpdate with upsert returned nothing`);
    }
    return hold as unknown as ProjectedHold;
  }
}
