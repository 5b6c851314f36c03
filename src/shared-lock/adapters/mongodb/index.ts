/**
 * The MongoDB shared lock adapter (needs `mongodb`).
 *
 * @module hasp/shared-lock/mongodb-shared-lock-adapter
 */
export {
  MongodbSharedLockAdapter,
  type MongodbSharedLockAdapterSettings,
} from "./mongodb-shared-lock-adapter.js";
