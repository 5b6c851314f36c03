import {
  type Collection,
  type CommandStartedEvent,
  type Db,
  type Document,
  MongoClient,
} from "mongodb";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { InvalidArgumentError } from "../../src/errors/invalid-argument-error.js";
import { MongodbLockAdapter } from "../../src/lock/adapters/mongodb/mongodb-lock-adapter.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { MongodbSemaphoreAdapter } from "../../src/semaphore/adapters/mongodb/mongodb-semaphore-adapter.js";
import {
  acquireProjection,
  acquireUpdate,
  anyLiveSlot,
  expiringSlotOf,
  liveSlotOf,
  refreshUpdate,
  releaseAllUpdate,
  releaseUpdate,
  stateProjection,
} from "../../src/semaphore/adapters/mongodb/mongodb-semaphore-queries.js";
import type { SemaphoreAcquireResult } from "../../src/semaphore/contracts/semaphore-adapter.js";
import { SemaphoreBackendError } from "../../src/semaphore/contracts/semaphore-errors.js";
import { SemaphoreProvider } from "../../src/semaphore/semaphore-provider.js";
import { semaphoreAdapterTestSuite } from "../../src/semaphore/test-suites/semaphore-adapter-test-suite.js";
import { semaphoreProviderTestSuite } from "../../src/semaphore/test-suites/semaphore-provider-test-suite.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { describeWithBackend, uniqueName } from "../harness/backends.js";
import { mongodbFixture } from "../harness/mongodb-fixture.js";

const UNREACHABLE_URL = "mongodb://127.0.0.1:1/hasp_unreachable";
const ttl = TimeSpan.fromSeconds(30);

function tokenOf(result: SemaphoreAcquireResult): number {
  expect(result).toMatchObject({ acquired: true });
  return result.acquired ? result.fencingToken : Number.NaN;
}

describe("MongodbSemaphoreAdapter without a server", () => {
  let client: MongoClient;

  beforeAll(() => {
    client = new MongoClient(UNREACHABLE_URL, { serverSelectionTimeoutMS: 200 });
  });

  afterAll(async () => {
    await client.close();
  });

  test("takes a Db or a Collection without a round trip, and names bad settings", () => {
    const db = client.db();
    expect(new MongodbSemaphoreAdapter({ database: db })).toBeInstanceOf(MongodbSemaphoreAdapter);
    expect(new MongodbSemaphoreAdapter({ collection: db.collection("s") })).toBeInstanceOf(
      MongodbSemaphoreAdapter,
    );
    const refused = (settings: unknown, message: RegExp) => {
      expect(() => new MongodbSemaphoreAdapter(settings as never)).toThrow(InvalidArgumentError);
      expect(() => new MongodbSemaphoreAdapter(settings as never)).toThrow(message);
    };
    refused({}, /^Invalid MongodbSemaphoreAdapter settings: database: give exactly one/);
    refused({ database: db, collectionName: "a$b" }, /collectionName: must not contain "\$"/);
  });

  test("a limit that is not a whole number from 1 to 1,000,000 is refused before the backend", async () => {
    const adapter = new MongodbSemaphoreAdapter({ database: client.db() });
    for (const limit of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 1_000_001]) {
      await expect(adapter.acquire("k", "a", limit, ttl)).rejects.toThrow(InvalidArgumentError);
    }
    await expect(adapter.acquire("k", "a", 0, ttl)).rejects.toThrow(
      /^Invalid MongodbSemaphoreAdapter argument: limit: must be a whole number from 1 to 1000000, got 0$/,
    );
  });

  test("a backend failure is thrown, never answered as 'no slot free'", async () => {
    const adapter = new MongodbSemaphoreAdapter({ database: client.db() });
    await expect(adapter.acquire("k", "a", 2, ttl)).rejects.toMatchObject({
      name: "MongoServerSelectionError",
    });
    await expect(adapter.release("k", "a")).rejects.toThrow();
    await expect(adapter.refresh("k", "a", ttl)).rejects.toThrow();
    await expect(adapter.forceReleaseAll("k")).rejects.toThrow();
    await expect(adapter.getState("k", "a")).rejects.toThrow();
    const error = await adapter.init().catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(SemaphoreBackendError);
    expect(error).toMatchObject({ operation: "init", key: "" });
    expect((error as SemaphoreBackendError).cause).toMatchObject({
      name: expect.stringMatching(/^Mongo/),
    });
  });
});

