/**
 * The SQL lock adapter over Kysely: PostgreSQL, MySQL/MariaDB, SQLite (needs `kysely`).
 * @module hasp/lock/kysely-lock-adapter
 */
export type * from "../../../backends/kysely/kysely-adapter-types.js";
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
} from "./kysely-lock-adapter.js";
