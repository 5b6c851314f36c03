import { setTimeout as sleep } from "node:timers/promises";
import {
  type Collection,
  type CommandStartedEvent,
  type Db,
  type Document,
  MongoClient,
} from "mongodb";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { InvalidArgumentError } from "../../src/errors/invalid-argument-error.js";
import { MongodbLockAdapter } from "../../src/lock/adapters/mongodb/mongodb-lock-adapter.js";
import {
  acquireUpdate,
  byKey,
  expiringHoldOfOwner,
  HOLD_PROJECTION,
  liveHoldOf,
  liveHoldOfOwner,
  refreshUpdate,
  releaseUpdate,
} from "../../src/lock/adapters/mongodb/mongodb-lock-queries.js";
import { LockBackendError } from "../../src/lock/contracts/lock-errors.js";
import { LockProvider } from "../../src/lock/lock-provider.js";
import { lockAdapterTestSuite } from "../../src/lock/test-suites/lock-adapter-test-suite.js";
import { lockProviderTestSuite } from "../../src/lock/test-suites/lock-provider-test-suite.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { describeWithBackend, uniqueName } from "../harness/backends.js";
import { mongodbFixture } from "../harness/mongodb-fixture.js";

/** Nothing listens there: the driver fails to select a server, after `serverSelectionTimeoutMS`. */
const UNREACHABLE_URL = "mongodb://127.0.0.1:1/hasp_unreachable";

describe("MongodbLockAdapter without a server", () => {
  // The driver connects at the first command; constructing an adapter sends none.
  let client: MongoClient;

  beforeAll(() => {
    client = new MongoClient(UNREACHABLE_URL, { serverSelectionTimeoutMS: 200 });
  });

  afterAll(async () => {
    await client.close();
  });

  test("a Db or a Collection is accepted, without a round trip", () => {
    const db = client.db();
    expect(new MongodbLockAdapter({ database: db })).toBeInstanceOf(MongodbLockAdapter);
    expect(new MongodbLockAdapter({ database: db, collectionName: "locks" })).toBeInstanceOf(
      MongodbLockAdapter,
    );
    expect(new MongodbLockAdapter({ collection: db.collection("locks") })).toBeInstanceOf(
      MongodbLockAdapter,
    );
  });

  test("bad settings are refused with an InvalidArgumentError naming the field", () => {
    const db = client.db();
    const collection = db.collection("locks");
    const refused = (settings: unknown, message: RegExp) => {
      expect(() => new MongodbLockAdapter(settings as never)).toThrow(InvalidArgumentError);
      expect(() => new MongodbLockAdapter(settings as never)).toThrow(message);
    };
    refused(null, /^Invalid MongodbLockAdapter settings: must be an object, got null$/);
    refused({}, /database: give exactly one of database and collection/);
    refused({ database: db, collection }, /database: give exactly one of database and collection/);
    refused({ database: {} }, /database: must be a mongodb Db/);
    refused({ database: client }, /database: must be a mongodb Db/);
    refused({ collection: db }, /collection: must be a mongodb Collection/);
    refused({ database: db, collectionName: "" }, /collectionName: must not be empty/);
    refused({ database: db, collectionName: 42 }, /collectionName: must be a string/);
    refused({ database: db, collectionName: "a$b" }, /collectionName: must not contain "\$"/);
    refused({ database: db, collectionName: "system.x" }, /collectionName: must not start with/);
    refused({ collection, collectionName: "locks" }, /collectionName: goes with database/);
    refused({ database: db, ttl: 5 }, /ttl: unknown key/);
  });

  test("a backend failure is thrown, never answered as 'held by someone else'", async () => {
    const adapter = new MongodbLockAdapter({ database: client.db() });
    const ttl = TimeSpan.fromSeconds(5);
    await expect(adapter.acquire("k", "a", ttl)).rejects.toMatchObject({
      name: "MongoServerSelectionError",
    });
    await expect(adapter.release("k", "a")).rejects.toThrow();
    await expect(adapter.refresh("k", "a", ttl)).rejects.toThrow();
    await expect(adapter.forceRelease("k")).rejects.toThrow();
    await expect(adapter.getState("k")).rejects.toThrow();

    const lock = new LockProvider({ adapter }).create("k");
    const error = await lock.acquire().catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(LockBackendError);
    // The driver's error (after a failed first connection it reports its topology closed).
    expect((error as LockBackendError).cause).toMatchObject({
      name: expect.stringMatching(/^Mongo/),
    });
  });
});

