// The SQL of KyselyLockAdapter on SQLite: plain statements (no procedures), run one after another
// on the instance's one connection (see sqlite-statement-queue.ts). The table is the one of
// kysely-lock-statements.ts, without `waiters` (SQLite has no release signal: waits poll).
//
// Time: julianday('now') is fixed for the whole statement and exact to the millisecond; the
// token's µs are that ms x 1000.

import { statement } from "../../../../backends/kysely/sql-statement.js";
import {
  free,
  type KyselyLockKeyArgs,
  type KyselyLockOwnerArgs,
  type KyselyLockStatements,
  type KyselyLockTtlArgs,
  liveHold,
  unexpired,
} from "../kysely-lock-statements.js";

const NOW_MS = "CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";
const NOW_US = `(${NOW_MS} * 1000)`;

/** SQLite's statements on `table`. */
export function sqliteStatements(table: string): KyselyLockStatements {
  const t = `"${table}"`;
  const live = liveHold(NOW_MS);
  const s = <TArgs extends Record<string, unknown>>(text: string) =>
    statement<TArgs>("sqlite", text);
  return {
    dialect: "sqlite",
    createSchema: [
      // WITHOUT ROWID: the rows live in the key's b-tree, so a write changes one page, not a
      // table page and an index page (each write's pages go to the WAL whole: half the bytes).
      // No index beyond the key: removeExpired, an occasional sweep, can scan.
      `CREATE TABLE IF NOT EXISTS ${t} (lock_key TEXT PRIMARY KEY NOT NULL, owner TEXT, token INTEGER NOT NULL, expires_at INTEGER) WITHOUT ROWID`,
    ],
    dropSchema: [`DROP TABLE IF EXISTS ${t}`],
    returning: true,
    affected: "count",
    // :key, :owner, :ttl (ms; NULL: never expires). Answers owner, token, remaining (ms; NULL:
    // never expires) of the row as it is after the statement. In DO UPDATE SET every expression
    // reads the row as it was before the statement, and excluded.* is the row VALUES proposed:
    // its token is the server time (ms x 1000), read once.
    acquire: s<KyselyLockTtlArgs>(`
      INSERT INTO ${t} AS l (lock_key, owner, token, expires_at)
      VALUES (:key, :owner, ${NOW_US}, ${NOW_MS} + :ttl)
      ON CONFLICT (lock_key) DO UPDATE SET
        token = CASE WHEN ${free("excluded.token / 1000")}
          THEN max(l.token + 1, excluded.token) ELSE l.token END,
        owner = CASE WHEN ${free("excluded.token / 1000")} OR l.owner = excluded.owner
          THEN excluded.owner ELSE l.owner END,
        expires_at = CASE WHEN ${free("excluded.token / 1000")} OR l.owner = excluded.owner
          THEN excluded.expires_at ELSE l.expires_at END
      RETURNING owner, token, expires_at - ${NOW_MS} AS remaining`),
    // :key, :owner. Answers the affected-row count: 1 when our live hold was freed.
    release: s<KyselyLockOwnerArgs>(`
      UPDATE ${t} SET owner = NULL, expires_at = ${NOW_MS}
      WHERE lock_key = :key AND owner = :owner AND ${unexpired(NOW_MS)}`),
    // :key. Answers the affected-row count: 1 when a live hold was freed.
    forceRelease: s<KyselyLockKeyArgs>(`
      UPDATE ${t} SET owner = NULL, expires_at = ${NOW_MS}
      WHERE lock_key = :key AND ${live}`),
    // :key, :owner, :ttl (ms). Answers the affected-row count: 1 when our expiring hold was
    // refreshed.
    refresh: s<KyselyLockTtlArgs & { ttl: number }>(`
      UPDATE ${t} SET expires_at = ${NOW_MS} + :ttl
      WHERE lock_key = :key AND owner = :owner AND expires_at > ${NOW_MS}`),
    // :key. Answers owner, token, remaining of the live hold; no row when free.
    getState: s<KyselyLockKeyArgs>(`
      SELECT owner, token, expires_at - ${NOW_MS} AS remaining FROM ${t}
      WHERE lock_key = :key AND ${live}`),
    // :grace (ms). Answers the affected-row count.
    removeExpired: s(`DELETE FROM ${t} WHERE expires_at < ${NOW_MS} - :grace`),
  };
}
