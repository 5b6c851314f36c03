/**
 * One MongoDB test file's client and collections (the lock's and the semaphore's adapter tests):
 * call it inside `describeWithBackend("mongodb", ...)`. Its fields are set before the file's own
 * `beforeAll` hooks run; every collection it makes is dropped, and every client closed, after all.
 */
import { type Collection, type Db, type Document, MongoClient } from "mongodb";
import { afterAll, beforeAll, expect } from "vitest";
import { uniqueName } from "./backends.js";

export type MongodbFixture = {
  /** The file's client, watching its commands (`monitorCommands`). */
  client: MongoClient;
  db: Db;
  /** The shared collection, made by `init` before the tests. */
  collection: Collection<Document>;
  /** Every client to close after all: add the ones a test makes. */
  readonly clients: MongoClient[];
  /** A collection of its own, dropped after all. */
  newCollection(label: string): Collection<Document>;
  /** The raw document of `key` in the shared collection, failing the test when there is none. */
  stored(key: string): Promise<Document>;
  /** The server's clock, in ms. */
  serverNow(): Promise<number>;
};

export function mongodbFixture(
  url: string,
  shared: { label: string; init: (collection: Collection<Document>) => Promise<unknown> },
): MongodbFixture {
  const collectionNames: string[] = [];
  const fixture: MongodbFixture = {
    client: undefined as unknown as MongoClient,
    db: undefined as unknown as Db,
    collection: undefined as unknown as Collection<Document>,
    clients: [],
    newCollection: (label) => {
      const name = uniqueName(label);
      collectionNames.push(name);
      return fixture.db.collection(name);
    },
    stored: async (key) => {
      const document = await fixture.collection.findOne({ _id: key } as Document);
      expect(document, `the document of ${key}`).not.toBeNull();
      return document ?? {};
    },
    serverNow: async () => {
      const { localTime } = await fixture.db.command({ hello: 1 });
      return (localTime as Date).getTime();
    },
  };

  beforeAll(async () => {
    fixture.client = new MongoClient(url, {
      serverSelectionTimeoutMS: 2_000,
      monitorCommands: true,
    });
    fixture.clients.push(fixture.client);
    await fixture.client.connect();
    fixture.db = fixture.client.db();
    fixture.collection = fixture.newCollection(shared.label);
    await shared.init(fixture.collection);
  });

  afterAll(async () => {
    await Promise.all(collectionNames.map((name) => fixture.db.collection(name).drop()));
    await Promise.all(fixture.clients.map((each) => each.close()));
  });

  return fixture;
}