describe("MongodbLockAdapter queries", () => {
  const ttlMs = 5_000;
  const all = (lockId: string) => [
    byKey("k"),
    acquireUpdate(lockId, ttlMs),
    acquireUpdate(lockId, null),
    liveHoldOf("k"),
    liveHoldOfOwner("k", lockId),
    expiringHoldOfOwner("k", lockId),
    releaseUpdate(),
    refreshUpdate(ttlMs),
    HOLD_PROJECTION,
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
    expect(JSON.stringify(acquireUpdate("alice", ttlMs))).toContain('"$$NOW"');
  });

  test("a lock id is a $literal in a pipeline and a plain equality in a filter", () => {
    /** The key each occurrence of `value` in `tree` stands under. */
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
    // In an aggregation expression a string starting with "$" is a field path or a variable.
    for (const lockId of ["$x", "$$CURRENT", "$owner.x"]) {
      expect(keysOf(acquireUpdate(lockId, ttlMs), lockId)).toEqual(["$literal", "$literal"]);
      expect(keysOf(liveHoldOfOwner("k", lockId), lockId)).toEqual(["owner"]);
      expect(keysOf(expiringHoldOfOwner("k", lockId), lockId)).toEqual(["owner"]);
    }
  });
});

describeWithBackend("mongodb", (url) => {
  const mongo = mongodbFixture(url, {
    label: "locks",
    init: (collection) => new MongodbLockAdapter({ collection }).init(),
  });
  const { clients, newCollection, stored, serverNow } = mongo;
  let client: MongoClient;
  let db: Db;
  let collection: Collection<Document>;

  beforeAll(() => {
    ({ client, db, collection } = mongo);
  });

  const newAdapter = () => new MongodbLockAdapter({ collection });

  describe("adapter conformance", () => {
    lockAdapterTestSuite({ createAdapter: newAdapter, keyPrefix: `${uniqueName("adapter")}:` });
  });

  describe("provider conformance", () => {
    lockProviderTestSuite({ createAdapter: newAdapter });
  });

  describe("MongoDB specifics", () => {
    const ttl = TimeSpan.fromSeconds(30);

    test("acquire, release, refresh, forceRelease and getState are one command each", async () => {
      const adapter = newAdapter();
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
        expect(await commandsOf(() => adapter.acquire(key, "a", ttl))).toEqual(["findAndModify"]);
        expect(await commandsOf(() => adapter.acquire(key, "b", ttl))).toEqual(["findAndModify"]);
        expect(await commandsOf(() => adapter.refresh(key, "a", ttl))).toEqual(["update"]);
        expect(await commandsOf(() => adapter.getState(key))).toEqual(["find"]);
        expect(await commandsOf(() => adapter.release(key, "a"))).toEqual(["update"]);
        await adapter.acquire(key, "a", ttl);
        expect(await commandsOf(() => adapter.forceRelease(key))).toEqual(["update"]);
      } finally {
        client.off("commandStarted", listener);
      }
    });

    test("init creates the TTL index (60 s after a hold ended) and can run again", async () => {
      const own = newCollection("init");
      const adapter = new MongodbLockAdapter({ collection: own });
      await adapter.init();
      await adapter.init();
      const indexes = await own.listIndexes().toArray();
      expect(indexes.map((index) => index.key)).toEqual([{ _id: 1 }, { expiresAt: 1 }]);
      expect(indexes[1]).toMatchObject({ expireAfterSeconds: 60 });
    });

    test("{ database } uses the hasp_locks collection by default, or collectionName", async () => {
      const name = newCollection("named").collectionName;
      const key = uniqueName("named");
      await new MongodbLockAdapter({ database: db, collectionName: name }).acquire(key, "a", ttl);
      expect(await db.collection(name).findOne({ _id: key } as Document)).toMatchObject({
        owner: "a",
      });

      const byDefault = new MongodbLockAdapter({ database: db });
      await byDefault.acquire(key, "a", ttl);
      try {
        expect(await db.collection("hasp_locks").findOne({ _id: key } as Document)).toMatchObject({
          owner: "a",
        });
      } finally {
        await db.collection("hasp_locks").deleteOne({ _id: key } as Document);
      }
    });

    test("a hold is one document: owner, token and an expiry by the server's clock", async () => {
      const adapter = newAdapter();
      const key = uniqueName("document");
      const before = await serverNow();
      const result = await adapter.acquire(key, "alice", ttl);
      const after = await serverNow();
      const document = await stored(key);
      expect(document).toEqual({
        _id: key,
        owner: "alice",
        token: expect.any(Number),
        expiresAt: expect.any(Date),
      });
      const expiresAt = (document.expiresAt as Date).getTime();
      expect(expiresAt).toBeGreaterThanOrEqual(before + ttl.toMilliseconds());
      expect(expiresAt).toBeLessThanOrEqual(after + ttl.toMilliseconds());
      // A first token is the server's time in µs.
      expect(result).toEqual({ acquired: true, fencingToken: document.token });
      expect(document.token).toBeGreaterThanOrEqual(before * 1_000);
      expect(document.token).toBeLessThanOrEqual(after * 1_000);

      await adapter.acquire(key, "forever", null);
      expect(await adapter.forceRelease(key)).toBe(true);
      await adapter.acquire(key, "forever", null);
      expect(await stored(key)).toMatchObject({
        owner: "forever",
        expiresAt: null,
      });
      await adapter.forceRelease(key);
    });

    test("a release keeps the document and its token, freed and dead from the server's now", async () => {
      const adapter = newAdapter();
      const key = uniqueName("release");
      const result = await adapter.acquire(key, "alice", ttl);
      const before = await serverNow();
      expect(await adapter.release(key, "alice")).toBe(true);
      const after = await serverNow();
      const document = await stored(key);
      expect(document).toMatchObject({
        owner: null,
        token: result.acquired ? result.fencingToken : Number.NaN,
      });
      const deadSince = (document.expiresAt as Date).getTime();
      expect(deadSince).toBeGreaterThanOrEqual(before);
      expect(deadSince).toBeLessThanOrEqual(after);
    });

    test("a stranger's refresh, release and acquire leave the owner's document as it was", async () => {
      const adapter = newAdapter();
      const key = uniqueName("stranger");
      await adapter.acquire(key, "alice", ttl);
      const before = await stored(key);
      expect(await adapter.refresh(key, "bob", TimeSpan.fromHours(1))).toBe(false);
      expect(await adapter.release(key, "bob")).toBe(false);
      expect(await adapter.acquire(key, "bob", TimeSpan.fromHours(1))).toMatchObject({
        acquired: false,
        owner: "alice",
      });
      expect(await stored(key)).toEqual(before);
      await adapter.forceRelease(key);
    });

    test("a failed acquire leaves a never-expiring hold never-expiring (document unchanged)", async () => {
      const adapter = newAdapter();
      const key = uniqueName("forever");
      await adapter.acquire(key, "alice", null);
      const before = await stored(key);
      for (const offered of [TimeSpan.fromMilliseconds(100), ttl, null]) {
        expect(await adapter.acquire(key, "bob", offered)).toEqual({
          acquired: false,
          owner: "alice",
          remainingTime: null,
        });
      }
      expect(await adapter.refresh(key, "alice", ttl)).toBe(false);
      expect(await stored(key)).toEqual(before);
      expect(before.expiresAt).toBeNull();
      await sleep(300);
      expect(await adapter.getState(key)).toMatchObject({ owner: "alice", remainingTime: null });
      await adapter.forceRelease(key);
    });

    test("tokens increase across release, forceRelease, expiry and a deleted document", async () => {
      const adapter = newAdapter();
      const key = uniqueName("tokens");
      const tokens: number[] = [];
      const take = async (lockId: string, holdFor: TimeSpan | null) => {
        const result = await adapter.acquire(key, lockId, holdFor);
        expect(result).toMatchObject({ acquired: true });
        tokens.push(result.acquired ? result.fencingToken : Number.NaN);
      };
      await take("a", ttl);
      await adapter.release(key, "a");
      await take("b", null);
      await adapter.forceRelease(key);
      await take("c", TimeSpan.fromMilliseconds(100));
      await sleep(300);
      await take("d", ttl);
      // What the TTL index does to a dead document, here at once.
      await adapter.release(key, "d");
      expect((await collection.deleteOne({ _id: key } as Document)).deletedCount).toBe(1);
      // The TTL index waits 60 s; $$NOW counts milliseconds, so let it pass the last token's.
      await sleep(20);
      await take("e", ttl);
      // A token pushed far ahead of the clock (a server whose clock went back) still grows by 1.
      const ahead = (await serverNow()) * 1_000 + 3_600_000_000;
      await adapter.release(key, "e");
      await collection.updateOne({ _id: key } as Document, { $set: { token: ahead } });
      await take("f", ttl);
      expect(tokens.at(-1)).toBe(ahead + 1);

      for (const [i, token] of tokens.entries()) {
        expect(Number.isSafeInteger(token), `token ${token}`).toBe(true);
        if (i > 0) {
          expect(token, `token ${i}`).toBeGreaterThan(tokens[i - 1] ?? Number.POSITIVE_INFINITY);
        }
      }
      await adapter.forceRelease(key);
    });

    test("many acquirers on several connections, on missing documents: exactly one winner each, no error", async () => {
      const others = Array.from({ length: 3 }, () => new MongoClient(url));
      clients.push(...others);
      const adapters = [client, ...others].map(
        (each) =>
          new MongodbLockAdapter({
            collection: each.db(db.databaseName).collection(collection.collectionName),
          }),
      );
      for (let round = 0; round < 20; round++) {
        const key = uniqueName(`race-${round}`);
        const ids = Array.from({ length: 24 }, (_, i) => `contender-${i}`);
        const results = await Promise.all(
          ids.map((id, i) => adapters[i % adapters.length]?.acquire(key, id, ttl)),
        );
        const winners = results.filter((result) => result?.acquired);
        expect(winners, `round ${round}`).toHaveLength(1);
        const winner = ids[results.findIndex((result) => result?.acquired)];
        for (const result of results) {
          if (result !== undefined && !result.acquired) {
            expect(result.owner).toBe(winner);
            expect(result.remainingTime?.toMilliseconds()).toBeGreaterThan(0);
          }
        }
        expect(await collection.countDocuments({ _id: key } as Document)).toBe(1);
        await adapters[0]?.forceRelease(key);
      }
    });

    test("lock ids and keys that look like operators, paths or variables are plain strings", async () => {
      const adapter = newAdapter();
      for (const [key, owner, stranger] of [
        [`${uniqueName("ops")}.$owner`, "$owner", "$$NOW"],
        [`${uniqueName("ops")}.a.b`, "$$ROOT", "$expiresAt"],
      ] as const) {
        expect(await adapter.acquire(key, owner, ttl)).toMatchObject({ acquired: true });
        expect(await adapter.acquire(key, stranger, ttl)).toMatchObject({
          acquired: false,
          owner,
        });
        expect(await adapter.getState(key)).toMatchObject({ owner });
        expect(await adapter.refresh(key, stranger, ttl)).toBe(false);
        expect(await adapter.refresh(key, owner, ttl)).toBe(true);
        expect(await adapter.release(key, stranger)).toBe(false);
        expect(await adapter.release(key, owner)).toBe(true);
        expect(await adapter.getState(key)).toBeNull();
      }
    });

    test("the remaining time a failed acquire reports is the holder's, by the server's clock", async () => {
      const adapter = newAdapter();
      const key = uniqueName("remaining");
      await adapter.acquire(key, "alice", TimeSpan.fromSeconds(2));
      await sleep(500);
      const result = await adapter.acquire(key, "bob", ttl);
      expect(result).toMatchObject({ acquired: false, owner: "alice" });
      const remaining = result.acquired
        ? Number.NaN
        : (result.remainingTime?.toMilliseconds() ?? 0);
      expect(remaining).toBeGreaterThan(0);
      expect(remaining).toBeLessThanOrEqual(1_600);
      await adapter.forceRelease(key);
    });
  });
});
