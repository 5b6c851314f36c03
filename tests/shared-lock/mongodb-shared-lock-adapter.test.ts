import { type CommandStartedEvent, type Document, MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { InvalidArgumentError } from "../../src/errors/invalid-argument-error.js";
import { MongodbSharedLockAdapter } from "../../src/shared-lock/adapters/mongodb/mongodb-shared-lock-adapter.js";
import {
  acquireReaderUpdate,
  acquireWriterUpdate,
  anyLiveHold,
  anyLiveWriter,
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
} from "../../src/shared-lock/adapters/mongodb/mongodb-shared-lock-queries.js";
import { SharedLockBackendError } from "../../src/shared-lock/contracts/shared-lock-errors.js";
import { sharedLockAdapterTestSuite } from "../../src/shared-lock/test-suites/shared-lock-adapter-test-suite.js";
import { sharedLockProviderTestSuite } from "../../src/shared-lock/test-suites/shared-lock-provider-test-suite.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { describeWithBackend, uniqueName } from "../harness/backends.js";
import { mongodbFixture } from "../harness/mongodb-fixture.js";

const UNREACHABLE_URL = "mongodb://127.0.0.1:1/hasp_unreachable";
const ttl = TimeSpan.fromSeconds(30);

describe("MongodbSharedLockAdapter without a server", () => {
  let client: MongoClient;

  beforeAll(() => {
    client = new MongoClient(UNREACHABLE_URL, { serverSelectionTimeoutMS: 200 });
  });

  afterAll(async () => {
    await client.close();
  });

  test("takes a Db or a Collection without a round trip, and names bad settings", () => {
    const db = client.db();
    expect(new MongodbSharedLockAdapter({ database: db })).toBeInstanceOf(MongodbSharedLockAdapter);
    expect(() => new MongodbSharedLockAdapter({} as never)).toThrow(
      /^Invalid MongodbSharedLockAdapter settings: database: give exactly one/,
    );
  });

  test("a limit that is not a whole number from 1 to 1,000,000 is refused before the backend", async () => {
    const adapter = new MongodbSharedLockAdapter({ database: client.db() });
    for (const limit of [0, 1.5, Number.NaN, 1_000_001]) {
      await expect(adapter.acquireReader("k", "a", limit, ttl)).rejects.toThrow(
        InvalidArgumentError,
      );
    }
  });

  test("a backend failure is thrown, never answered as 'held'", async () => {
    const adapter = new MongodbSharedLockAdapter({ database: client.db() });
    await expect(adapter.acquireWriter("k", "a", ttl, null)).rejects.toMatchObject({
      name: "MongoServerSelectionError",
    });
    await expect(adapter.acquireReader("k", "a", 2, ttl)).rejects.toThrow();
    await expect(adapter.releaseWriter("k", "a")).rejects.toThrow();
    await expect(adapter.getState("k", "a")).rejects.toThrow();
    const error = await adapter.init().catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(SharedLockBackendError);
    expect(error).toMatchObject({ operation: "init", key: "" });
  });
});

describe("MongodbSharedLockAdapter queries", () => {
  const all = (lockId: string) => [
    acquireWriterUpdate(lockId, 5_000, 1_000),
    acquireWriterUpdate(lockId, null, null),
    writerProjection(),
    acquireReaderUpdate(lockId, 3, 5_000),
    acquireReaderUpdate(lockId, 3, null),
    readerProjection(lockId),
    stateProjection(lockId),
    liveWriterOf("k", lockId),
    expiringWriterOf("k", lockId),
    anyLiveWriter("k"),
    anyLiveHold("k"),
    releaseWriterUpdate(),
    refreshWriterUpdate(5_000),
    releaseReaderUpdate(lockId),
    refreshReaderUpdate(lockId, 5_000),
    releaseAllReadersUpdate(),
    releaseAllUpdate(),
  ];

  test("carry no client time: every time is the server's $$NOW", () => {
    const dates: unknown[] = [];
    const walk = (value: unknown): void => {
      if (value instanceof Date) {
        dates.push(value);
      } else if (typeof value === "object" && value !== null) {
        Object.values(value).forEach(walk);
      }
    };
    walk(all("alice"));
    expect(dates).toEqual([]);
  });

  test("a lock id only ever appears as a $literal", () => {
    const keysOf = (tree: unknown, value: string, under = ""): string[] => {
      if (tree === value) {
        return [under];
      }
      if (typeof tree !== "object" || tree === null) {
        return [];
      }
      return Object.entries(tree).flatMap(([key, child]) =>
        keysOf(child, value, Array.isArray(tree) ? under : key),
      );
    };
    for (const lockId of ["$x", "$$CURRENT", "$$ROOT.owner"]) {
      const places = all(lockId).flatMap((query) => keysOf(query, lockId));
      expect(places.length).toBeGreaterThan(0);
      expect(new Set(places)).toEqual(new Set(["$literal"]));
    }
  });
});

describeWithBackend("mongodb", (url) => {
  const mongo = mongodbFixture(url, {
    label: "i21_mongo_shared_locks",
    init: (collection) => new MongodbSharedLockAdapter({ collection }).init(),
  });
  const { newCollection, stored, serverNow } = mongo;

  const newAdapter = () => new MongodbSharedLockAdapter({ collection: mongo.collection });

  describe("adapter conformance", () => {
    sharedLockAdapterTestSuite({
      createAdapter: newAdapter,
      keyPrefix: `${uniqueName("adapter")}:`,
    });
  });

  describe("provider conformance", () => {
    sharedLockProviderTestSuite({ createAdapter: newAdapter });
  });

  test("every operation is one command", async () => {
    const adapter = newAdapter();
    const { client, collection } = mongo;
    const key = uniqueName("commands");
    const seen: string[] = [];
    const listener = (event: CommandStartedEvent) => {
      if (event.command[event.commandName] === collection.collectionName) {
        seen.push(event.commandName);
      }
    };
    client.on("commandStarted", listener);
    const commandsOf = async (operation: () => Promise<unknown>) => {
      seen.length = 0;
      await operation();
      return [...seen];
    };
    try {
      const update = ["update"];
      const upsert = ["findAndModify"];
      expect(await commandsOf(() => adapter.acquireReader(key, "r", 2, ttl))).toEqual(upsert);
      expect(await commandsOf(() => adapter.acquireWriter(key, "w", ttl, ttl))).toEqual(upsert);
      expect(await commandsOf(() => adapter.refreshReader(key, "r", ttl))).toEqual(update);
      expect(await commandsOf(() => adapter.getState(key, "r"))).toEqual(["find"]);
      expect(await commandsOf(() => adapter.releaseReader(key, "r"))).toEqual(update);
      expect(await commandsOf(() => adapter.acquireWriter(key, "w", ttl, null))).toEqual(upsert);
      expect(await commandsOf(() => adapter.refreshWriter(key, "w", ttl))).toEqual(update);
      expect(await commandsOf(() => adapter.releaseWriter(key, "w"))).toEqual(update);
      expect(await commandsOf(() => adapter.forceReleaseWriter(key))).toEqual(update);
      expect(await commandsOf(() => adapter.forceReleaseAllReaders(key))).toEqual(update);
      expect(await commandsOf(() => adapter.forceRelease(key))).toEqual(update);
    } finally {
      client.off("commandStarted", listener);
    }
  });

  test("init creates the TTL index (60 s after the last hold ended) and can run again", async () => {
    const own = newCollection("init");
    const adapter = new MongodbSharedLockAdapter({ collection: own });
    await adapter.init();
    await adapter.init();
    const indexes = await own.listIndexes().toArray();
    expect(indexes.map((index) => index.key)).toEqual([{ _id: 1 }, { expiresAt: 1 }]);
    expect(indexes[1]).toMatchObject({ expireAfterSeconds: 60 });
  });

  test("{ database } uses the hasp_shared_locks collection by default", async () => {
    const adapter = new MongodbSharedLockAdapter({ database: mongo.db });
    const key = uniqueName("default-collection");
    await adapter.acquireWriter(key, "w", ttl, null);
    const collection = mongo.db.collection("hasp_shared_locks");
    try {
      expect(await collection.findOne({ _id: key } as Document)).toMatchObject({
        writer: { id: "w" },
      });
    } finally {
      await collection.deleteOne({ _id: key } as Document);
    }
  });

  test("one document per key: the writer, the reader slots, one token and the intent, by the server's clock", async () => {
    const adapter = newAdapter();
    const key = uniqueName("layout");
    const before = await serverNow();
    await adapter.acquireReader(key, "r", 2, ttl);
    await adapter.acquireWriter(key, "w", ttl, TimeSpan.fromSeconds(5));
    const reading = await stored(key);
    expect(reading).toMatchObject({
      writer: null,
      slots: [{ id: "r", limit: 2, token: reading.token }],
      intent: { id: "w" },
    });
    const until = (reading.intent.until as Date).getTime();
    expect(until).toBeGreaterThanOrEqual(before + 5_000);
    expect(until).toBeLessThanOrEqual((await serverNow()) + 5_000);
    // The document lives until the reader slot's end (later than the intent's).
    expect(reading.expiresAt).toEqual(reading.slots[0].expiresAt);
    await adapter.releaseReader(key, "r");
    const result = await adapter.acquireWriter(key, "w", null, null);
    const writing = await stored(key);
    expect(result).toEqual({ acquired: true, fencingToken: writing.token });
    expect(writing.token).toBeGreaterThan(reading.token);
    expect(writing).toMatchObject({
      writer: { id: "w", expiresAt: null },
      slots: [],
      intent: null,
    });
    expect(writing.expiresAt, "a writer that never expires keeps the document").toBeNull();
    const releasedAt = await serverNow();
    await adapter.releaseWriter(key, "w");
    const gone = await stored(key);
    expect(gone).toMatchObject({ writer: null, slots: [], token: writing.token });
    expect((gone.expiresAt as Date).getTime()).toBeGreaterThanOrEqual(releasedAt);
  });

  test("after any sequence of operations the TTL index could reap no live hold or intent, and the last token is kept", async () => {
    const adapter = newAdapter();
    const key = uniqueName("reap-invariant");
    const ids = ["a", "b", "c", "d"];
    const ttls = [
      TimeSpan.fromMilliseconds(30),
      TimeSpan.fromSeconds(5),
      TimeSpan.fromHours(1),
      null,
    ];
    let seed = 11;
    const next = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    let highest = 0;
    for (let step = 0; step < 150; step++) {
      const id = ids[next(ids.length)] as string;
      const hold = ttls[next(ttls.length)] ?? null;
      const operation = next(9);
      if (operation <= 1) {
        const result = await adapter.acquireReader(key, id, 2 + next(2), hold);
        if (result.acquired) {
          highest = Math.max(highest, result.fencingToken);
        }
      } else if (operation <= 3) {
        const intent = next(2) === 0 ? null : TimeSpan.fromMilliseconds(20 + next(200));
        const result = await adapter.acquireWriter(key, id, hold, intent);
        if (result.acquired) {
          highest = Math.max(highest, result.fencingToken);
        }
      } else if (operation === 4) {
        await (next(2) === 0 ? adapter.releaseReader(key, id) : adapter.releaseWriter(key, id));
      } else if (operation === 5) {
        const span = hold ?? TimeSpan.fromSeconds(5);
        await (next(2) === 0
          ? adapter.refreshReader(key, id, span)
          : adapter.refreshWriter(key, id, span));
      } else if (operation === 6 && step % 3 === 0) {
        const force = next(3);
        await (force === 0
          ? adapter.forceRelease(key)
          : force === 1
            ? adapter.forceReleaseWriter(key)
            : adapter.forceReleaseAllReaders(key));
      }
      const document = await mongo.collection.findOne({ _id: key } as Document);
      if (document === null) {
        expect(highest).toBe(0);
        continue;
      }
      const now = await serverNow();
      const label = `step ${step}: ${JSON.stringify(document)}`;
      const ends: Array<Date | null> = (document.slots as Document[]).map(
        (slot) => slot.expiresAt as Date | null,
      );
      if (document.writer !== null) {
        ends.push(document.writer.expiresAt as Date | null);
        expect(document.slots, `${label}: a writer is alone`).toEqual([]);
      }
      if (document.intent !== null) {
        ends.push(document.intent.until as Date);
      }
      const live = ends.filter((end) => end === null || end.getTime() > now);
      if (live.includes(null)) {
        expect(document.expiresAt, label).toBeNull();
      } else {
        for (const end of live) {
          expect((document.expiresAt as Date).getTime(), label).toBeGreaterThanOrEqual(
            (end as Date).getTime(),
          );
        }
      }
      expect(document.token, label).toBe(highest);
    }
    await adapter.forceRelease(key);
  });

  test("a lock id that looks like a field path is stored and compared as it is", async () => {
    const adapter = newAdapter();
    const key = uniqueName("literal");
    const writer = await adapter.acquireWriter(key, "$writer.id", ttl, null);
    expect(writer).toMatchObject({ acquired: true });
    expect(await adapter.acquireWriter(key, "$$CURRENT", ttl, null)).toMatchObject({
      blockedBy: "writer",
      owner: "$writer.id",
    });
    expect(await adapter.releaseWriter(key, "$$CURRENT")).toBe(false);
    expect(await adapter.releaseWriter(key, "$writer.id")).toBe(true);
    expect(await adapter.acquireReader(key, "$slots.id", 2, ttl)).toMatchObject({ acquired: true });
    expect(await adapter.getState(key, "$slots.id")).toMatchObject({
      heldBy: "readers",
      slot: { fencingToken: expect.any(Number) },
    });
    expect(await adapter.releaseReader(key, "$slots.id")).toBe(true);
  });
});
