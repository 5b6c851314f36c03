/**
 * A typed, namespaced event bus over a transport adapter.
 *
 * @module hasp/event-bus
 */
export {
  EventBus,
  type EventBusSettings,
  type ListenerErrorHandler,
} from "./event-bus.js";
export type {
  AdapterListener,
  BaseEventMap,
  EventListener,
  IEventBus,
  IEventBusAdapter,
  IEventDispatcher,
  IEventListenable,
  Unsubscribe,
} from "./event-bus-contracts.js";
