import type { Collection, Db, Document } from "mongodb";
import { toNumber, toRemainingTime, toTtlMs } from "../../../backends/mongodb/mongodb-answers.js";
import { MongodbDocuments } from "../../../backends/mongodb/mongodb-documents.js";
import {
  anyLiveSlot,
  expiringSlotOf,
  liveSlotOf,
} from "../../../backends/mongodb/mongodb-slots.js";
import { badLimit } from "../../../primitive/slot-limit.js";
import type { TimeSpan } from "../../../time-span/time-span.js";
import type {
  ISharedLockAdapter,
  SharedLockAdapterState,
  SharedLockReaderAcquireResult,
  SharedLockWriterAcquireResult,
} from "../../contracts/shared-lock-adapter.js";
import { SharedLockBackendError } from "../../contracts/shared-lock-errors.js";
import {
  acquireReaderUpdate,
  acquireWriterUpdate,
  anyLiveHold,
  anyLiveWriter,
  byKey,
  expiringWriterOf,
  liveWriterOf,
  readerProjection,
  refreshReaderUpdate,
  refreshWriterUpdate,
  releaseAllReadersUpdate,
  releaseAllUpdate,
  releaseReaderUpdate,
  releaseWriterUpdate,
  stateProjection,
  writerProjection,
} from "./mongodb-shared-lock-queries.js";

/**
 * Settings of {@link MongodbSharedLockAdapter}: a database (the adapter names the collection) or
 * a collection of your own. Give it a collection of its own, not the lock's or the semaphore's
 * adapter's: each keeps one document per key, in different shapes.
 */
export type MongodbSharedLockAdapterSettings =
  | {
      /** The database that holds the collection (`client.db(name)`). The client stays yours. */
      database: Db;
      /**
       * The collection of the shared locks, one document per key.
       * @default "hasp_shared_locks"
       */
      collectionName?: string;
    }
  | {
      /**
       * The collection of the shared locks, when you want to choose its options (write
       * concern, …) yourself. The client stays yours.
       */
      collection: Collection<Document>;
    };

const ADAPTER_NAME = "MongodbSharedLockAdapter";

/** The updated document as {@link writerProjection} returns it. */
type ProjectedWriter = {
  writerId?: string;
  token?: unknown;
  writerMs?: unknown;
  count: number;
  readersMs?: unknown;
  intentMs?: unknown;
};

/** The updated document as {@link readerProjection} returns it. */
type ProjectedReader = {
  slotToken?: unknown;
  writerId?: string;
  writerMs?: unknown;
  count: number;
  limit?: unknown;
  readersMs?: unknown;
  intentMs?: unknown;
};

/** A document as {@link stateProjection} returns it. */
type ProjectedState = {
  state: {
    writerId?: string;
    writerMs?: unknown;
    token?: unknown;
    count: number;
    limit?: unknown;
    slots: Array<{ token: unknown; remainingMs: unknown }>;
    writerWaiting: boolean;
  };
};

/**
 * Shared (reader-writer) locks in MongoDB: one document per key in one collection, `_id` being
 * the key, holding the key's writer (lock id and expiry), its reader slots (each with its
 * holder, limit, token and expiry, as the semaphore keeps them), a waiting writer's intent and
 * the key's last fencing token, one counter for both sides. Each operation is one command
 * (findOneAndUpdate, updateOne or findOne) on that document whose update pipeline first drops
 * the expired writer and reader slots and a lapsed intent, so a crashed reader keeps a writer out
 * no longer than its TTL, whoever calls next; every time is the server's `$$NOW`.
 *
 * There is no release signal: blocking acquires retry at their interval, never sleeping past the
 * soonest hold's remaining time. A blocking writer's refused attempt records its intent in the
 * same command (its lock id and a deadline a little past its next attempt), and while it is
 * recorded no new reader enters and no other writer takes the key, so a stream of readers
 * cannot starve it; a writer that stops asking loses its place when the deadline passes.
 *
 * Fencing tokens are `max(last token + 1, server time in µs)`; the last one stays in the
 * document when its holds end, and the TTL index created by {@link init} deletes a document only
 * 60 s after its last hold ended.
 *
 * Needs MongoDB 4.4 or later (update pipelines with `$$NOW`, projections with expressions).
 *
 * @example
 * const adapter = new MongodbSharedLockAdapter({ database: client.db("app") });
 * await adapter.init();
 */
export class MongodbSharedLockAdapter implements ISharedLockAdapter {
  readonly #documents: MongodbDocuments;

