/**
 * The event bus transport over Redis pub/sub (needs `ioredis`).
 *
 * @module hasp/event-bus/redis-pub-sub-event-bus-adapter
 */
export {
  RedisPubSubEventBusAdapter,
  type RedisPubSubEventBusAdapterSettings,
} from "./redis-pub-sub-event-bus-adapter.js";
