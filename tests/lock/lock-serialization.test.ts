import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { InvalidArgumentError } from "../../src/errors/invalid-argument-error.js";
import { RedisPubSubEventBusAdapter } from "../../src/event-bus/adapters/redis/redis-pub-sub-event-bus-adapter.js";
import { EventBus } from "../../src/event-bus/event-bus.js";
import { MemoryLockAdapter } from "../../src/lock/adapters/memory/memory-lock-adapter.js";
import type { ILock } from "../../src/lock/contracts/lock.js";
import { LOCK_EVENTS, type LockReleasedEvent } from "../../src/lock/contracts/lock-events.js";
import { LOCK_STATE } from "../../src/lock/contracts/lock-state.js";
import { LockProvider, type LockProviderSettings } from "../../src/lock/lock-provider.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { SuperJsonSerdeAdapter } from "../../src/serde/adapters/super-json/super-json-serde-adapter.js";
import { Serde } from "../../src/serde/serde.js";
import { SerdeError } from "../../src/serde/serde-error.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { createRedisClient, describeWithBackend, uniqueName } from "../harness/backends.js";

const newSerde = () => new Serde(new SuperJsonSerdeAdapter());
const LONG = TimeSpan.fromSeconds(30);

/** Two processes configured alike: one backend, the same settings, each its own serde. */
function twoProcesses(settings: Omit<LockProviderSettings, "adapter" | "serde"> = {}) {
  const adapter = new MemoryLockAdapter();
  const serdeA = newSerde();
  const serdeB = newSerde();
  const providerA = new LockProvider({ ...settings, adapter, serde: serdeA });
  const providerB = new LockProvider({ ...settings, adapter, serde: serdeB });
  return { adapter, serdeA, serdeB, providerA, providerB };
}

/** Edits the plain data of the (first) lock in a serialized document. */
function tamper(text: string, edit: (data: Record<string, unknown>) => void): string {
  const document = JSON.parse(text) as { body: { json: Record<string, unknown> } };
  edit(document.body.json);
  return JSON.stringify(document);
}

