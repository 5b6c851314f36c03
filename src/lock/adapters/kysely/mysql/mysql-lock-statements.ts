// The SQL of KyselyLockAdapter on MySQL and MariaDB: plain statements (no procedures), each
// prepared once per connection on MariaDB (see src/backends/kysely/mysql/mysql-sql-dialect.ts). The table is the one of
// kysely-lock-statements.ts, without `waiters` (no release signal: waits poll). Keys and owners
// are VARBINARY: compared byte for byte, where the default collations would make `A` and `a` (or
// `a` and `a `) one lock.
//
// Time: @@timestamp is the statement's start as Unix seconds, a double with µs (what NOW() and
// UTC_TIMESTAMP() read): fixed for the statement and free of the session's time zone, where
// UNIX_TIMESTAMP of a local time would jump at a DST change. A double holds today's µs exactly
// enough to round to the right one. It is cheaper than
// TIMESTAMPDIFF(MICROSECOND, '1970-01-01', UTC_TIMESTAMP(6)), which parses that date each time.
//
// How a statement says it changed a hold: the affected-row count depends on the connection's
// CLIENT_FOUND_ROWS flag (an UPDATE that changes nothing counts as 1 with it, 0 without);
// LAST_INSERT_ID(expr) does not. So release, forceRelease and refresh set
// `token = LAST_INSERT_ID(token)` on the row they match, and the insert id answers.

import {
  type MysqlServerOptions,
  mysqlOperation,
} from "../../../../backends/kysely/mysql/mysql-statement.js";
import { KEY_MAX_BYTES, statement } from "../../../../backends/kysely/sql-statement.js";
import {
  type KyselyLockKeyArgs,
  type KyselyLockOwnerArgs,
  type KyselyLockStatements,
  type KyselyLockTtlArgs,
  liveHold,
} from "../kysely-lock-statements.js";

/** How the MySQL family's statements are run; see `KyselyLockAdapterSettings`. */
export type KyselyLockMysqlOptions = MysqlServerOptions;

const NOW_US = "CAST(@@timestamp * 1000000 AS SIGNED)";
const NOW_MS = `(${NOW_US} DIV 1000)`;
const LIVE = liveHold(NOW_MS);
const HELD_BY_OTHER = `(owner <> :owner AND (expires_at IS NULL OR expires_at > ${NOW_MS}))`;

/**
 * MySQL's and MariaDB's statements on `table`.
 *
 * @param returning MariaDB 10.5+ answers an upsert with `RETURNING`; MySQL cannot, so its
 *   acquire answers through `LAST_INSERT_ID(expr)` (the token, or 0 when not acquired).
 */
export function mysqlStatements(
  table: string,
  { returning, prepared }: KyselyLockMysqlOptions,
): KyselyLockStatements {
  const t = `\`${table}\``;
  const operation = <TArgs extends Record<string, unknown>>(name: string, text: string) =>
    mysqlOperation<TArgs>(table, name, text, prepared);
  return {
    dialect: "mysql",
    createSchema: [
      `CREATE TABLE IF NOT EXISTS ${t} (lock_key VARBINARY(${KEY_MAX_BYTES}) NOT NULL PRIMARY KEY, owner VARBINARY(1020) NULL, token BIGINT NOT NULL, expires_at BIGINT NULL) ENGINE=InnoDB`,
    ],
    dropSchema: [`DROP TABLE IF EXISTS ${t}`],
    returning,
    affected: "insert-id",
    acquire: operation<KyselyLockTtlArgs>("acquire", acquireSql(t, returning)),
    // :key, :owner. Answers LAST_INSERT_ID: the token when our live hold was freed.
    release: operation<KyselyLockOwnerArgs>(
      "release",
      `
      UPDATE ${t} SET owner = NULL, expires_at = ${NOW_MS}, token = LAST_INSERT_ID(token)
      WHERE lock_key = :key AND owner = :owner AND ${LIVE}`,
    ),
    // :key. Answers LAST_INSERT_ID: the token when a live hold was freed.
    forceRelease: operation<KyselyLockKeyArgs>(
      "force_release",
      `
      UPDATE ${t} SET owner = NULL, expires_at = ${NOW_MS}, token = LAST_INSERT_ID(token)
      WHERE lock_key = :key AND ${LIVE}`,
    ),
    // :key, :owner, :ttl (ms). Answers LAST_INSERT_ID: the token when our expiring hold was
    // refreshed.
    refresh: operation<KyselyLockTtlArgs & { ttl: number }>(
      "refresh",
      `
      UPDATE ${t} SET expires_at = ${NOW_MS} + :ttl, token = LAST_INSERT_ID(token)
      WHERE lock_key = :key AND owner = :owner AND expires_at > ${NOW_MS}`,
    ),
    // :key. Answers owner, token, remaining of the live hold; no row when free.
    getState: operation<KyselyLockKeyArgs>(
      "get_state",
      `
      SELECT CONVERT(owner USING utf8mb4) AS owner, token, expires_at - ${NOW_MS} AS remaining
      FROM ${t} WHERE lock_key = :key AND ${LIVE}`,
    ),
    // :grace (ms). Answers the affected-row count.
    removeExpired: statement("mysql", `DELETE FROM ${t} WHERE expires_at < ${NOW_MS} - :grace`),
  };
}

/**
 * :key, :owner, :ttl (ms; NULL: never expires). Answers LAST_INSERT_ID: the token when acquired,
 * 0 when another holds the key; with `returning` also owner, token, remaining (ms; NULL: never
 * expires) of the row as it is after the statement. ON DUPLICATE KEY UPDATE assigns left to
 * right and later expressions see earlier assignments: token and owner are decided from the old
 * row, then expires_at follows owner (it is ours exactly when we took the row).
 */
function acquireSql(t: string, returning: boolean): string {
  return `
      INSERT INTO ${t} (lock_key, owner, token, expires_at)
      VALUES (:key, :owner, LAST_INSERT_ID(${NOW_US}), ${NOW_MS} + :ttl)
      ON DUPLICATE KEY UPDATE
        token = IF(${HELD_BY_OTHER}, token + LAST_INSERT_ID(0),
          LAST_INSERT_ID(IF(${LIVE}, token, GREATEST(token + 1, ${NOW_US})))),
        owner = IF(${HELD_BY_OTHER}, owner, :owner),
        expires_at = IF(owner = :owner, ${NOW_MS} + :ttl, expires_at)
      ${returning ? `RETURNING CONVERT(owner USING utf8mb4) AS owner, token, expires_at - ${NOW_MS} AS remaining` : ""}`;
}
