/**
 * The Redis semaphore adapter (needs `ioredis`).
 *
 * @module hasp/semaphore/redis-semaphore-adapter
 */
export {
  RedisSemaphoreAdapter,
  type RedisSemaphoreAdapterSettings,
} from "./redis-semaphore-adapter.js";