describe("lock serialization", () => {
  test("a lock acquired in process A is released by its revived copy in process B", async () => {
    const { serdeA, serdeB, providerA, providerB } = twoProcesses();
    const lock = providerA.create("order:42", { ttl: LONG });
    const token = await lock.acquireOrFail();
    const text = serdeA.serialize(lock);

    const revived = serdeB.deserialize<ILock>(text);
    expect(revived).not.toBe(lock);
    expect(revived.key.get()).toBe("order:42");
    expect(revived.id).toBe(lock.id);
    expect(revived.ttl?.toMilliseconds()).toBe(LONG.toMilliseconds());
    // The token is not in the text: the revived lock learns it from the store.
    const data = (JSON.parse(text) as { body: { json: Record<string, unknown> } }).body.json;
    expect(Object.keys(data).sort()).toEqual(["id", "key", "proof", "providerId", "ttl"]);
    expect(data.proof).toMatch(/^[0-9a-f]{32}$/);
    expect(revived.fencingToken).toBeNull();
    expect(await revived.getState()).toMatchObject({
      type: LOCK_STATE.ACQUIRED,
      fencingToken: token,
    });
    expect(revived.fencingToken).toBe(token);

    const releasedOnB = vi.fn<(event: LockReleasedEvent) => void>();
    const releasedOnA = vi.fn();
    await providerB.addListener(LOCK_EVENTS.RELEASED, releasedOnB);
    await providerA.addListener(LOCK_EVENTS.RELEASED, releasedOnA);
    expect(await revived.release()).toBe(true);
    expect(await lock.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
    await vi.waitFor(() => expect(releasedOnB).toHaveBeenCalledTimes(1), { timeout: 10_000 });
    expect(releasedOnB.mock.calls[0]?.[0].lock).toBe(revived);
    expect(releasedOnA).not.toHaveBeenCalled();

    // The revived lock is B's own: it travels on, and back to A, like any of B's locks.
    const back = serdeA.deserialize<ILock>(serdeB.serialize(revived));
    expect(back.id).toBe(lock.id);
    expect(await back.acquire()).toBe(true);
    expect(await lock.release()).toBe(true);
    await vi.waitFor(() => expect(releasedOnA).toHaveBeenCalledTimes(1), { timeout: 10_000 });
  });

  test("a revived copy can do nothing the original could not", async () => {
    const { serdeA, serdeB, providerA } = twoProcesses();
    const lock = providerA.create("order:42", { ttl: LONG });
    await lock.acquire();
    const text = serdeA.serialize(lock);
    await lock.release();
    const next = providerA.create("order:42", { ttl: LONG });
    await next.acquire();

    const revived = serdeB.deserialize<ILock>(text);
    expect(await revived.release()).toBe(false);
    expect(await revived.refresh()).toBe(false);
    expect(await revived.acquire()).toBe(false);
    expect(await next.getState()).toMatchObject({
      type: LOCK_STATE.ACQUIRED,
      fencingToken: next.fencingToken,
    });

    // A forged owner id is just another stranger.
    const forged = serdeB.deserialize<ILock>(
      tamper(text, (data) => {
        data.id = "someone-else";
        data.proof = null;
      }),
    );
    expect(await forged.release()).toBe(false);
    expect((await next.getState()).type).toBe(LOCK_STATE.ACQUIRED);
  });

  test("an altered id or proof is another owner's lock, which holds nothing", async () => {
    const { serdeA, serdeB, providerA } = twoProcesses();
    const holder = providerA.create("order:42", { ttl: LONG });
    const token = await holder.acquireOrFail();
    const text = serdeA.serialize(holder);
    const flip = (hex: string) => (hex[0] === "0" ? "1" : "0") + hex.slice(1);
    const edits: Array<(data: Record<string, unknown>) => void> = [
      (data) => (data.proof = flip(data.proof as string)),
      (data) => (data.id = flip(data.id as string)),
      (data) => (data.proof = null), // the public id alone
    ];
    for (const edit of edits) {
      const forged = serdeB.deserialize<ILock>(tamper(text, edit));
      expect(await forged.release()).toBe(false);
      expect(await forged.refresh()).toBe(false);
      expect(await forged.acquire()).toBe(false);
      expect(forged.fencingToken).toBeNull();
    }
    expect(await holder.getState()).toMatchObject({
      type: LOCK_STATE.ACQUIRED,
      fencingToken: token,
    });
    expect(await serdeB.deserialize<ILock>(text).release()).toBe(true);
  });

  test("a never-acquired lock and a ttl: null lock round-trip as they were", () => {
    const { serdeA, serdeB, providerA } = twoProcesses();
    const fresh = serdeB.deserialize<ILock>(serdeA.serialize(providerA.create("a")));
    expect(fresh.fencingToken).toBeNull();
    expect(fresh.ttl?.toMilliseconds()).toBe(5 * 60 * 1_000);
    const forever = serdeB.deserialize<ILock>(
      serdeA.serialize(providerA.create("b", { ttl: null })),
    );
    expect(forever.ttl).toBeNull();
    expect(forever.key.get()).toBe("b");
    // An explicit lock id is its own credential: no proof to carry.
    const given = serdeA.serialize(providerA.create("c", { lockId: "job-7" }));
    expect(given).toContain('"proof":null');
    expect(serdeB.deserialize<ILock>(given).id).toBe("job-7");
  });

  test("ids are measured in characters: a long id of astral characters round-trips, given or made by createLockId", async () => {
    const id = "\u{1F512}".repeat(200); // 200 characters, 400 UTF-16 units
    const { serdeA, serdeB, providerA } = twoProcesses({ createLockId: () => id });
    for (const lock of [
      providerA.create("made"),
      providerA.create("given", { lockId: `${id}.${"a".repeat(32)}` }),
    ]) {
      expect(await lock.acquire()).toBe(true);
      const revived = serdeB.deserialize<ILock>(serdeA.serialize(lock));
      expect(revived.id).toBe(id);
      expect(await revived.release()).toBe(true);
    }
  });

  test("a lock inside an event payload inside a Map round-trips as a working lock", async () => {
    const { serdeA, serdeB, providerA } = twoProcesses();
    const lock = providerA.create("batch:7", { ttl: LONG });
    await lock.acquire();
    const payload = {
      at: new Date("2026-01-02T03:04:05Z"),
      locks: new Map<string, { lock: ILock; attempt: number }>([["batch", { lock, attempt: 2 }]]),
    };
    const arrived = serdeB.deserialize<typeof payload>(serdeA.serialize(payload));
    expect(arrived.at).toEqual(payload.at);
    const entry = arrived.locks.get("batch");
    expect(entry?.attempt).toBe(2);
    expect(entry?.lock.id).toBe(lock.id);
    expect(await entry?.lock.release()).toBe(true);
    expect(await lock.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
  });

  test("tampered data throws SerdeError naming what is wrong", async () => {
    const { serdeA, serdeB, providerA } = twoProcesses();
    const lock = providerA.create("order:42", { ttl: LONG });
    await lock.acquire();
    const text = serdeA.serialize(lock);
    const cases: Array<[edit: (data: Record<string, unknown>) => void, field: RegExp]> = [
      [(data) => (data.key = ""), /key/],
      [(data) => (data.key = 42), /key/],
      [(data) => delete data.key, /key/],
      [(data) => (data.id = ""), /id/],
      [(data) => (data.id = { owner: "x" }), /id/],
      [(data) => (data.ttl = -1), /ttl/],
      [(data) => (data.ttl = 0), /ttl/],
      [(data) => (data.ttl = "30000"), /ttl/],
      [(data) => delete data.proof, /proof/],
      [(data) => (data.proof = ""), /proof/],
      [(data) => (data.proof = 42), /proof/],
      [(data) => (data.proof = (data.proof as string).toUpperCase()), /proof/],
      [(data) => (data.proof = (data.proof as string).slice(1)), /proof/],
      [(data) => (data.proof = `${data.proof as string}0`), /proof/],
      [
        (data) => (data.id = "j".repeat(223)),
        /id: must be at most 222 characters when the lock has a proof/,
      ],
      // Tokens come from the store: a payload that names one is refused, whatever the value.
      [(data) => (data.fencingToken = 7), /fencingToken/],
      [(data) => (data.fencingToken = null), /fencingToken/],
      [(data) => (data.ttl = 1e17), /ttl: must be at most 100 years \(3153600000000 ms\)/],
      [(data) => (data.owner = "admin"), /owner/],
    ];
    for (const [edit, field] of cases) {
      const forged = tamper(text, edit);
      expect(() => serdeB.deserialize(forged), forged).toThrow(SerdeError);
      expect(() => serdeB.deserialize(forged)).toThrow(field);
    }
    const notAnObject = JSON.parse(text) as { body: { json: unknown } };
    notAnObject.body.json = null;
    expect(() => serdeB.deserialize(JSON.stringify(notAnObject))).toThrow(SerdeError);
    notAnObject.body.json = "order:42";
    expect(() => serdeB.deserialize(JSON.stringify(notAnObject))).toThrow(SerdeError);
    // The untouched document still works.
    expect(await serdeB.deserialize<ILock>(text).release()).toBe(true);
  });

  test("a key, id or provider id tampered into ill-formed UTF-16 or NUL is refused: nothing is acquired or released", async () => {
    const { adapter, serdeA, serdeB, providerA, providerB } = twoProcesses();
    const lock = providerA.create("order:42", { ttl: LONG, lockId: "owner" });
    const token = await lock.acquireOrFail();
    const text = serdeA.serialize(lock);
    const cases: Array<[edit: (data: Record<string, unknown>) => void, message: RegExp]> = [
      [
        (data) => (data.key = "order:42\uD800"),
        /key: must be well-formed UTF-16 \(a lone surrogate at index 8\)/,
      ],
      [
        (data) => (data.key = "\uDC00rder:42"),
        /key: must be well-formed UTF-16 \(a lone surrogate at index 0\)/,
      ],
      [(data) => (data.key = "order\u000042"), /key: must not contain NUL \(at index 5\)/],
      [
        (data) => (data.id = "owner\uDC00"),
        /id: must be well-formed UTF-16 \(a lone surrogate at index 5\)/,
      ],
      [(data) => (data.id = "own\0er"), /id: must not contain NUL \(at index 3\)/],
      [
        (data) => (data.providerId = `${String(data.providerId)}\uD800`),
        /providerId: must be well-formed UTF-16/,
      ],
      [
        (data) => (data.providerId = `${String(data.providerId)}\0`),
        /providerId: must not contain NUL/,
      ],
    ];
    for (const [edit, message] of cases) {
      const forged = tamper(text, edit);
      let caught: unknown;
      try {
        const revived = serdeB.deserialize<ILock>(forged);
        // Accepted (the bug): whatever it does must not touch the owner's hold.
        await revived.release();
        await revived.acquire();
      } catch (error) {
        caught = error;
      }
      expect(caught, forged).toBeInstanceOf(SerdeError);
      expect((caught as SerdeError).cause).toBeInstanceOf(InvalidArgumentError);
      expect(String(caught)).toMatch(message);
    }
    // The owner's hold is as it was, and nothing else was taken.
    expect(await lock.getState()).toMatchObject({ type: LOCK_STATE.ACQUIRED, fencingToken: token });
    for (const key of ["order:42\uFFFD", "\uFFFDrder:42"]) {
      expect(await providerB.create(key).getState()).toEqual({ type: LOCK_STATE.EXPIRED });
    }
    expect(adapter.size).toBe(1);
  });

  test("two providers on one serde with different namespaces each revive their own locks", async () => {
    const serde = newSerde();
    const adapterA = new MemoryLockAdapter();
    const adapterB = new MemoryLockAdapter();
    const providerA = new LockProvider({
      adapter: adapterA,
      namespace: new Namespace("billing"),
      serde,
    });
    const providerB = new LockProvider({
      adapter: adapterB,
      namespace: new Namespace("shipping"),
      serde,
    });
    expect(providerA.providerId).not.toBe(providerB.providerId);
    const lockA = providerA.create("order:42", { ttl: LONG });
    const lockB = providerB.create("order:42", { ttl: LONG });
    await lockA.acquire();
    await lockB.acquire();
    const revived = serde.deserialize<{ a: ILock; b: ILock }>(
      serde.serialize({ a: lockA, b: lockB }),
    );
    const heardOnA = vi.fn();
    await providerA.addListener(LOCK_EVENTS.RELEASED, heardOnA);
    const heardOnB = vi.fn();
    await providerB.addListener(LOCK_EVENTS.RELEASED, heardOnB);
    expect(await revived.a.release()).toBe(true);
    expect(await adapterA.getState("billing:order:42")).toBeNull();
    expect(await adapterB.getState("shipping:order:42")).not.toBeNull();
    expect(await revived.b.release()).toBe(true);
    expect(await adapterB.getState("shipping:order:42")).toBeNull();
    // Once B has heard b's release, A would have too, had it gone to A's provider.
    await vi.waitFor(
      () => {
        expect(heardOnA).toHaveBeenCalledTimes(1);
        expect(heardOnB).toHaveBeenCalledTimes(1);
      },
      { timeout: 10_000, interval: 5 },
    );
    expect(heardOnA).toHaveBeenCalledTimes(1);
  });

  test("a serde without the lock's provider refuses the document", () => {
    const { serdeA, providerA } = twoProcesses({ namespace: new Namespace("billing") });
    const text = serdeA.serialize(providerA.create("a"));
    const unrelated = newSerde();
    new LockProvider({
      adapter: new MemoryLockAdapter(),
      namespace: new Namespace("shipping"),
      serde: unrelated,
    });
    expect(() => unrelated.deserialize(text)).toThrow(SerdeError);
    expect(() => newSerde().deserialize(text)).toThrow(SerdeError);
  });

  test("a lock whose provider was not given the serde is refused, not written as {}", () => {
    const serde = newSerde();
    new LockProvider({ adapter: new MemoryLockAdapter(), namespace: new Namespace("with"), serde });
    const stranger = new LockProvider({
      adapter: new MemoryLockAdapter(),
      namespace: new Namespace("without"),
    }).create("report");
    expect(() => serde.serialize({ lock: stranger })).toThrow(SerdeError);
    expect(() => serde.serialize({ lock: stranger })).toThrow(
      /"report" belongs to a LockProvider that was not given this serde/,
    );
  });

  test("a lock on a serde that no provider was given is refused, not written as {}", () => {
    const lock = new LockProvider({ adapter: new MemoryLockAdapter() }).create("report");
    const fresh = newSerde();
    const message =
      /^The lock "report" belongs to a LockProvider that was not given this serde, so it cannot be serialized with it: pass the serde to that provider \(new LockProvider\(\{ serde \}\)\)$/;
    for (const value of [lock, { lock }, [1, lock], new Map([["lock", lock]])]) {
      expect(() => fresh.serialize(value)).toThrow(SerdeError);
      expect(() => fresh.serialize(value)).toThrow(message);
    }
    expect(fresh.deserialize(fresh.serialize({ key: lock.key.get() }))).toEqual({ key: "report" });
  });

  test("a duplicate provider id on one serde is an InvalidArgumentError at construction", () => {
    const serde = newSerde();
    const adapter = new MemoryLockAdapter();
    new LockProvider({ adapter, serde });
    expect(() => new LockProvider({ adapter, serde })).toThrow(InvalidArgumentError);
    expect(() => new LockProvider({ adapter, serde })).toThrow(/providerId/);
    new LockProvider({ adapter, serde, providerId: "reports" });
    expect(
      () =>
        new LockProvider({
          adapter,
          namespace: new Namespace("other"),
          serde,
          providerId: "reports",
        }),
    ).toThrow(InvalidArgumentError);
    // Same namespace, another id: allowed.
    expect(() => new LockProvider({ adapter, serde, providerId: "audit" })).not.toThrow();
    // A list of serdes registers on each; a duplicate in any of them fails.
    const other = newSerde();
    expect(
      () =>
        new LockProvider({
          adapter,
          namespace: new Namespace("listed"),
          serde: [other, other],
        }),
    ).toThrow(InvalidArgumentError);
  });
});

describeWithBackend("redis", (url) => {
  let clientA: Redis;
  let clientB: Redis;

  beforeAll(() => {
    clientA = createRedisClient(url);
    clientB = createRedisClient(url);
  });

  afterAll(async () => {
    await Promise.all([clientA.quit(), clientB.quit()]);
  });

  test("a lock sent inside an event over the Redis event bus arrives as a working lock of the receiving provider", async () => {
    type Handoff = { handoff: { jobs: Map<string, ILock>; note: string } };
    const name = uniqueName("lock_handoff");
    const namespace = new Namespace(name);
    const { serdeA, serdeB, providerA, providerB } = twoProcesses({ namespace });
    const transportA = new RedisPubSubEventBusAdapter({ client: clientA, serde: serdeA });
    const transportB = new RedisPubSubEventBusAdapter({ client: clientB, serde: serdeB });
    const busNamespace = namespace.append("bus");
    const busA = new EventBus<Handoff>({ adapter: transportA, namespace: busNamespace });
    const busB = new EventBus<Handoff>({ adapter: transportB, namespace: busNamespace });
    try {
      let resolveArrived: (payload: Handoff["handoff"]) => void = () => {};
      const arrived = new Promise<Handoff["handoff"]>((resolve) => {
        resolveArrived = resolve;
      });
      // Subscribed (on Redis) before anything is published.
      await busB.addListener("handoff", (payload) => resolveArrived(payload));

      const lock = providerA.create("report:2026", { ttl: LONG });
      const token = await lock.acquireOrFail();
      await busA.dispatch("handoff", { jobs: new Map([["report", lock]]), note: "yours now" });

      const payload = await arrived;
      expect(payload.note).toBe("yours now");
      const received = payload.jobs.get("report");
      expect(received).toBeDefined();
      expect(received).not.toBe(lock);
      expect(received?.key.get()).toBe("report:2026");
      expect(received?.id).toBe(lock.id);
      expect(received?.fencingToken).toBeNull();
      expect(received?.ttl?.toMilliseconds()).toBe(LONG.toMilliseconds());
      expect(await received?.getState()).toMatchObject({ fencingToken: token });
      expect(received?.fencingToken).toBe(token);

      const releasedOnB = vi.fn<(event: LockReleasedEvent) => void>();
      await providerB.addListener(LOCK_EVENTS.RELEASED, releasedOnB);
      expect(await received?.release()).toBe(true);
      expect(await lock.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
      await vi.waitFor(() => expect(releasedOnB).toHaveBeenCalledTimes(1), { timeout: 10_000 });
      expect(releasedOnB.mock.calls[0]?.[0].lock).toBe(received);
    } finally {
      await Promise.all([busA.close(), busB.close()]);
      await Promise.all([transportA.close(), transportB.close()]);
    }
  });
});
