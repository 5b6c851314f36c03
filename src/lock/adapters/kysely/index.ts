export {
  KyselyLockAdapter,
  type KyselyLockAdapterSettings,
  type KyselyLockDialect,
  type PgListenClient,
  type PgListenConnection,
  type PgListenPool,
} from "./kysely-lock-adapter.js";
