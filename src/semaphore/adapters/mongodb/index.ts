/**
 * The MongoDB semaphore adapter (needs `mongodb`).
 *
 * @module hasp/semaphore/mongodb-semaphore-adapter
 */
export {
  MongodbSemaphoreAdapter,
  type MongodbSemaphoreAdapterSettings,
} from "./mongodb-semaphore-adapter.js";
