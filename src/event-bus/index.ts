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
