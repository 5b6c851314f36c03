// The connections hasp duplicates from an application's ioredis client follow it: they end
// when it ends, and a client shared by many adapters carries one listener of theirs.
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, test, vi } from "vitest";
import { RedisPubSubEventBusAdapter } from "../../src/event-bus/adapters/redis/redis-pub-sub-event-bus-adapter.js";
import { EventBus } from "../../src/event-bus/event-bus.js";
import { RedisLockAdapter } from "../../src/lock/adapters/redis/redis-lock-adapter.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { SuperJsonSerdeAdapter } from "../../src/serde/adapters/super-json/super-json-serde-adapter.js";
import { Serde } from "../../src/serde/serde.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { createRedisClient, describeWithBackend, uniqueName } from "../harness/backends.js";

const LONG = TimeSpan.fromSeconds(10);

describeWithBackend("redis", (url) => {
  let observer: Redis;

  beforeAll(() => {
    observer = createRedisClient(url);
  });

  afterAll(async () => {
    await observer.quit();
  });

  /** An application's client, named so that its connections (and duplicates) can be counted. */
  function namedClient() {
    const name = uniqueName("client");
    const client = new Redis(url, { connectionName: name });
    const connections = async () => {
      const list = (await observer.call("CLIENT", "LIST")) as string;
      return list.split("\n").filter((line) => line.includes(` name=${name} `)).length;
    };
    return { client, connections };
  }

  test("a RedisLockAdapter's subscriber ends when its client quits, a wait under way ends, and a later wait subscribes nothing", async () => {
    const { client, connections } = namedClient();
    const adapter = new RedisLockAdapter(client);
    const key = uniqueName("key");
    expect(await adapter.acquire(key, "holder", LONG)).toMatchObject({ acquired: true });
    const waiting = adapter
      .waitForRelease(key, LONG, new AbortController().signal, { lockId: "waiter", ttl: LONG })
      .then(
        () => "ended",
        () => "failed",
      );
    await vi.waitFor(async () => expect(await connections()).toBe(2));
    await observer.del(`{${key}}`, `{${key}}:fence`);
    await client.quit();
    await vi.waitFor(async () => expect(await connections()).toBe(0));
    // Its queue entry cannot be left on a closed client: the wait fails now, not after 10 s.
    expect(await waiting).toBe("failed");
    await expect(
      adapter.waitForRelease(key, LONG, new AbortController().signal, {
        lockId: "late",
        ttl: LONG,
      }),
    ).rejects.toThrow(/has ended/);
    expect(await connections()).toBe(0);
  });

  test("a RedisPubSubEventBusAdapter's subscriber ends when its client quits, and a later listener subscribes nothing", async () => {
    const { client, connections } = namedClient();
    const bus = new EventBus<{ ping: number }>({
      adapter: new RedisPubSubEventBusAdapter({
        client,
        serde: new Serde(new SuperJsonSerdeAdapter()),
      }),
      namespace: new Namespace(uniqueName("bus")),
    });
    await bus.addListener("ping", () => {});
    expect(await connections()).toBe(2);
    await client.quit();
    await vi.waitFor(async () => expect(await connections()).toBe(0));
    await expect(bus.addListener("ping", () => {})).rejects.toThrow(/has ended/);
    expect(await connections()).toBe(0);
  });

  test("right after quit() answers (the socket not yet closed), a wait and a listener subscribe nothing", async () => {
    const { client, connections } = namedClient();
    const adapter = new RedisLockAdapter(client);
    const bus = new EventBus<{ ping: number }>({
      adapter: new RedisPubSubEventBusAdapter({
        client,
        serde: new Serde(new SuperJsonSerdeAdapter()),
      }),
      namespace: new Namespace(uniqueName("bus")),
    });
    const key = uniqueName("key");
    expect(await adapter.acquire(key, "holder", LONG)).toMatchObject({ acquired: true });
    await observer.del(`{${key}}`, `{${key}}:fence`);
    await client.quit();
    await expect(
      adapter.waitForRelease(key, LONG, new AbortController().signal, {
        lockId: "late",
        ttl: LONG,
      }),
    ).rejects.toThrow(/has ended/);
    await expect(bus.addListener("ping", () => {})).rejects.toThrow(/has ended/);
    await vi.waitFor(async () => expect(await connections()).toBe(0));
  });

  test("twelve adapters of each kind with a subscriber add one 'end' listener to the client, and none once closed", async () => {
    const client = createRedisClient(url);
    const warnings: string[] = [];
    const onWarning = (warning: Error) => {
      if (warning.name === "MaxListenersExceededWarning") warnings.push(warning.message);
    };
    process.on("warning", onWarning);
    try {
      const before = client.listenerCount("end");
      const serde = new Serde(new SuperJsonSerdeAdapter());
      const locks = Array.from({ length: 12 }, () => new RedisLockAdapter(client));
      const busAdapters = Array.from(
        { length: 12 },
        () => new RedisPubSubEventBusAdapter({ client, serde }),
      );
      const buses = busAdapters.map(
        (adapter) =>
          new EventBus<{ ping: number }>({ adapter, namespace: new Namespace(uniqueName("bus")) }),
      );
      const key = uniqueName("key");
      await Promise.all([
        // A wait on a free key subscribes the adapter's inbox, then takes the key.
        ...locks.map((adapter, index) =>
          adapter
            .waitForRelease(key, LONG, new AbortController().signal, {
              lockId: `waiter-${index}`,
              ttl: TimeSpan.fromMilliseconds(1),
            })
            .catch(() => {}),
        ),
        ...buses.map((bus) => bus.addListener("ping", () => {})),
      ]);
      // One listener for every adapter of either kind that follows this client.
      expect(client.listenerCount("end") - before).toBe(1);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toEqual([]);
      await Promise.all(locks.map((adapter) => adapter.close()));
      expect(client.listenerCount("end") - before).toBe(1);
      await Promise.all(busAdapters.map((adapter) => adapter.close()));
      expect(client.listenerCount("end")).toBe(before);
      await observer.del(`{${key}}`, `{${key}}:fence`, `{${key}}:queue`);
    } finally {
      process.off("warning", onWarning);
      await client.quit();
    }
  });
});
