/**
 * The SQL semaphore adapter over Kysely: PostgreSQL, MySQL/MariaDB, SQLite (needs `kysely`).
 * @module hasp/semaphore/kysely-semaphore-adapter
 */
export type * from "../../../backends/kysely/kysely-adapter-types.js";
export {
  type KyselySemaphoreAcquireArgs,
  KyselySemaphoreAdapter,
  type KyselySemaphoreAdapterSettings,
  type KyselySemaphoreKeyArgs,
  type KyselySemaphoreRefreshArgs,
  type KyselySemaphoreSlotArgs,
  type KyselySemaphoreStatements,
} from "./kysely-semaphore-adapter.js";
