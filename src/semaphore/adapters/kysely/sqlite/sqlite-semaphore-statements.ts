// The SQL of KyselySemaphoreAdapter on SQLite. SQLite has no procedures, and one writer: acquire
// is one upsert of the key's row that decides, in its SET, whether the caller gets a slot (a new
// token) or keeps its own (the token stays), and records the request in the row; BEFORE triggers
// on the row then drop the key's expired slots and write the caller's slot. The upsert's
// RETURNING reads the slots after the triggers ran (SQLite runs BEFORE triggers ahead of
// RETURNING's subqueries). The tables are those of kysely-semaphore-statements.ts, the key's row
// also keeping its last request (slot_id, slot_limit, slot_ttl, at_ms) for the triggers.
//
// Time: julianday('now') is fixed for the whole statement and exact to the millisecond; the
// token's µs are that ms x 1000.

import { statement } from "../../../../backends/kysely/sql-statement.js";
import {
  type KyselySemaphoreAcquireArgs,
  type KyselySemaphoreRefreshArgs,
  type KyselySemaphoreStatements,
  liveSlot as live,
  slotStatements,
  slotsTable,
} from "../kysely-semaphore-statements.js";

const NOW_MS = "CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";
const NOW_US = `(${NOW_MS} * 1000)`;

/**
 * The triggers of the key's row: a new row (a key without slots) writes the caller's slot; an
 * updated one drops the expired slots, then restarts the caller's live slot (the token stayed)
 * or writes its new one (a new token). SQLite fires BEFORE INSERT triggers on an upsert that
 * then updates: that one acts only when the key has no row yet.
 */
function acquireTriggers(t: string, s: string, table: string): string[] {
  const slot = "NEW.sem_key, NEW.slot_id, NEW.token, NEW.slot_limit, NEW.at_ms + NEW.slot_ttl";
  return [
    `CREATE TRIGGER IF NOT EXISTS "${table}:acquire_new" BEFORE INSERT ON ${t}
    WHEN NOT EXISTS (SELECT 1 FROM ${t} WHERE sem_key = NEW.sem_key) BEGIN
      INSERT INTO ${s} (sem_key, slot_id, token, slot_limit, expires_at) VALUES (${slot});
    END`,
    `CREATE TRIGGER IF NOT EXISTS "${table}:acquire" BEFORE UPDATE OF at_ms ON ${t} BEGIN
      DELETE FROM ${s} WHERE sem_key = NEW.sem_key AND expires_at <= NEW.at_ms;
      UPDATE ${s} SET expires_at = NEW.at_ms + NEW.slot_ttl
      WHERE sem_key = NEW.sem_key AND slot_id = NEW.slot_id AND NEW.token = OLD.token;
      INSERT INTO ${s} (sem_key, slot_id, token, slot_limit, expires_at)
      SELECT ${slot} WHERE NEW.token <> OLD.token;
    END`,
    `CREATE TRIGGER IF NOT EXISTS "${table}:forget" AFTER DELETE ON ${t} BEGIN
      DELETE FROM ${s} WHERE sem_key = OLD.sem_key;
    END`,
  ];
}

/**
 * :key, :slot, :limit, :ttl. The key's live slots, as the SET reads them: the row as it was
 * before the statement, and excluded.* the row VALUES proposed (its token the server's µs).
 */
function acquireSql(t: string, s: string): string {
  const now = "excluded.at_ms";
  const ofKey = `FROM ${s} AS s WHERE s.sem_key = k.sem_key AND ${live(now, "s.")}`;
  // RETURNING names the row by its table (the alias is not in scope there).
  const after = `FROM ${s} AS s WHERE s.sem_key = ${t}.sem_key AND ${live(`${t}.at_ms`, "s.")}`;
  return `
    INSERT INTO ${t} AS k (sem_key, token, slot_id, slot_limit, slot_ttl, at_ms)
    VALUES (:key, ${NOW_US}, :slot, :limit, :ttl, ${NOW_MS})
    ON CONFLICT (sem_key) DO UPDATE SET
      slot_id = excluded.slot_id,
      slot_limit = excluded.slot_limit,
      slot_ttl = excluded.slot_ttl,
      at_ms = excluded.at_ms,
      token = CASE
        WHEN EXISTS (SELECT 1 ${ofKey} AND s.slot_id = excluded.slot_id) THEN k.token
        WHEN (SELECT count(*) ${ofKey})
          < min(excluded.slot_limit, coalesce((SELECT min(s.slot_limit) ${ofKey}), excluded.slot_limit))
          THEN max(k.token + 1, excluded.token)
        ELSE k.token END
    RETURNING
      (SELECT s.token ${after} AND s.slot_id = ${t}.slot_id) AS granted,
      (SELECT min(${t}.slot_limit, coalesce(min(s.slot_limit), ${t}.slot_limit)) ${after}) AS lim,
      (SELECT count(*) ${after}) AS taken,
      (SELECT min(s.expires_at) - ${t}.at_ms ${after}) AS remaining`;
}

/** SQLite's statements on `table` (and `<table>:slots`). */
export function sqliteSemaphoreStatements(table: string): KyselySemaphoreStatements {
  const t = `"${table}"`;
  const s = `"${slotsTable(table)}"`;
  const sql = <TArgs extends Record<string, unknown>>(text: string) =>
    statement<TArgs>("sqlite", text);
  return {
    dialect: "sqlite",
    createSchema: [
      `CREATE TABLE IF NOT EXISTS ${t} (sem_key TEXT PRIMARY KEY NOT NULL, token INTEGER NOT NULL, slot_id TEXT, slot_limit INTEGER, slot_ttl INTEGER, at_ms INTEGER) WITHOUT ROWID`,
      `CREATE TABLE IF NOT EXISTS ${s} (sem_key TEXT NOT NULL, slot_id TEXT NOT NULL, token INTEGER NOT NULL, slot_limit INTEGER NOT NULL, expires_at INTEGER, PRIMARY KEY (sem_key, slot_id)) WITHOUT ROWID`,
      ...acquireTriggers(t, s, table),
    ],
    dropSchema: [`DROP TABLE IF EXISTS ${t}`, `DROP TABLE IF EXISTS ${s}`],
    acquire: sql<KyselySemaphoreAcquireArgs>(acquireSql(t, s)),
    ...slotStatements((_operation, text) => sql(text), s, NOW_MS),
    refresh: sql<KyselySemaphoreRefreshArgs>(
      `UPDATE ${s} SET expires_at = ${NOW_MS} + :ttl
      WHERE sem_key = :key AND slot_id = :slot AND expires_at > ${NOW_MS}`,
    ),
    freed: "count",
    refreshed: "count",
    removeExpired: sql(
      `DELETE FROM ${t} WHERE token < ${NOW_US} - :grace * 1000
      AND NOT EXISTS (SELECT 1 FROM ${s} AS s WHERE s.sem_key = ${t}.sem_key AND ${live(NOW_MS, "s.")})`,
    ),
  };
}
