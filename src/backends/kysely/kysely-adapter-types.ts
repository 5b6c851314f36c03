// The types every Kysely adapter's import path exports alike: the listener's connection (its
// `listener` setting) and the shape of the SQL its `statements()` shows.

export type {
  PgListenClient,
  PgListenConnection,
  PgListenPool,
} from "./postgres/postgres-inbox.js";
export type { SqlDialectName, SqlSchemaStatements, SqlStatement } from "./sql-statement.js";
