import { expectTypeOf, test } from "vitest";
import { MemoryEventBusAdapter } from "../../src/event-bus/adapters/memory/memory-event-bus-adapter.js";
import { EventBus } from "../../src/event-bus/event-bus.js";
import type {
  IEventDispatcher,
  IEventListenable,
} from "../../src/event-bus/event-bus-contracts.js";

type Events = { paid: { orderId: string }; shipped: { orderId: string; carrier: string } };

// These are compile-time checks: `npm run typecheck` fails if an expected error disappears.
test("event names and payloads are checked against the map", async () => {
  const bus = new EventBus<Events>({ adapter: new MemoryEventBusAdapter() });
  await bus.dispatch("paid", { orderId: "1" });
  // @ts-expect-error: an unknown event
  await bus.dispatch("refunded", { orderId: "1" });
  // @ts-expect-error: a payload missing a field
  await bus.dispatch("shipped", { orderId: "1" });
  await bus.addListener("shipped", (payload) => {
    expectTypeOf(payload).toEqualTypeOf<{ orderId: string; carrier: string }>();
  });
  expectTypeOf(bus.asPromise("paid")).resolves.toEqualTypeOf<{ orderId: string }>();
});

test("the split contracts expose only their half", () => {
  const bus = new EventBus<Events>({ adapter: new MemoryEventBusAdapter() });
  const listenable: IEventListenable<Events> = bus;
  const dispatcher: IEventDispatcher<Events> = bus;
  // @ts-expect-error: a listenable cannot dispatch
  void listenable.dispatch;
  // @ts-expect-error: a dispatcher cannot listen
  void dispatcher.addListener;
});
