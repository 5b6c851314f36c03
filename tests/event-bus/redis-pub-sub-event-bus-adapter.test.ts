import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { RedisPubSubEventBusAdapter } from "../../src/event-bus/adapters/redis/redis-pub-sub-event-bus-adapter.js";
import { EventBus } from "../../src/event-bus/event-bus.js";
import { eventBusAdapterTestSuite } from "../../src/event-bus/test-suites/event-bus-adapter-test-suite.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { SuperJsonSerdeAdapter } from "../../src/serde/adapters/super-json/super-json-serde-adapter.js";
import { Serde } from "../../src/serde/serde.js";
import { createRedisClient, describeWithBackend, uniqueName } from "../harness/backends.js";
import { PrivateRedisServer } from "../harness/private-redis.js";

type Events = { note: { text: string; at: Date }; other: { n: number } };

const newSerde = () => new Serde(new SuperJsonSerdeAdapter());

describeWithBackend("redis", (url) => {
  let client: Redis;

  beforeAll(() => {
    client = createRedisClient(url);
  });

  afterAll(async () => {
    await client.quit();
  });

  eventBusAdapterTestSuite({
    createAdapter: () => new RedisPubSubEventBusAdapter({ client, serde: newSerde() }),
    destroyAdapter: (adapter) => (adapter as RedisPubSubEventBusAdapter).close(),
    serializesPayloads: true,
  });

  async function numsub(channel: string): Promise<number> {
    const reply = (await client.call("PUBSUB", "NUMSUB", channel)) as [string, number];
    return Number(reply[1]);
  }

  function setup() {
    const name = uniqueName("bus");
    const namespace = new Namespace(name);
    const ownClient = new Redis(url, { connectionName: name });
    const adapter = new RedisPubSubEventBusAdapter({ client: ownClient, serde: newSerde() });
    const bus = new EventBus<Events>({ adapter, namespace });
    const channel = (event: keyof Events) => namespace.create(event).toString();
    const connections = async () => {
      const list = (await client.call("CLIENT", "LIST")) as string;
      return list.split("\n").filter((line) => line.includes(` name=${name} `)).length;
    };
    const close = async () => {
      await adapter.close();
      await ownClient.quit();
    };
    return { bus, adapter, channel, connections, close, ownClient };
  }

  test("listeners share one subscriber connection, created lazily and closed by close()", async () => {
    const { bus, adapter, connections, close } = setup();
    try {
      await bus.dispatch("note", { text: "before any listener", at: new Date() });
      expect(await connections()).toBe(1);
      for (let i = 0; i < 5; i++) {
        await bus.addListener("note", vi.fn());
        await bus.addListener("other", vi.fn());
      }
      expect(await connections()).toBe(2);
      await adapter.close();
      await vi.waitFor(async () => expect(await connections()).toBe(1));
    } finally {
      await close();
    }
  });

  test("a channel is subscribed once per adapter and unsubscribed when its last listener leaves", async () => {
    const { bus, channel, close } = setup();
    try {
      const listeners = [vi.fn(), vi.fn(), vi.fn()];
      const otherListener = vi.fn();
      for (const listener of listeners) {
        await bus.addListener("note", listener);
      }
      await bus.addListener("other", otherListener);
      expect(await numsub(channel("note"))).toBe(1);
      expect(await numsub(channel("other"))).toBe(1);

      await bus.removeListener("note", listeners[0]!);
      await bus.removeListener("note", listeners[1]!);
      expect(await numsub(channel("note"))).toBe(1);
      await bus.dispatch("note", { text: "still heard", at: new Date() });
      await vi.waitFor(() => expect(listeners[2]).toHaveBeenCalledTimes(1));
      expect(listeners[0]).not.toHaveBeenCalled();
      expect(listeners[1]).not.toHaveBeenCalled();

      await bus.removeListener("note", listeners[2]!);
      expect(await numsub(channel("note"))).toBe(0);
      expect(await numsub(channel("other"))).toBe(1);
    } finally {
      await close();
    }
  });

  test("listeners added concurrently to a new channel all hear the first event", async () => {
    const { bus, close } = setup();
    try {
      const listeners = Array.from({ length: 4 }, () => vi.fn());
      await Promise.all(listeners.map((listener) => bus.addListener("note", listener)));
      await bus.dispatch("note", { text: "x", at: new Date(0) });
      await vi.waitFor(() => {
        for (const listener of listeners) {
          expect(listener).toHaveBeenCalledTimes(1);
        }
      });
    } finally {
      await close();
    }
  });

  test("an undecodable message is reported and dropped; the next one is delivered", async () => {
    const name = uniqueName("bad");
    const onMessageError = vi.fn();
    const adapter = new RedisPubSubEventBusAdapter({ client, serde: newSerde(), onMessageError });
    const bus = new EventBus<Events>({ adapter, namespace: new Namespace(name) });
    try {
      const listener = vi.fn();
      await bus.addListener("other", listener);
      const channel = new Namespace(name).create("other").toString();
      await client.publish(channel, "{not a document");
      await bus.dispatch("other", { n: 1 });
      await vi.waitFor(() => expect(listener).toHaveBeenCalledWith({ n: 1 }));
      expect(listener).toHaveBeenCalledTimes(1);
      expect(onMessageError).toHaveBeenCalledWith(expect.objectContaining({ name: "SerdeError" }), {
        channel,
      });
    } finally {
      await adapter.close();
    }
  });

  test("a class with a registered transformer arrives as a working instance", async () => {
    class Coupon {
      constructor(readonly code: string) {}
      describe(): string {
        return `coupon ${this.code}`;
      }
    }
    const serde = newSerde();
    serde.registerCustom<Coupon, string>({
      name: "coupon",
      isApplicable: (value): value is Coupon => value instanceof Coupon,
      serialize: (coupon) => coupon.code,
      deserialize: (data) => {
        if (typeof data !== "string" || data === "") throw new Error("a coupon code is a string");
        return new Coupon(data);
      },
    });
    const adapter = new RedisPubSubEventBusAdapter({ client, serde });
    const bus = new EventBus<{ issued: { coupons: Map<string, Coupon> } }>({
      adapter,
      namespace: new Namespace(uniqueName("coupon")),
    });
    try {
      const received = bus.asPromise("issued");
      await bus.addListener("issued", () => {});
      await bus.dispatch("issued", { coupons: new Map([["a", new Coupon("SAVE10")]]) });
      const coupon = (await received).coupons.get("a");
      expect(coupon).toBeInstanceOf(Coupon);
      expect(coupon?.describe()).toBe("coupon SAVE10");
    } finally {
      await bus.close();
      await adapter.close();
    }
  });

  test("a dispatch through a closed client rejects with the driver's error", async () => {
    const closed = createRedisClient(url);
    await closed.quit();
    const bus = new EventBus<Events>({
      adapter: new RedisPubSubEventBusAdapter({ client: closed, serde: newSerde() }),
    });
    await expect(bus.dispatch("other", { n: 1 })).rejects.toThrow(/closed/i);
  });

  test("two processes: one dispatches, the other receives and answers", async () => {
    const namespace = uniqueName("procs");
    const bus = new EventBus<{
      ping: { at: Date; tags: Set<string> };
      pong: { at: Date; tags: Set<string>; pid: number };
    }>({
      adapter: new RedisPubSubEventBusAdapter({ client, serde: newSerde() }),
      namespace: new Namespace(namespace),
    });
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        fileURLToPath(new URL("./fixtures/echo-process.ts", import.meta.url)),
        url,
        namespace,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      await waitForLine(child, "ready");
      let answered!: (pong: { at: Date; tags: Set<string>; pid: number }) => void;
      const pong = new Promise<{ at: Date; tags: Set<string>; pid: number }>((resolve) => {
        answered = resolve;
      });
      // Resolves once subscribed: the answer cannot come before.
      await bus.listenOnce("pong", (answer) => answered(answer));
      const ping = { at: new Date("2026-01-02T03:04:05.678Z"), tags: new Set(["a", "b"]) };
      await bus.dispatch("ping", ping);
      const answer = await pong;
      expect(answer.pid).toBe(child.pid);
      expect(answer.at).toEqual(ping.at);
      expect(answer.tags).toEqual(ping.tags);
      expect(await new Promise((resolve) => child.once("exit", resolve))).toBe(0);
    } finally {
      child.kill();
      await bus.close();
    }
  });

  describe("a Redis restart", () => {
    let redis: PrivateRedisServer;
    let port: number;
    const startRedis = () => redis.start();
    const stopRedis = () => redis.stop();

    beforeAll(async () => {
      redis = await PrivateRedisServer.start();
      port = redis.port;
    });

    afterAll(async () => {
      await stopRedis();
    });

    test("the subscriber reconnects and resubscribes by itself", async () => {
      const publisher = new Redis({ port, retryStrategy: () => 100 });
      publisher.on("error", () => {});
      const adapter = new RedisPubSubEventBusAdapter({ client: publisher, serde: newSerde() });
      const bus = new EventBus<Events>({
        adapter,
        namespace: new Namespace(uniqueName("restart")),
      });
      try {
        const listener = vi.fn();
        await bus.addListener("other", listener);
        await bus.dispatch("other", { n: 1 });
        await vi.waitFor(() => expect(listener).toHaveBeenCalledWith({ n: 1 }));

        await stopRedis();
        await startRedis();

        // Published until heard: the subscriber is back and subscribed again.
        let n = 1;
        await vi.waitFor(
          async () => {
            n += 1;
            await bus.dispatch("other", { n });
            expect(listener.mock.calls.length).toBeGreaterThan(1);
          },
          { timeout: 15_000, interval: 200 },
        );
      } finally {
        await bus.close();
        await adapter.close();
        publisher.disconnect();
      }
    }, 30_000);
  });
});

function waitForLine(child: ChildProcess, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffer = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      if (buffer.split("\n").includes(line)) {
        resolve();
      }
    });
    child.once("exit", (code) => reject(new Error(`child exited with ${code} before "${line}"`)));
  });
}
