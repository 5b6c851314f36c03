export {
  RedisLockAdapter,
  type RedisLockAdapterSettings,
  type RedisLockClient,
} from "./redis-lock-adapter.js";
