import type { Collection, Db, Document } from "mongodb";
import { toNumber, toRemainingTime, toTtlMs } from "../../../backends/mongodb/mongodb-answers.js";
import { MongodbDocuments } from "../../../backends/mongodb/mongodb-documents.js";
import { badLimit } from "../../../primitive/slot-limit.js";
import type { TimeSpan } from "../../../time-span/time-span.js";
import type {
  ISemaphoreAdapter,
  SemaphoreAcquireResult,
  SemaphoreAdapterState,
} from "../../contracts/semaphore-adapter.js";
import { SemaphoreBackendError } from "../../contracts/semaphore-errors.js";
import {
  acquireProjection,
  acquireUpdate,
  anyLiveSlot,
  byKey,
  expiringSlotOf,
  liveSlotOf,
  refreshUpdate,
  releaseAllUpdate,
  releaseUpdate,
  stateProjection,
} from "./mongodb-semaphore-queries.js";

/**
 * Settings of {@link MongodbSemaphoreAdapter}: a database (the adapter names the collection) or
 * a collection of your own. Give it a collection of its own, not the lock adapter's: both keep
 * one document per key, in different shapes.
 */
export type MongodbSemaphoreAdapterSettings =
  | {
      /** The database that holds the collection (`client.db(name)`). The client stays yours. */
      database: Db;
      /**
       * The collection of the semaphores, one document per key.
       * @default "hasp_semaphores"
       */
      collectionName?: string;
    }
  | {
      /**
       * The collection of the semaphores, when you want to choose its options (write concern,
       * …) yourself. The client stays yours.
       */
      collection: Collection<Document>;
    };

const ADAPTER_NAME = "MongodbSemaphoreAdapter";

/** The updated document as {@link acquireProjection} returns it. */
type ProjectedAcquire = {
  slotToken?: unknown;
  count: number;
  limit: unknown;
  remainingMs: unknown;
};

/** A document as {@link stateProjection} returns it. */
type ProjectedState = {
  state: {
    count: number;
    limit: unknown;
    slots: Array<{ token: unknown; remainingMs: unknown }>;
  };
};

/**
 * Semaphores in MongoDB: one document per key in one collection, `_id` being the key, holding
 * the key's slots (each with its holder, limit, token and expiry) and its last fencing token.
 * Each operation is one command (findOneAndUpdate, updateOne or findOne) on that document whose
 * update pipeline first drops the expired slots, and every time is the server's `$$NOW`, so a
 * client whose clock is off cannot take a slot beyond the limit.
 *
 * Acquire is one upsert whose update pipeline adds a slot only when the live slots number fewer
 * than the caller's limit and than every live slot's limit (the rule of `ISemaphoreAdapter`),
 * restarts the caller's own live slot, and otherwise changes nothing but the expired slots.
 * Fencing tokens are `max(last token + 1, server time in µs)`; the last one stays in the
 * document when its slots end, and the TTL index created by {@link init} deletes a document only
 * 60 s after its last slot ended.
 *
 * There is no release signal: blocking acquires retry at their interval, never sleeping past the
 * soonest slot's remaining time.
 *
 * A key's slots share one document, so each operation costs in proportion to the limit, and
 * the 16 MB document cap bounds the live slots of one key (about 100,000 with 64-character slot
 * ids).
 *
 * Needs MongoDB 4.4 or later (update pipelines with `$$NOW`, projections with expressions).
 *
 * @example
 * const adapter = new MongodbSemaphoreAdapter({ database: client.db("app") });
 * await adapter.init();
 */
export class MongodbSemaphoreAdapter implements ISemaphoreAdapter {
  readonly #documents: MongodbDocuments;

  /** @throws InvalidArgumentError unless exactly one of a Db and a Collection is given, or a setting is bad. */
  constructor(settings: MongodbSemaphoreAdapterSettings) {
    this.#documents = new MongodbDocuments(
      { adapter: ADAPTER_NAME, primitive: "semaphore", defaultName: "hasp_semaphores" },
      settings,
    );
  }

  /**
   * Creates the TTL index that deletes a document 60 s after its last slot ended (released, or
   * expired). Idempotent; run it once at start-up or in a migration. Semaphores work without
   * it, but the documents of unused keys then stay.
   *
   * @throws SemaphoreBackendError (`operation` `"init"`, the driver's error as `cause`) when the
   *   server fails or cannot be reached.
   */
  init(): Promise<void> {
    return this.#documents.createReapIndex(
      (cause) => new SemaphoreBackendError("", "init", { cause }),
    );
  }

  async acquire(
    key: string,
    slotId: string,
    limit: number,
    ttl: TimeSpan | null,
  ): Promise<SemaphoreAcquireResult> {
    const bad = badLimit(ADAPTER_NAME, limit);
    if (bad !== undefined) {
      throw bad;
    }
    const ttlMs = ttl === null ? null : toTtlMs(ADAPTER_NAME, ttl);
    const answer = await this.#documents.upsert<ProjectedAcquire>(
      key,
      acquireUpdate(slotId, limit, ttlMs),
      acquireProjection(slotId),
    );
    if (answer.slotToken !== undefined && answer.slotToken !== null) {
      return { acquired: true, fencingToken: toNumber(answer.slotToken) };
    }
    return {
      acquired: false,
      limit: Math.min(limit, toNumber(answer.limit)),
      acquiredSlotsCount: answer.count,
      remainingTime: toRemainingTime(answer.remainingMs),
    };
  }

  async release(key: string, slotId: string): Promise<boolean> {
    return this.#documents.update(liveSlotOf(key, slotId), releaseUpdate(slotId));
  }

  async forceReleaseAll(key: string): Promise<boolean> {
    return this.#documents.update(anyLiveSlot(key), releaseAllUpdate());
  }

  async refresh(key: string, slotId: string, ttl: TimeSpan): Promise<boolean> {
    const ttlMs = toTtlMs(ADAPTER_NAME, ttl);
    return this.#documents.update(expiringSlotOf(key, slotId), refreshUpdate(slotId, ttlMs));
  }

  async getState(key: string, slotId: string): Promise<SemaphoreAdapterState | null> {
    const document = await this.#documents.findOne<ProjectedState>(
      byKey(key),
      stateProjection(slotId),
    );
    if (document === null || document.state.count === 0) {
      return null;
    }
    const { count, limit, slots } = document.state;
    const own = slots[0];
    return {
      limit: toNumber(limit),
      acquiredSlotsCount: count,
      slot:
        own === undefined
          ? null
          : { fencingToken: toNumber(own.token), remainingTime: toRemainingTime(own.remainingMs) },
    };
  }
}
