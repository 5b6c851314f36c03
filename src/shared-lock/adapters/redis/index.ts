/**
 * The Redis shared lock adapter (needs `ioredis`).
 *
 * @module hasp/shared-lock/redis-shared-lock-adapter
 */
export {
  RedisSharedLockAdapter,
  type RedisSharedLockAdapterSettings,
  type RedisSharedLockClient,
} from "./redis-shared-lock-adapter.js";