  /** @throws InvalidArgumentError unless exactly one of a Db and a Collection is given, or a setting is bad. */
  constructor(settings: MongodbSharedLockAdapterSettings) {
    this.#documents = new MongodbDocuments(
      { adapter: ADAPTER_NAME, primitive: "shared lock", defaultName: "hasp_shared_locks" },
      settings,
    );
  }

  /**
   * Creates the TTL index that deletes a document 60 s after its last hold ended (released, or
   * expired). Idempotent; run it once at start-up or in a migration. Shared locks work without
   * it, but the documents of unused keys then stay.
   *
   * @throws SharedLockBackendError (`operation` `"init"`, the driver's error as `cause`) when the
   *   server fails or cannot be reached.
   */
  init(): Promise<void> {
    return this.#documents.createReapIndex(
      (cause) => new SharedLockBackendError("", "init", { cause }),
    );
  }

  async acquireWriter(
    key: string,
    lockId: string,
    ttl: TimeSpan | null,
    intent: TimeSpan | null,
  ): Promise<SharedLockWriterAcquireResult> {
    const ttlMs = ttl === null ? null : toTtlMs(ADAPTER_NAME, ttl);
    const intentMs = intent === null ? null : toTtlMs(ADAPTER_NAME, intent);
    const answer = await this.#documents.upsert<ProjectedWriter>(
      key,
      acquireWriterUpdate(lockId, ttlMs, intentMs),
      writerProjection(),
    );
    if (answer.writerId === lockId) {
      return { acquired: true, fencingToken: toNumber(answer.token) };
    }
    if (answer.writerId !== undefined && answer.writerId !== null) {
      return {
        acquired: false,
        blockedBy: "writer",
        owner: answer.writerId,
        remainingTime: toRemainingTime(answer.writerMs),
      };
    }
    if (answer.count > 0) {
      return {
        acquired: false,
        blockedBy: "readers",
        acquiredSlotsCount: answer.count,
        remainingTime: toRemainingTime(answer.readersMs),
      };
    }
    return {
      acquired: false,
      blockedBy: "waiters",
      remainingTime: toRemainingTime(answer.intentMs),
    };
  }

  async releaseWriter(key: string, lockId: string): Promise<boolean> {
    return this.#documents.update(liveWriterOf(key, lockId), releaseWriterUpdate());
  }

  async forceReleaseWriter(key: string): Promise<boolean> {
    return this.#documents.update(anyLiveWriter(key), releaseWriterUpdate());
  }

  async refreshWriter(key: string, lockId: string, ttl: TimeSpan): Promise<boolean> {
    const ttlMs = toTtlMs(ADAPTER_NAME, ttl);
    return this.#documents.update(expiringWriterOf(key, lockId), refreshWriterUpdate(ttlMs));
  }

  async acquireReader(
    key: string,
    lockId: string,
    limit: number,
    ttl: TimeSpan | null,
  ): Promise<SharedLockReaderAcquireResult> {
    const bad = badLimit(ADAPTER_NAME, limit);
    if (bad !== undefined) {
      throw bad;
    }
    const ttlMs = ttl === null ? null : toTtlMs(ADAPTER_NAME, ttl);
    const answer = await this.#documents.upsert<ProjectedReader>(
      key,
      acquireReaderUpdate(lockId, limit, ttlMs),
      readerProjection(lockId),
    );
    if (answer.slotToken !== undefined && answer.slotToken !== null) {
      return { acquired: true, fencingToken: toNumber(answer.slotToken) };
    }
    if (answer.writerId !== undefined && answer.writerId !== null) {
      return {
        acquired: false,
        blockedBy: "writer",
        owner: answer.writerId,
        remainingTime: toRemainingTime(answer.writerMs),
      };
    }
    const readersMs = answer.readersMs ?? null;
    if (answer.intentMs !== undefined && answer.intentMs !== null) {
      const intentMs = toNumber(answer.intentMs);
      return {
        acquired: false,
        blockedBy: "waiters",
        acquiredSlotsCount: answer.count,
        remainingTime: toRemainingTime(
          readersMs === null ? intentMs : Math.min(intentMs, toNumber(readersMs)),
        ),
      };
    }
    return {
      acquired: false,
      blockedBy: "limit",
      limit:
        answer.limit === undefined || answer.limit === null
          ? limit
          : Math.min(limit, toNumber(answer.limit)),
      acquiredSlotsCount: answer.count,
      remainingTime: toRemainingTime(readersMs),
    };
  }

  async releaseReader(key: string, lockId: string): Promise<boolean> {
    return this.#documents.update(liveSlotOf(key, lockId), releaseReaderUpdate(lockId));
  }

  async forceReleaseAllReaders(key: string): Promise<boolean> {
    return this.#documents.update(anyLiveSlot(key), releaseAllReadersUpdate());
  }

  async refreshReader(key: string, lockId: string, ttl: TimeSpan): Promise<boolean> {
    const ttlMs = toTtlMs(ADAPTER_NAME, ttl);
    return this.#documents.update(expiringSlotOf(key, lockId), refreshReaderUpdate(lockId, ttlMs));
  }

  async forceRelease(key: string): Promise<boolean> {
    return this.#documents.update(anyLiveHold(key), releaseAllUpdate());
  }

  async getState(key: string, lockId: string): Promise<SharedLockAdapterState | null> {
    const document = await this.#documents.findOne<ProjectedState>(
      byKey(key),
      stateProjection(lockId),
    );
    if (document === null) {
      return null;
    }
    const { writerId, writerMs, token, count, limit, slots, writerWaiting } = document.state;
    if (writerId !== undefined && writerId !== null) {
      return {
        heldBy: "writer",
        owner: writerId,
        remainingTime: toRemainingTime(writerMs),
        fencingToken: toNumber(token),
      };
    }
    if (count === 0) {
      return null;
    }
    const own = slots[0];
    return {
      heldBy: "readers",
      limit: toNumber(limit),
      acquiredSlotsCount: count,
      slot:
        own === undefined
          ? null
          : { fencingToken: toNumber(own.token), remainingTime: toRemainingTime(own.remainingMs) },
      writerWaiting,
    };
  }
}