describe("MongodbSemaphoreAdapter queries", () => {
  const all = (slotId: string) => [
    acquireUpdate(slotId, 3, 5_000),
    acquireUpdate(slotId, 3, null),
    acquireProjection(slotId),
    stateProjection(slotId),
    liveSlotOf("k", slotId),
    expiringSlotOf("k", slotId),
    anyLiveSlot("k"),
    releaseUpdate(slotId),
    releaseAllUpdate(),
    refreshUpdate(slotId, 5_000),
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

  test("a slot id only ever appears as a $literal", () => {
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
    for (const slotId of ["$x", "$$CURRENT", "$slots.id"]) {
      const places = all(slotId).flatMap((query) => keysOf(query, slotId));
      expect(places.length).toBeGreaterThan(0);
      expect(new Set(places)).toEqual(new Set(["$literal"]));
    }
  });
});

describeWithBackend("mongodb", (url) => {
  const mongo = mongodbFixture(url, {
    label: "i20_mongo_semaphores",
    init: (collection) => new MongodbSemaphoreAdapter({ collection }).init(),
  });
  const { clients, newCollection, stored, serverNow } = mongo;
  let client: MongoClient;
  let db: Db;
  let collection: Collection<Document>;

  beforeAll(() => {
    ({ client, db, collection } = mongo);
  });

  const newAdapter = () => new MongodbSemaphoreAdapter({ collection });

  describe("adapter conformance", () => {
    semaphoreAdapterTestSuite({
      createAdapter: newAdapter,
      keyPrefix: `${uniqueName("adapter")}:`,
    });
  });

  describe("provider conformance", () => {
    semaphoreProviderTestSuite({ createAdapter: newAdapter });
  });

  /** Adapters on `count` clients of their own (several connection pools), on the shared collection. */
  function adaptersOnClients(count: number): MongodbSemaphoreAdapter[] {
    const others = Array.from({ length: count - 1 }, () => new MongoClient(url));
    clients.push(...others);
    return [client, ...others].map(
      (each) =>
        new MongodbSemaphoreAdapter({
          collection: each.db(db.databaseName).collection(collection.collectionName),
        }),
    );
  }

  test("acquire, release, refresh, forceReleaseAll and getState are one command each", async () => {
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
      expect(await commandsOf(() => adapter.acquire(key, "a", 1, ttl))).toEqual(["findAndModify"]);
      expect(await commandsOf(() => adapter.acquire(key, "b", 1, ttl))).toEqual(["findAndModify"]);
      expect(await commandsOf(() => adapter.refresh(key, "a", ttl))).toEqual(["update"]);
      expect(await commandsOf(() => adapter.getState(key, "a"))).toEqual(["find"]);
      expect(await commandsOf(() => adapter.release(key, "a"))).toEqual(["update"]);
      await adapter.acquire(key, "a", 1, ttl);
      expect(await commandsOf(() => adapter.forceReleaseAll(key))).toEqual(["update"]);
    } finally {
      client.off("commandStarted", listener);
    }
  });

  test("init creates the TTL index (60 s after the last slot ended) and can run again", async () => {
    const own = newCollection("init");
    const adapter = new MongodbSemaphoreAdapter({ collection: own });
    await adapter.init();
    await adapter.init();
    const indexes = await own.listIndexes().toArray();
    expect(indexes.map((index) => index.key)).toEqual([{ _id: 1 }, { expiresAt: 1 }]);
    expect(indexes[1]).toMatchObject({ expireAfterSeconds: 60 });
  });

  test("without init(), as the lock's adapter: every operation works, only no TTL index reaps the documents", async () => {
    const semaphores = newCollection("no_init_semaphores");
    const locks = newCollection("no_init_locks");
    const semaphore = new MongodbSemaphoreAdapter({ collection: semaphores });
    const lock = new MongodbLockAdapter({ collection: locks });
    const key = uniqueName("no-init");
    tokenOf(await semaphore.acquire(key, "a", 1, ttl));
    expect(await semaphore.acquire(key, "b", 1, ttl)).toMatchObject({ acquired: false });
    expect(await semaphore.refresh(key, "a", ttl)).toBe(true);
    expect(await semaphore.getState(key, "a")).toMatchObject({ acquiredSlotsCount: 1 });
    expect(await semaphore.release(key, "a")).toBe(true);
    expect(await lock.acquire(key, "a", ttl)).toMatchObject({ acquired: true });
    expect(await lock.release(key, "a")).toBe(true);
    for (const own of [semaphores, locks]) {
      const indexes = await own.listIndexes().toArray();
      expect(indexes.map((index) => index.key)).toEqual([{ _id: 1 }]);
      // Ended, dated for a TTL index that is not there: it stays.
      expect(await own.findOne({ _id: key } as Document)).toMatchObject({
        expiresAt: expect.any(Date),
      });
    }
  });

  test("{ database } uses the hasp_semaphores collection by default", async () => {
    const key = uniqueName("default");
    const byDefault = new MongodbSemaphoreAdapter({ database: db });
    await byDefault.acquire(key, "a", 2, ttl);
    try {
      expect(
        await db.collection("hasp_semaphores").findOne({ _id: key } as Document),
      ).toMatchObject({ slots: [{ id: "a", limit: 2 }] });
    } finally {
      await db.collection("hasp_semaphores").deleteOne({ _id: key } as Document);
    }
  });

  test("one document per key: the slots with their limits and tokens, expiries by the server's clock", async () => {
    const adapter = newAdapter();
    const key = uniqueName("document");
    const before = await serverNow();
    const first = tokenOf(await adapter.acquire(key, "a", 3, ttl));
    const second = tokenOf(await adapter.acquire(key, "b", 4, TimeSpan.fromSeconds(60)));
    const after = await serverNow();
    const document = await stored(key);
    expect(document).toEqual({
      _id: key,
      token: second,
      slots: [
        { id: "a", limit: 3, token: first, expiresAt: expect.any(Date) },
        { id: "b", limit: 4, token: second, expiresAt: expect.any(Date) },
      ],
      expiresAt: document.slots[1].expiresAt,
    });
    const expiresAt = (document.slots[0].expiresAt as Date).getTime();
    expect(expiresAt).toBeGreaterThanOrEqual(before + ttl.toMilliseconds());
    expect(expiresAt).toBeLessThanOrEqual(after + ttl.toMilliseconds());
    expect(first).toBeGreaterThanOrEqual(before * 1_000);
    expect(second).toBeGreaterThan(first);

    // A slot that never expires keeps the document from the TTL index.
    await adapter.acquire(key, "forever", 3, null);
    expect(await stored(key)).toMatchObject({ expiresAt: null });
    expect(await adapter.refresh(key, "forever", ttl)).toBe(false);
    expect(await adapter.release(key, "forever")).toBe(true);
    expect((await stored(key)).expiresAt).toEqual(document.slots[1].expiresAt);

    // The last slot gone: dead from the server's now, the token kept.
    await adapter.release(key, "a");
    const releasedAt = await serverNow();
    await adapter.release(key, "b");
    const gone = await stored(key);
    expect(gone).toMatchObject({ slots: [], token: expect.any(Number) });
    expect((gone.expiresAt as Date).getTime()).toBeGreaterThanOrEqual(releasedAt);
    expect((gone.expiresAt as Date).getTime()).toBeLessThanOrEqual(await serverNow());
  });

  test("the TTL index never reaps a live slot: the document's expiry is its last slot's", async () => {
    const adapter = newAdapter();
    const key = uniqueName("reap");
    await adapter.acquire(key, "long", 3, TimeSpan.fromHours(1));
    await adapter.acquire(key, "short", 3, TimeSpan.fromSeconds(1));
    await adapter.refresh(key, "short", TimeSpan.fromSeconds(2));
    await adapter.release(key, "short");
    const document = await stored(key);
    expect(document.expiresAt).toEqual(document.slots[0].expiresAt);
    expect((document.expiresAt as Date).getTime()).toBeGreaterThan((await serverNow()) + 3_500_000);
    await adapter.forceReleaseAll(key);
  });

  test("after any sequence of operations the TTL index could reap no live slot, and the last token is kept", async () => {
    const adapter = newAdapter();
    const key = uniqueName("reap-invariant");
    const ids = ["a", "b", "c", "d"];
    const ttls = [
      TimeSpan.fromMilliseconds(30),
      TimeSpan.fromSeconds(5),
      TimeSpan.fromHours(1),
      null,
    ];
    // A fixed sequence from a small generator: the same run every time.
    let seed = 7;
    const next = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    let highest = 0;
    for (let step = 0; step < 120; step++) {
      const id = ids[next(ids.length)] as string;
      const ttl = ttls[next(ttls.length)] ?? null;
      const operation = next(6);
      if (operation <= 2) {
        const result = await adapter.acquire(key, id, 2 + next(2), ttl);
        if (result.acquired) {
          highest = Math.max(highest, result.fencingToken);
        }
      } else if (operation === 3) {
        await adapter.release(key, id);
      } else if (operation === 4) {
        await adapter.refresh(key, id, ttl ?? TimeSpan.fromSeconds(5));
      } else if (step % 5 === 0) {
        await adapter.forceReleaseAll(key);
      }
      const document = await collection.findOne({ _id: key } as Document);
      if (document === null) {
        // Nothing taken yet: a release, refresh or force release of a missing key writes nothing.
        expect(highest).toBe(0);
        continue;
      }
      const now = await serverNow();
      const live = (document.slots as Document[]).filter(
        (slot) => slot.expiresAt === null || (slot.expiresAt as Date).getTime() > now,
      );
      const label = `step ${step}: ${JSON.stringify(document)}`;
      if (live.some((slot) => slot.expiresAt === null)) {
        expect(document.expiresAt, label).toBeNull();
      } else if (document.expiresAt !== null) {
        for (const slot of live) {
          expect((document.expiresAt as Date).getTime(), label).toBeGreaterThanOrEqual(
            (slot.expiresAt as Date).getTime(),
          );
        }
      }
      expect(document.token, label).toBe(highest);
    }
    await adapter.forceReleaseAll(key);
  });

  test("a failed acquire answers the limit in force, the count and the soonest expiry, changing nothing", async () => {
    const adapter = newAdapter();
    const key = uniqueName("full");
    await adapter.acquire(key, "a", 2, TimeSpan.fromSeconds(2));
    await adapter.acquire(key, "b", 2, ttl);
    const before = await stored(key);
    const result = await adapter.acquire(key, "c", 5, ttl);
    expect(result).toMatchObject({ acquired: false, limit: 2, acquiredSlotsCount: 2 });
    const remaining = result.acquired ? Number.NaN : (result.remainingTime?.toMilliseconds() ?? 0);
    expect(remaining).toBeGreaterThan(0);
    expect(remaining).toBeLessThanOrEqual(2_000);
    expect(await stored(key)).toEqual(before);
    await adapter.forceReleaseAll(key);
  });

  test("a holder acquiring again keeps its slot and token when the key is full, and the TTL restarts", async () => {
    const adapter = newAdapter();
    const key = uniqueName("again");
    const token = tokenOf(await adapter.acquire(key, "a", 2, TimeSpan.fromSeconds(5)));
    await adapter.acquire(key, "b", 2, ttl);
    expect(tokenOf(await adapter.acquire(key, "a", 2, TimeSpan.fromHours(1)))).toBe(token);
    // Two acquires of one holder at once: one slot, one token.
    const both = await Promise.all([
      adapter.acquire(key, "a", 2, ttl),
      adapter.acquire(key, "a", 2, ttl),
    ]);
    expect(both.map(tokenOf)).toEqual([token, token]);
    const document = await stored(key);
    expect(document.slots.map((slot: Document) => slot.id)).toEqual(["a", "b"]);
    expect((await adapter.getState(key, "a"))?.slot?.fencingToken).toBe(token);
    await adapter.forceReleaseAll(key);
  });

  test("different limits: each slot keeps its own, an acquire needs room under the smallest", async () => {
    const adapter = newAdapter();
    const key = uniqueName("limits");
    for (const id of ["a", "b", "c"]) {
      tokenOf(await adapter.acquire(key, id, 3, ttl));
    }
    // A deploy with limit 2 arrives: nothing is taken away, nothing new enters until below 2.
    expect(await adapter.acquire(key, "small", 2, ttl)).toMatchObject({
      acquired: false,
      limit: 2,
      acquiredSlotsCount: 3,
    });
    await adapter.release(key, "a");
    expect(await adapter.acquire(key, "small", 2, ttl)).toMatchObject({
      acquired: false,
      limit: 2,
    });
    await adapter.release(key, "b");
    tokenOf(await adapter.acquire(key, "small", 2, ttl));
    // Now a slot of limit 2 is live: the old limit-3 users are held to 2 as well.
    expect(await adapter.acquire(key, "big", 3, ttl)).toMatchObject({
      acquired: false,
      limit: 2,
      acquiredSlotsCount: 2,
    });
    expect(await adapter.getState(key, "c")).toMatchObject({ limit: 2, acquiredSlotsCount: 2 });
    // A bigger limit never lifts a live smaller one.
    expect(await adapter.acquire(key, "bigger", 10, ttl)).toMatchObject({ acquired: false });
    await adapter.release(key, "small");
    tokenOf(await adapter.acquire(key, "big", 3, ttl));
    expect(await adapter.getState(key, "big")).toMatchObject({ limit: 3, acquiredSlotsCount: 2 });
    await adapter.forceReleaseAll(key);
  });

  test("expired slots never count: they are dropped by the next decision, on the server's clock", async () => {
    const adapter = newAdapter();
    const key = uniqueName("expiry");
    await adapter.acquire(key, "a", 2, TimeSpan.fromMilliseconds(200));
    await adapter.acquire(key, "b", 2, TimeSpan.fromMilliseconds(200));
    expect(await adapter.acquire(key, "c", 2, ttl)).toMatchObject({ acquired: false });
    await vi.waitFor(async () => expect(await adapter.getState(key, "a")).toBeNull(), {
      timeout: 5_000,
      interval: 50,
    });
    // Both lingering slots still stored; the acquire drops them before it decides.
    expect((await stored(key)).slots).toHaveLength(2);
    expect(await adapter.release(key, "a")).toBe(false);
    expect(await adapter.refresh(key, "b", ttl)).toBe(false);
    expect(await adapter.forceReleaseAll(key)).toBe(false);
    tokenOf(await adapter.acquire(key, "c", 2, ttl));
    tokenOf(await adapter.acquire(key, "a", 2, ttl));
    expect((await stored(key)).slots.map((slot: Document) => slot.id)).toEqual(["c", "a"]);
    await adapter.forceReleaseAll(key);
  });

  test("a stranger's release and refresh leave the document as it was", async () => {
    const adapter = newAdapter();
    const key = uniqueName("stranger");
    await adapter.acquire(key, "alice", 2, ttl);
    const before = await stored(key);
    expect(await adapter.release(key, "bob")).toBe(false);
    expect(await adapter.refresh(key, "bob", TimeSpan.fromHours(1))).toBe(false);
    expect(await adapter.getState(key, "bob")).toMatchObject({ slot: null });
    expect(await stored(key)).toEqual(before);
    await adapter.forceReleaseAll(key);
  });

  test("slot ids and keys that look like operators, paths or variables are plain strings", async () => {
    const adapter = newAdapter();
    const key = `${uniqueName("ops")}.$slots`;
    const ids = ["$slots.id", "$$NOW", "$live"];
    for (const id of ids) {
      tokenOf(await adapter.acquire(key, id, 3, ttl));
    }
    expect(await adapter.acquire(key, "$$ROOT", 3, ttl)).toMatchObject({ acquired: false });
    for (const id of ids) {
      expect(await adapter.getState(key, id)).toMatchObject({
        slot: { fencingToken: expect.any(Number) },
      });
      expect(await adapter.refresh(key, id, ttl)).toBe(true);
    }
    expect(await adapter.release(key, "$$ROOT")).toBe(false);
    for (const id of ids) {
      expect(await adapter.release(key, id)).toBe(true);
    }
    expect(await adapter.getState(key, "$$NOW")).toBeNull();
  });

  test("one slot id under two keys: two slots, no collision", async () => {
    const adapter = newAdapter();
    const [one, two] = [uniqueName("one"), uniqueName("two")];
    tokenOf(await adapter.acquire(one, "same", 1, ttl));
    tokenOf(await adapter.acquire(two, "same", 1, ttl));
    expect(await adapter.release(one, "same")).toBe(true);
    expect(await adapter.getState(two, "same")).toMatchObject({
      slot: { fencingToken: expect.any(Number) },
    });
    await adapter.forceReleaseAll(two);
  });

  test("tokens increase across release, expiry, forceReleaseAll, a reaped document and a clock behind", async () => {
    const adapter = newAdapter();
    const key = uniqueName("tokens");
    const tokens: number[] = [];
    const take = async (id: string, holdFor: TimeSpan | null) => {
      tokens.push(tokenOf(await adapter.acquire(key, id, 3, holdFor)));
    };
    await take("a", ttl);
    await take("b", ttl);
    await adapter.release(key, "b");
    await take("c", ttl);
    await adapter.forceReleaseAll(key);
    await take("d", TimeSpan.fromMilliseconds(100));
    await vi.waitFor(async () => expect(await adapter.getState(key, "d")).toBeNull(), {
      timeout: 5_000,
      interval: 50,
    });
    await take("d", null);
    await adapter.forceReleaseAll(key);
    // What the TTL index does to a dead document, here at once. $$NOW counts milliseconds:
    // wait until the server's clock passed the last token's.
    expect((await collection.deleteOne({ _id: key } as Document)).deletedCount).toBe(1);
    const last = tokens.at(-1) ?? 0;
    await vi.waitFor(async () => expect((await serverNow()) * 1_000).toBeGreaterThan(last));
    await take("e", ttl);
    // A token far ahead of the clock (a server whose clock went back) still grows by 1.
    const ahead = (await serverNow()) * 1_000 + 3_600_000_000;
    await collection.updateOne({ _id: key } as Document, { $set: { token: ahead } });
    await take("f", ttl);
    expect(tokens.at(-1)).toBe(ahead + 1);
    for (const [i, token] of tokens.entries()) {
      expect(Number.isSafeInteger(token), `token ${token}`).toBe(true);
      if (i > 0) {
        expect(token, `token ${i}`).toBeGreaterThan(tokens[i - 1] ?? Number.POSITIVE_INFINITY);
      }
    }
    await adapter.forceReleaseAll(key);
  });

  test("many acquirers on several connections, on missing documents: exactly `limit` winners, distinct tokens, no error", async () => {
    const adapters = adaptersOnClients(4);
    for (let round = 0; round < 15; round++) {
      const key = uniqueName(`race-${round}`);
      const limit = 1 + (round % 4);
      const results = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          adapters[i % adapters.length]?.acquire(key, `contender-${i}`, limit, ttl),
        ),
      );
      const tokens = results.flatMap((result) => (result?.acquired ? [result.fencingToken] : []));
      expect(tokens, `round ${round}`).toHaveLength(limit);
      expect(new Set(tokens).size).toBe(limit);
      for (const result of results) {
        if (result !== undefined && !result.acquired) {
          expect(result).toMatchObject({ limit, acquiredSlotsCount: limit });
        }
      }
      expect(await collection.countDocuments({ _id: key } as Document)).toBe(1);
      await adapters[0]?.forceReleaseAll(key);
    }
  });

  test("through SemaphoreProvider: blocking runs of 8 holders on limit 2 poll, never more than 2 inside, tokens distinct", async () => {
    const adapters = adaptersOnClients(2);
    const namespace = new Namespace([uniqueName("provider")]);
    const providers = adapters.map(
      (adapter) =>
        new SemaphoreProvider({
          adapter,
          namespace,
          defaultTtl: TimeSpan.fromSeconds(10),
          defaultBlockingInterval: TimeSpan.fromMilliseconds(10),
          defaultBlockingTime: TimeSpan.fromSeconds(20),
        }),
    );
    let inside = 0;
    let most = 0;
    const tokens: number[] = [];
    const holder = async (index: number) => {
      const provider = providers[index % providers.length] as SemaphoreProvider;
      for (let round = 0; round < 3; round++) {
        await provider
          .create("shared", { limit: 2 })
          .runBlockingOrFail(async ({ fencingToken }) => {
            inside += 1;
            most = Math.max(most, inside);
            tokens.push(fencingToken);
            // Held across round trips of the others' polls.
            await adapters[0]?.getState(namespace.create("shared").toString(), "none");
            inside -= 1;
          });
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, index) => holder(index)));
    expect(most).toBeLessThanOrEqual(2);
    expect(most).toBe(2);
    expect(tokens).toHaveLength(24);
    expect(new Set(tokens).size).toBe(24);
    await Promise.all(providers.map((provider) => provider.close()));
  });

  test("a storm of acquires, releases and refreshes with mixed limits never has more inside than any insider's limit", async () => {
    const adapters = adaptersOnClients(3);
    const key = uniqueName("storm");
    const inside = new Map<string, number>();
    let violations = 0;
    let entries = 0;
    const tokens: number[] = [];
    const worker = async (w: number) => {
      const adapter = adapters[w % adapters.length] as MongodbSemaphoreAdapter;
      const limit = w % 3 === 0 ? 2 : 3;
      const slotId = `worker-${w}`;
      for (let i = 0; i < 15; i++) {
        const result = await adapter.acquire(key, slotId, limit, ttl);
        if (!result.acquired) {
          continue;
        }
        inside.set(slotId, limit);
        entries += 1;
        tokens.push(result.fencingToken);
        if (inside.size > Math.min(...inside.values())) {
          violations += 1;
        }
        // A round trip inside, so that holders overlap.
        if (i % 2 === 0) {
          expect(await adapter.refresh(key, slotId, ttl)).toBe(true);
        } else {
          expect((await adapter.getState(key, slotId))?.slot).not.toBeNull();
        }
        // Out of the record before the release reaches the server.
        inside.delete(slotId);
        expect(await adapter.release(key, slotId)).toBe(true);
      }
    };
    await Promise.all(Array.from({ length: 12 }, (_, w) => worker(w)));
    expect(violations).toBe(0);
    expect(entries).toBeGreaterThan(0);
    expect(new Set(tokens).size).toBe(tokens.length);
    expect(await adapters[0]?.getState(key, "none")).toBeNull();
  });
});
