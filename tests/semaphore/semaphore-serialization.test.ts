import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { RedisPubSubEventBusAdapter } from "../../src/event-bus/adapters/redis/redis-pub-sub-event-bus-adapter.js";
import { EventBus } from "../../src/event-bus/event-bus.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { MemorySemaphoreAdapter } from "../../src/semaphore/adapters/memory/memory-semaphore-adapter.js";
import type { ISemaphore } from "../../src/semaphore/contracts/semaphore.js";
import {
  SEMAPHORE_EVENTS,
  type SemaphoreEventMap,
} from "../../src/semaphore/contracts/semaphore-events.js";
import { SEMAPHORE_STATE } from "../../src/semaphore/contracts/semaphore-state.js";
import { SemaphoreProvider } from "../../src/semaphore/semaphore-provider.js";
import { SuperJsonSerdeAdapter } from "../../src/serde/adapters/super-json/super-json-serde-adapter.js";
import { Serde } from "../../src/serde/serde.js";
import { SerdeError } from "../../src/serde/serde-error.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { createRedisClient, describeWithBackend, uniqueName } from "../harness/backends.js";

const LONG = TimeSpan.fromMinutes(1);
const newSerde = () => new Serde(new SuperJsonSerdeAdapter());

/** Two "processes" sharing one store: each with its own serde and provider. */
function twoProcesses(namespace = new Namespace(uniqueName("sem"))) {
  const adapter = new MemorySemaphoreAdapter();
  const serdeA = newSerde();
  const serdeB = newSerde();
  const providerA = new SemaphoreProvider({ adapter, namespace, serde: serdeA });
  const providerB = new SemaphoreProvider({ adapter, namespace, serde: serdeB });
  return { serdeA, serdeB, providerA, providerB };
}

describe("semaphore serialization", () => {
  test("a slot taken in process A is released by its revived copy in process B", async () => {
    const { serdeA, serdeB, providerA } = twoProcesses();
    const semaphore = providerA.create("exports", { limit: 3, ttl: LONG });
    const token = await semaphore.acquireOrFail();
    const text = serdeA.serialize(semaphore);
    const data = (JSON.parse(text) as { body: { json: Record<string, unknown> } }).body.json;
    expect(Object.keys(data).sort()).toEqual(["id", "key", "limit", "proof", "providerId", "ttl"]);
    const revived = serdeB.deserialize<ISemaphore>(text);
    expect(revived).toMatchObject({ slotId: semaphore.slotId, limit: 3, fencingToken: null });
    expect(await revived.getState()).toMatchObject({
      type: SEMAPHORE_STATE.ACQUIRED,
      fencingToken: token,
    });
    expect(await revived.release()).toBe(true);
    expect(await semaphore.getState()).toEqual({ type: SEMAPHORE_STATE.EXPIRED });
  });

  test("a semaphore with a given slot id has no proof, and revives as that slot", async () => {
    const { serdeA, serdeB, providerA } = twoProcesses();
    const semaphore = providerA.create("exports", { limit: 1, slotId: "worker-1" });
    await semaphore.acquireOrFail();
    const revived = serdeB.deserialize<ISemaphore>(serdeA.serialize(semaphore));
    expect(revived.slotId).toBe("worker-1");
    expect(await revived.release()).toBe(true);
  });

  test("a payload naming a fencing token, or of another shape, is refused", () => {
    const { serdeA, serdeB, providerA } = twoProcesses();
    const text = serdeA.serialize(providerA.create("exports", { limit: 2 }));
    for (const edit of [
      (data: Record<string, unknown>) => {
        data.fencingToken = 99;
      },
      (data: Record<string, unknown>) => {
        data.limit = 2.5;
      },
      (data: Record<string, unknown>) => {
        data.ttl = -1;
      },
      (data: Record<string, unknown>) => {
        delete data.limit;
      },
    ]) {
      const document = JSON.parse(text) as { body: { json: Record<string, unknown> } };
      edit(document.body.json);
      expect(() => serdeB.deserialize(JSON.stringify(document))).toThrow(SerdeError);
    }
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

  test("a semaphore in an event over the Redis event bus arrives working, and another process releases its slot", async () => {
    const namespace = new Namespace(uniqueName("sem_bus"));
    const adapter = new MemorySemaphoreAdapter();
    const serdeA = newSerde();
    const serdeB = newSerde();
    const transportA = new RedisPubSubEventBusAdapter({ client: clientA, serde: serdeA });
    const transportB = new RedisPubSubEventBusAdapter({ client: clientB, serde: serdeB });
    const busNamespace = namespace.append("bus");
    const busA = new EventBus<SemaphoreEventMap>({ adapter: transportA, namespace: busNamespace });
    const busB = new EventBus<SemaphoreEventMap>({ adapter: transportB, namespace: busNamespace });
    const providerA = new SemaphoreProvider({ adapter, namespace, serde: serdeA, eventBus: busA });
    const providerB = new SemaphoreProvider({ adapter, namespace, serde: serdeB, eventBus: busB });
    try {
      const heard = vi.fn<(semaphore: ISemaphore) => void>();
      await providerB.addListener(SEMAPHORE_EVENTS.ACQUIRED, (event) => heard(event.semaphore));
      const semaphore = providerA.create("exports", { limit: 2, ttl: LONG });
      const token = await semaphore.acquireOrFail();
      await vi.waitFor(() => expect(heard).toHaveBeenCalledTimes(1), { timeout: 10_000 });
      const received = heard.mock.calls[0]?.[0];
      expect(received).not.toBe(semaphore);
      expect(received?.slotId).toBe(semaphore.slotId);
      expect(await received?.getState()).toMatchObject({ fencingToken: token });
      expect(await received?.release()).toBe(true);
      expect(await semaphore.getState()).toEqual({ type: SEMAPHORE_STATE.EXPIRED });
    } finally {
      await Promise.all([providerA.close(), providerB.close()]);
      await Promise.all([busA.close(), busB.close()]);
      await Promise.all([transportA.close(), transportB.close()]);
    }
  });
});
