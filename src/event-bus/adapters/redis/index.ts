export {
  RedisPubSubEventBusAdapter,
  type RedisPubSubEventBusAdapterSettings,
} from "./redis-pub-sub-event-bus-adapter.js";
