/**
 * The Redis lock adapter (needs `ioredis`).
 *
 * @module hasp/lock/redis-lock-adapter
 */
export {
  RedisLockAdapter,
  type RedisLockAdapterSettings,
  type RedisLockClient,
  RedisReplicaAckError,
} from "./redis-lock-adapter.js";
