/**
 * The SQL semaphore adapter over Kysely: PostgreSQL, MySQL/MariaDB, SQLite (needs `kysely`).
 * @module hasp/semaphore/kysely-semaphore-adapter
 */
export {
  type KyselySemaphoreAcquireArgs,
  KyselySemaphoreAdapter,
  type KyselySemaphoreAdapterSettings,
  type KyselySemaphoreKeyArgs,
  type KyselySemaphoreRefreshArgs,
  type KyselySemaphoreSlotArgs,
  type KyselySemaphoreStatements,
  type PgListenClient,
  type PgListenConnection,
  type PgListenPool,
  type SqlDialectName,
  type SqlSchemaStatements,
  type SqlStatement,
} from "./kysely-semaphore-adapter.js";
