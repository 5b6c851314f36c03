/**
 * The MongoDB lock adapter (needs `mongodb`).
 *
 * @module hasp/lock/mongodb-lock-adapter
 */
export {
  MongodbLockAdapter,
  type MongodbLockAdapterSettings,
} from "./mongodb-lock-adapter.js";
