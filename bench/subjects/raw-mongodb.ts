// The MongoDB baseline: what a careful user writes with the driver alone, one command per step
// and the server's clock (`$$NOW`); an upsert cannot filter on `$expr`, so each take is a
// findOneAndUpdate whose update pipeline decides and whose answer says who holds. The lock: the
// key's document takes the caller as owner when it is missing or expired, `deleteOne` by key
// and owner releases. The semaphore: one document per key with its slots; the pipeline drops
// the expired ones and adds the caller while fewer than `limit` are live, `$pull` releases.
// 10 ms polling.

import { randomUUID } from "node:crypto";
import type { Collection, Document, MongoClient } from "mongodb";
import {
  benchDatabase,
  createCollection,
  createMongoClient,
  dropCollectionsStartingWith,
} from "../mongodb.js";
import type { LockClient, SubjectDefinition, SubjectEnvironment } from "../types.js";
import { POLL_MS, type PolledSteps, runPolled, tryPolled } from "./polled-section.js";

const LIVE_SLOTS = {
  $filter: {
    input: { $ifNull: ["$slots", []] },
    as: "slot",
    cond: { $gt: ["$$slot.expiresAt", "$$NOW"] },
  },
};

/** One upsert of the key's document by `update`; whether `mine` holds on the result. */
async function taken(
  collection: Collection<Document>,
  key: string,
  update: Document[],
  mine: Document,
): Promise<boolean> {
  const answer = await collection.findOneAndUpdate({ _id: key } as Document, update, {
    upsert: true,
    returnDocument: "after",
    projection: { _id: 0, mine },
  });
  return answer?.mine === true;
}

function rawClient(collection: Collection<Document>, env: SubjectEnvironment): LockClient {
  const expiry = { $add: ["$$NOW", env.ttlMs] };
  const take = (key: string, id: string) => {
    env.counters.attempts += 1;
    const free = { $not: [{ $gt: ["$expiresAt", "$$NOW"] }] };
    return taken(
      collection,
      key,
      [
        {
          $set: {
            owner: { $cond: [free, { $literal: id }, "$owner"] },
            expiresAt: { $cond: [free, expiry, "$expiresAt"] },
          },
        },
      ],
      { $eq: ["$owner", { $literal: id }] },
    );
  };
  const release = async (key: string, id: string) =>
    (await collection.deleteOne({ _id: key, owner: id } as Document)).deletedCount === 1;
  const takeSlot = (key: string, id: string, limit: number) => {
    env.counters.attempts += 1;
    const slot = { id: { $literal: id }, expiresAt: expiry };
    return taken(
      collection,
      key,
      [
        { $set: { slots: LIVE_SLOTS } },
        {
          $set: {
            slots: {
              $cond: [
                { $lt: [{ $size: "$slots" }, limit] },
                { $concatArrays: ["$slots", [slot]] },
                "$slots",
              ],
            },
          },
        },
      ],
      { $in: [{ $literal: id }, "$slots.id"] },
    );
  };
  /** One holder's attempt at a slot of `key`, and its release (the semaphore scenarios). */
  const slot = (key: string, limit: number): PolledSteps => {
    const full = `${env.prefix}:${key}`;
    const id = randomUUID();
    return {
      take: () => takeSlot(full, id, limit),
      release: () =>
        collection.updateOne(
          { _id: full } as Document,
          {
            $pull: { slots: { id } },
          } as Document,
        ),
    };
  };
  return {
    async tryAcquire(key) {
      const full = `${env.prefix}:${key}`;
      const id = randomUUID();
      return (await take(full, id)) ? { release: () => release(full, id) } : null;
    },
    runExclusive(key, section) {
      const full = `${env.prefix}:${key}`;
      const id = randomUUID();
      return runPolled("raw-mongodb", key, env, {
        take: () => take(full, id),
        release: () => release(full, id),
        section,
      });
    },
    runLimited(key, limit, section) {
      return runPolled("raw-mongodb", key, env, { ...slot(key, limit), section });
    },
    tryLimited: (key, limit) => tryPolled(slot(key, limit)),
  };
}

export const rawMongodb: SubjectDefinition = {
  name: "raw-mongodb",
  backend: "mongodb",
  baseline: true,
  description: `the mongodb driver alone (pool of 10 per client): findOneAndUpdate upsert whose pipeline takes a missing or expired document ($$NOW), deleteOne, ${POLL_MS} ms polling`,
  semaphore: `a document of slots per key: findOneAndUpdate upsert whose pipeline drops the expired slots and adds one below the limit ($$NOW), $pull, ${POLL_MS} ms polling`,
  async setup(env) {
    const url = env.mongodbUrl;
    if (url === undefined) {
      throw new Error("raw-mongodb needs MongoDB");
    }
    const name = `${env.tablePrefix}_raw`;
    const clients: MongoClient[] = [];
    let created: Promise<unknown> | undefined;
    return {
      async connect() {
        const client = createMongoClient(url, env.counters);
        clients.push(client);
        // Made once before any upsert: many upserts creating one collection at once crashed
        // the Windows mongod under Wine (an access violation after a namespace conflict).
        created ??= createCollection(benchDatabase(client), name);
        await created;
        return rawClient(benchDatabase(client).collection(name), env);
      },
      async close() {
        await Promise.all(clients.map((client) => client.close()));
        if (!env.keepTables) {
          await dropCollectionsStartingWith(url, name);
        }
      },
    };
  },
};
