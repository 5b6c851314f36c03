export {
  KyselyLockAdapter,
  type KyselyLockAdapterSettings,
  type KyselyLockDialect,
  type KyselyLockStatement,
  type KyselyLockStatements,
  type PgListenClient,
  type PgListenConnection,
  type PgListenPool,
} from "./kysely-lock-adapter.js";
