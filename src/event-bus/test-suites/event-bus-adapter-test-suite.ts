import { getEventListeners } from "node:events";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { Namespace } from "../../namespace/namespace.js";
import { TimeoutError } from "../../resilience/resilience-errors.js";
import { timeout } from "../../resilience/timeout.js";
import { Task } from "../../task/task.js";
import { TimeSpan } from "../../time-span/time-span.js";
import { EventBus, type ListenerErrorHandler } from "../event-bus.js";
import type { IEventBusAdapter } from "../event-bus-contracts.js";

/** Settings of {@link eventBusAdapterTestSuite}: how to get the adapter under test. */
export type EventBusAdapterTestSuiteSettings = {
  /** A fresh adapter (or one shared by the suite) for each test. */
  createAdapter: () => IEventBusAdapter | Promise<IEventBusAdapter>;
  /** Called after each test with what `createAdapter` returned. */
  destroyAdapter?: (adapter: IEventBusAdapter) => void | Promise<void>;
  /**
   * Whether payloads cross a process boundary (through a serde): then listeners receive an
   * equal copy rather than the very object dispatched.
   * @default false
   */
  serializesPayloads?: boolean;
};

type Events = {
  "order-paid": { orderId: string; at: Date; lines: Map<string, number> };
  "order-shipped": { orderId: string };
  sentinel: { n: number };
};

let namespaceCounter = 0;

/**
 * The behaviour every event bus adapter must have, specified once. Run it in a vitest file:
 *
 * @example
 * eventBusAdapterTestSuite({ createAdapter: () => new MemoryEventBusAdapter() });
 */
