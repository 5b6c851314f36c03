/**
 * The SQL shared lock adapter over Kysely: PostgreSQL, MySQL/MariaDB, SQLite (needs `kysely`).
 * @module hasp/shared-lock/kysely-shared-lock-adapter
 */
export type * from "../../../backends/kysely/kysely-adapter-types.js";
export {
  KyselySharedLockAdapter,
  type KyselySharedLockAdapterSettings,
  type KyselySharedLockFreed,
  type KyselySharedLockKeyArgs,
  type KyselySharedLockOwnerArgs,
  type KyselySharedLockReaderArgs,
  type KyselySharedLockRefreshArgs,
  type KyselySharedLockRefreshed,
  type KyselySharedLockStatements,
  type KyselySharedLockWriterArgs,
} from "./kysely-shared-lock-adapter.js";
