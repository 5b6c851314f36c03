export {
  RedisLockAdapter,
  type RedisLockAdapterSettings,
  type RedisLockClient,
  RedisReplicaAckError,
} from "./redis-lock-adapter.js";