export function eventBusAdapterTestSuite(settings: EventBusAdapterTestSuiteSettings): void {
  const { createAdapter, destroyAdapter, serializesPayloads = false } = settings;

  describe("event bus adapter conformance", () => {
    let adapter: IEventBusAdapter;
    let namespace: Namespace;
    let errors: Array<{ error: unknown; event: string }>;
    const buses: EventBus<Events>[] = [];

    const onListenerError: ListenerErrorHandler = (error, { event }) => {
      errors.push({ error, event });
    };

    function newBus(busNamespace = namespace): EventBus<Events> {
      const bus = new EventBus<Events>({ adapter, namespace: busNamespace, onListenerError });
      buses.push(bus);
      return bus;
    }

    /** Dispatches a sentinel and waits for it: every event dispatched before it has arrived. */
    async function settle(bus: EventBus<Events>): Promise<void> {
      const n = Math.random();
      const arrived = vi.fn();
      await bus.addListener("sentinel", arrived);
      await bus.dispatch("sentinel", { n });
      await vi.waitFor(() => expect(arrived).toHaveBeenCalledWith({ n }), { timeout: 5_000 });
      await bus.removeListener("sentinel", arrived);
    }

    function order(orderId = "42"): Events["order-paid"] {
      return { orderId, at: new Date("2026-11-27T03:00:00Z"), lines: new Map([["sku-1", 2]]) };
    }

    beforeEach(async () => {
      adapter = await createAdapter();
      namespaceCounter += 1;
      namespace = new Namespace(["hasp-suite", `${process.pid}-${Date.now()}-${namespaceCounter}`]);
      errors = [];
    });

    afterEach(async () => {
      await Promise.all(buses.splice(0).map((bus) => bus.close()));
      await destroyAdapter?.(adapter);
    });

    test("a listener receives the payload, with its types intact", async () => {
      const bus = newBus();
      const listener = vi.fn();
      await bus.addListener("order-paid", listener);
      const payload = order();
      await bus.dispatch("order-paid", payload);
      await vi.waitFor(() => expect(listener).toHaveBeenCalledTimes(1));
      const received = listener.mock.calls[0]?.[0] as Events["order-paid"];
      expect(received).toEqual(payload);
      expect(received.at).toBeInstanceOf(Date);
      expect(received.lines).toBeInstanceOf(Map);
      if (!serializesPayloads) {
        expect(received).toBe(payload);
      }
    });

    test("three listeners on one event each hear every dispatch exactly once", async () => {
      const bus = newBus();
      const listeners = [vi.fn(), vi.fn(), vi.fn()];
      for (const listener of listeners) {
        await bus.addListener("order-paid", listener);
      }
      await bus.dispatch("order-paid", order("1"));
      await bus.dispatch("order-paid", order("2"));
      await settle(bus);
      for (const listener of listeners) {
        expect(listener.mock.calls.map(([payload]) => payload.orderId)).toEqual(["1", "2"]);
      }
    });

    test("removing one listener leaves the others subscribed", async () => {
      const bus = newBus();
      const [a, b, c] = [vi.fn(), vi.fn(), vi.fn()];
      await bus.addListener("order-paid", a);
      await bus.addListener("order-paid", b);
      await bus.addListener("order-paid", c);
      await bus.removeListener("order-paid", b);
      await bus.dispatch("order-paid", order());
      await settle(bus);
      expect(a).toHaveBeenCalledTimes(1);
      expect(b).not.toHaveBeenCalled();
      expect(c).toHaveBeenCalledTimes(1);
    });

    test("listeners on two events hear only their own", async () => {
      const bus = newBus();
      const paid = vi.fn();
      const shipped = vi.fn();
      await bus.addListener("order-paid", paid);
      await bus.addListener("order-shipped", shipped);
      await bus.dispatch("order-shipped", { orderId: "7" });
      await settle(bus);
      expect(paid).not.toHaveBeenCalled();
      expect(shipped).toHaveBeenCalledWith({ orderId: "7" });
      await bus.removeListener("order-shipped", shipped);
      await bus.dispatch("order-paid", order());
      await bus.dispatch("order-shipped", { orderId: "8" });
      await settle(bus);
      expect(paid).toHaveBeenCalledTimes(1);
      expect(shipped).toHaveBeenCalledTimes(1);
    });

    test("after the last listener leaves, nothing is delivered", async () => {
      const bus = newBus();
      const listener = vi.fn();
      await bus.addListener("order-paid", listener);
      await bus.removeListener("order-paid", listener);
      await bus.dispatch("order-paid", order());
      await settle(bus);
      expect(listener).not.toHaveBeenCalled();
    });

    test("the same listener added twice is registered once", async () => {
      const bus = newBus();
      const listener = vi.fn();
      await bus.addListener("order-paid", listener);
      await bus.addListener("order-paid", listener);
      await bus.dispatch("order-paid", order());
      await settle(bus);
      expect(listener).toHaveBeenCalledTimes(1);
      await bus.removeListener("order-paid", listener);
      await bus.dispatch("order-paid", order());
      await settle(bus);
      expect(listener).toHaveBeenCalledTimes(1);
    });

    test("listenOnce hears one event, even when two arrive back to back", async () => {
      const bus = newBus();
      const listener = vi.fn();
      await bus.listenOnce("order-paid", listener);
      await Promise.all([
        bus.dispatch("order-paid", order("1")),
        bus.dispatch("order-paid", order("2")),
      ]);
      await settle(bus);
      expect(listener).toHaveBeenCalledTimes(1);
    });

    test("subscribe returns the unsubscribe function", async () => {
      const bus = newBus();
      const listener = vi.fn();
      const unsubscribe = await bus.subscribe("order-shipped", listener);
      await bus.dispatch("order-shipped", { orderId: "1" });
      await settle(bus);
      await unsubscribe();
      await unsubscribe();
      await bus.dispatch("order-shipped", { orderId: "2" });
      await settle(bus);
      expect(listener.mock.calls).toEqual([[{ orderId: "1" }]]);
    });

    test("subscribeOnce hears one event; its unsubscribe removes the listener before that", async () => {
      const bus = newBus();
      const heard = vi.fn();
      const dropped = vi.fn();
      const unsubscribeHeard = await bus.subscribeOnce("order-shipped", heard);
      const unsubscribeDropped = await bus.subscribeOnce("order-shipped", dropped);
      await unsubscribeDropped();
      await bus.dispatch("order-shipped", { orderId: "1" });
      await bus.dispatch("order-shipped", { orderId: "2" });
      await settle(bus);
      expect(heard.mock.calls).toEqual([[{ orderId: "1" }]]);
      expect(dropped).not.toHaveBeenCalled();
      await unsubscribeHeard();
    });

    test("asTask is a lazy Task: it listens when it runs and resolves with the next event", async () => {
      const bus = newBus();
      const next = bus.asTask("order-shipped");
      expect(Task.isTask(next)).toBe(true);
      await bus.dispatch("order-shipped", { orderId: "unheard" });
      await settle(bus);
      const payload = next.then((shipped) => shipped);
      await settle(bus); // the subscription is in place (a remote bus needs a round trip)
      await bus.dispatch("order-shipped", { orderId: "heard" });
      await expect(payload).resolves.toEqual({ orderId: "heard" });
    });

    test("asTask piped through timeout rejects with TimeoutError and removes its listener", async () => {
      const bus = newBus();
      const removeListener = vi.spyOn(adapter, "removeListener");
      const next = bus
        .asTask("order-shipped")
        .pipe(timeout({ waitTime: TimeSpan.fromMilliseconds(20) }));
      await expect(next).rejects.toBeInstanceOf(TimeoutError);
      await vi.waitFor(() => expect(removeListener).toHaveBeenCalledTimes(1), { timeout: 5_000 });
    });

    test("asPromise resolves with the next event", async () => {
      const bus = newBus();
      const next = bus.asPromise("order-shipped");
      // Let the subscription land before dispatching (a remote bus needs a round trip).
      await settle(bus);
      await bus.dispatch("order-shipped", { orderId: "9" });
      await expect(next).resolves.toEqual({ orderId: "9" });
    });

    test("asPromise is abortable and leaves no listener behind", async () => {
      const bus = newBus();
      const controller = new AbortController();
      const next = bus.asPromise("order-shipped", { signal: controller.signal });
      controller.abort(new Error("no longer needed"));
      await expect(next).rejects.toThrow("no longer needed");
      await expect(
        bus.asPromise("order-shipped", { signal: AbortSignal.abort("already") }),
      ).rejects.toBe("already");
    });

    test("50 asPromise on one signal hold one abort listener on it, none once settled", async () => {
      const bus = newBus();
      const controller = new AbortController();
      const heard = Array.from({ length: 50 }, () =>
        bus.asPromise("order-shipped", { signal: controller.signal }),
      );
      const dropped = Array.from({ length: 50 }, () =>
        bus.asPromise("order-paid", { signal: controller.signal }).catch((reason) => reason),
      );
      expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);
      await settle(bus);
      await bus.dispatch("order-shipped", { orderId: "50" });
      expect(await Promise.all(heard)).toEqual(
        Array.from({ length: 50 }, () => ({ orderId: "50" })),
      );
      controller.abort("no longer needed");
      expect(await Promise.all(dropped)).toEqual(
        Array.from({ length: 50 }, () => "no longer needed"),
      );
      expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    });

    test("a throwing or rejecting listener is isolated and reported", async () => {
      const bus = newBus();
      const before = vi.fn();
      const after = vi.fn();
      const thrown = new Error("listener threw");
      const rejected = new Error("listener rejected");
      await bus.addListener("order-shipped", before);
      await bus.addListener("order-shipped", () => {
        throw thrown;
      });
      await bus.addListener("order-shipped", async () => {
        throw rejected;
      });
      await bus.addListener("order-shipped", after);
      await expect(bus.dispatch("order-shipped", { orderId: "1" })).resolves.toBeUndefined();
      await settle(bus);
      await vi.waitFor(() => expect(errors).toHaveLength(2));
      expect(before).toHaveBeenCalledTimes(1);
      expect(after).toHaveBeenCalledTimes(1);
      expect(errors.map(({ error }) => error)).toEqual(expect.arrayContaining([thrown, rejected]));
      expect(errors.every(({ event }) => event === "order-shipped")).toBe(true);
    });

    test("two buses with different namespaces on one adapter never hear each other", async () => {
      const busA = newBus(namespace.append("a"));
      const busB = newBus(namespace.append("b"));
      const heardByA = vi.fn();
      const heardByB = vi.fn();
      await busA.addListener("order-shipped", heardByA);
      await busB.addListener("order-shipped", heardByB);
      await busA.dispatch("order-shipped", { orderId: "for-a" });
      await settle(busA);
      await settle(busB);
      expect(heardByA).toHaveBeenCalledWith({ orderId: "for-a" });
      expect(heardByB).not.toHaveBeenCalled();
    });

    test("two buses with the same namespace share events", async () => {
      const sender = newBus();
      const receiver = newBus();
      const listener = vi.fn();
      await receiver.addListener("order-shipped", listener);
      await sender.dispatch("order-shipped", { orderId: "shared" });
      await vi.waitFor(() => expect(listener).toHaveBeenCalledWith({ orderId: "shared" }));
    });

    test("close removes every listener of that bus only", async () => {
      const closing = newBus();
      const staying = newBus();
      const closed = vi.fn();
      const kept = vi.fn();
      await closing.addListener("order-shipped", closed);
      await staying.addListener("order-shipped", kept);
      await closing.close();
      await staying.dispatch("order-shipped", { orderId: "1" });
      await settle(staying);
      expect(closed).not.toHaveBeenCalled();
      expect(kept).toHaveBeenCalledTimes(1);
    });

    test("await using a bus closes it at the end of the block", async () => {
      const staying = newBus();
      const closed = vi.fn();
      const kept = vi.fn();
      await staying.addListener("order-shipped", kept);
      {
        await using scoped = newBus();
        await scoped.addListener("order-shipped", closed);
      }
      await staying.dispatch("order-shipped", { orderId: "1" });
      await settle(staying);
      expect(closed).not.toHaveBeenCalled();
      expect(kept).toHaveBeenCalledTimes(1);
    });
  });
}
