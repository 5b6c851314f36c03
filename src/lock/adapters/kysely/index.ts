/**
 * The SQL lock adapter over Kysely: PostgreSQL, MySQL/MariaDB, SQLite (needs `kysely`).
 * @module hasp/lock/kysely-lock-adapter
 */
export {
  KyselyLockAdapter,
  type KyselyLockAdapterSettings,
  type KyselyLockDialect,
  type KyselyLockEntryArgs,
  type KyselyLockKeyArgs,
  type KyselyLockOwnerArgs,
  type KyselyLockStatement,
  type KyselyLockStatements,
  type KyselyLockTtlArgs,
  type KyselyLockWaitArgs,
  type PgListenClient,
  type PgListenConnection,
  type PgListenPool,
  type SqlDialectName,
  type SqlSchemaStatements,
  type SqlStatement,
} from "./kysely-lock-adapter.js";
