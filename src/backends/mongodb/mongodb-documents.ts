import type { Collection, Document } from "mongodb";
import { HaspError } from "../../errors/hasp-error.js";
import { upsertRetryingDuplicateKey } from "./mongodb-answers.js";
import {
  createReapIndex,
  type MongodbCollectionSettings,
  settingsCollection,
} from "./mongodb-collection.js";

/**
 * A MongoDB adapter's collection, one document per key, and the commands every primitive's
 * adapter sends the same way: each operation is one of them. Each adapter holds one (a delegate,
 * so the public class extends nothing) and keeps its documents' shape and their meaning.
 */
export class MongodbDocuments {
  readonly #collection: Collection<Document>;
  /** What the primitive is called in an error: `"lock"`, `"semaphore"`. */
  readonly #primitive: string;

  /**
   * @param adapter The adapter's class name, as its settings' errors name it.
   * @throws InvalidArgumentError unless exactly one of a Db and a Collection is given, or a setting is bad.
   */
  constructor(
    {
      adapter,
      primitive,
      defaultName,
    }: { adapter: string; primitive: string; defaultName: string },
    settings: MongodbCollectionSettings,
  ) {
    this.#collection = settingsCollection(`${adapter} settings`, settings, defaultName);
    this.#primitive = primitive;
  }

  /** The collection, for what only one primitive does with it. */
  get collection(): Collection<Document> {
    return this.#collection;
  }

  /**
   * Creates the TTL index (idempotent); the driver's failure becomes `error(cause)`, the
   * primitive's backend error.
   */
  async createReapIndex(error: (cause: unknown) => Error): Promise<void> {
    try {
      await createReapIndex(this.#collection);
    } catch (cause) {
      throw error(cause);
    }
  }

  /**
   * One upsert of `key`'s document by the update pipeline `update`, answering the document after
   * it through `projection` (once more on a duplicate key error: see upsertRetryingDuplicateKey).
   */
  upsert<TAnswer>(key: string, update: Document[], projection: Document): Promise<TAnswer> {
    return upsertRetryingDuplicateKey(async () => {
      const byKey: Document = { _id: key };
      const answer = await this.#collection.findOneAndUpdate(byKey, update, {
        upsert: true,
        returnDocument: "after",
        projection,
        includeResultMetadata: false,
      });
      if (answer === null) {
        // An upsert that returns the document after the update always returns one.
        throw new HaspError(
          `MongoDB ${this.#primitive} "${key}": findOneAndUpdate with upsert returned nothing`,
        );
      }
      return answer as unknown as TAnswer;
    });
  }

  /** One `updateOne`; whether a document matched `filter` (and so took `update`). */
  async update(filter: Document, update: Document | Document[]): Promise<boolean> {
    const result = await this.#collection.updateOne(filter, update);
    return result.matchedCount === 1;
  }

  /** One `findOne` through `projection`, on the primary; `null`: no document matched. */
  findOne<TAnswer extends Document>(
    filter: Document,
    projection: Document,
  ): Promise<TAnswer | null> {
    return this.#collection.findOne<TAnswer>(filter, {
      projection,
      // Whatever the collection's read preference: a secondary may not have seen the last write.
      readPreference: "primary",
    });
  }
}
