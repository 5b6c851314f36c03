// Where a MongoDB adapter keeps its documents: every primitive's adapter is given a database
// (and names its collection) or a collection of the user's, and creates the same TTL index.

import type { Collection, Db, Document } from "mongodb";
import * as v from "valibot";
import { mustBe, parseSettings, settingsObject } from "../../settings/parse-settings.js";

/**
 * Settings of a MongoDB adapter: a database (the adapter names the collection) or a collection
 * of your own. Each primitive's adapter spells out the same union in its own settings type, with
 * its default name, so that the API reference documents it.
 */
export type MongodbCollectionSettings =
  | {
      /** The database that holds the collection (`client.db(name)`). The client stays yours. */
      database: Db;
      /** The collection's name; each adapter documents its default. */
      collectionName?: string;
    }
  | {
      /**
       * The collection, when you want to choose its options (write concern, …) yourself. The
       * client stays yours.
       */
      collection: Collection<Document>;
    };

const settingsSchema = v.pipe(
  settingsObject({
    database: v.optional(v.custom<Db>(isDb, mustBe("a mongodb Db (client.db(name))"))),
    collection: v.optional(
      v.custom<Collection<Document>>(isCollection, mustBe("a mongodb Collection")),
    ),
    collectionName: v.optional(
      v.pipe(
        v.string(mustBe("a string")),
        v.nonEmpty("must not be empty"),
        v.regex(/^[^$\0]*$/, 'must not contain "$" or NUL'),
        v.check((name) => !name.startsWith("system."), 'must not start with "system."'),
      ),
    ),
  }),
  v.forward(
    v.check(
      (settings) => (settings.database === undefined) !== (settings.collection === undefined),
      "give exactly one of database and collection",
    ),
    ["database"],
  ),
  v.forward(
    v.check(
      (settings) => settings.collection === undefined || settings.collectionName === undefined,
      "goes with database, not with collection",
    ),
    ["collectionName"],
  ),
);

/**
 * The collection the settings name, checked without a round trip.
 *
 * @param settingsName What the error message calls the settings (`"MongodbLockAdapter settings"`).
 * @throws InvalidArgumentError unless exactly one of a Db and a Collection is given, or a setting is bad.
 */
export function settingsCollection(
  settingsName: string,
  settings: MongodbCollectionSettings,
  defaultName: string,
): Collection<Document> {
  const { database, collection, collectionName } = parseSettings(
    settingsName,
    settingsSchema,
    settings,
  );
  return collection ?? (database as Db).collection(collectionName ?? defaultName);
}

function isDb(value: unknown): value is Db {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Db).collection === "function" &&
    typeof (value as Db).databaseName === "string"
  );
}

function isCollection(value: unknown): value is Collection<Document> {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Collection).findOneAndUpdate === "function" &&
    typeof (value as Collection).collectionName === "string"
  );
}

/**
 * How long a dead document (nothing held, or every hold expired) stays before the TTL index
 * deletes it. Fencing relies on it: a document's tokens are at most its server time in µs plus
 * the few issued within one µs, so a key whose document was deleted this long after its last
 * hold ended starts above them (see {@link nextToken}).
 */
export const REAP_GRACE_SECONDS = 60;

/**
 * The TTL index on `expiresAt`, a single date per document: when the last hold ends (null: a
 * hold never ends). It deletes documents {@link REAP_GRACE_SECONDS} after that.
 */
export const REAP_INDEX = {
  keys: { expiresAt: 1 },
  options: { expireAfterSeconds: REAP_GRACE_SECONDS },
} as const;

/** Creates {@link REAP_INDEX}; idempotent. The driver's error is thrown as it is. */
export async function createReapIndex(collection: Collection<Document>): Promise<void> {
  await collection.createIndex(REAP_INDEX.keys, REAP_INDEX.options);
}

/**
 * A new token after `lastToken` (an expression; missing or null when the key has none):
 * max(last + 1, server time in µs). The last token is kept in the document, and when the TTL
 * index deleted it (at least {@link REAP_GRACE_SECONDS} after its last hold ended) the server's
 * clock has moved far past it.
 */
export function nextToken(lastToken: string): Document {
  return {
    $max: [{ $add: [{ $ifNull: [lastToken, 0] }, 1] }, { $multiply: [{ $toLong: "$$NOW" }, 1000] }],
  };
}
