import { describe, expect, test } from "vitest";
import { MemoryEventBusAdapter } from "../../src/event-bus/adapters/memory/memory-event-bus-adapter.js";
import { EventBus } from "../../src/event-bus/event-bus.js";
import { eventBusAdapterTestSuite } from "../../src/event-bus/test-suites/event-bus-adapter-test-suite.js";

eventBusAdapterTestSuite({ createAdapter: () => new MemoryEventBusAdapter() });

describe("MemoryEventBusAdapter delivery", () => {
  test("dispatch has called the listeners, in the order added, when it returns", async () => {
    const bus = new EventBus<{ paid: { orderId: string } }>({
      adapter: new MemoryEventBusAdapter(),
    });
    const heard: string[] = [];
    await bus.addListener("paid", ({ orderId }) => {
      heard.push(`first ${orderId}`);
    });
    await bus.addListener("paid", async ({ orderId }) => {
      heard.push(`second ${orderId}`);
      await new Promise<void>(() => {}); // never settles: not waited for
    });
    const dispatched = bus.dispatch("paid", { orderId: "1" });
    expect(heard).toEqual(["first 1", "second 1"]);
    await dispatched;
  });
});
