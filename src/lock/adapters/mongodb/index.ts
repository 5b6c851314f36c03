export {
  MongodbLockAdapter,
  type MongodbLockAdapterSettings,
} from "./mongodb-lock-adapter.js";
