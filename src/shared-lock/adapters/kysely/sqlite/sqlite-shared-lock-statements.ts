// The SQL of KyselySharedLockAdapter on SQLite. SQLite has no procedures, and one writer: each
// acquire is one upsert of the key's row that decides in its SET (from the row as it was, and the
// key's live reader slots read by subqueries) whether the caller takes the key, takes a reader
// slot or keeps its own, and records the request in the row (req_side, req_owner, req_limit,
// req_ttl, req_intent, at_ms); BEFORE triggers on the row then drop the key's expired reader
// slots and write the caller's slot. The upsert's RETURNING reads the slots after the triggers
// ran (SQLite runs BEFORE triggers ahead of RETURNING's subqueries). forceRelease is an UPDATE of
// the key's row whose trigger deletes its reader slots. The tables are those of
// kysely-shared-lock-statements.ts, the key's row also keeping its last request.
//
// Time: julianday('now') is fixed for the whole statement and exact to the millisecond; the
// token's µs are that ms x 1000.

import { liveSlot as live, slotStatements } from "../../../../backends/kysely/slot-statements.js";
import { statement } from "../../../../backends/kysely/sql-statement.js";
import {
  type KyselySharedLockKeyArgs,
  type KyselySharedLockReaderArgs,
  type KyselySharedLockRefreshArgs,
  type KyselySharedLockStatements,
  type KyselySharedLockWriterArgs,
  liveIntent,
  liveWriter,
  readersTable,
} from "../kysely-shared-lock-statements.js";
import { stateSql } from "../mysql/mysql-shared-lock-statements.js";

const NOW_MS = "CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";
const NOW_US = `(${NOW_MS} * 1000)`;

/**
 * The triggers of the key's row. A new row written by a reader's acquire (a key without a row)
 * writes the caller's slot. An update of `at_ms` (an acquire of either side, a forceRelease)
 * drops the expired reader slots (every slot for a forceRelease), then, for a reader's acquire,
 * restarts the caller's live slot (the token stayed) or writes its new one (a new token). SQLite
 * fires BEFORE INSERT triggers on an upsert that then updates: that one acts only when the key
 * has no row yet.
 */
function triggers(t: string, r: string, table: string): string[] {
  const slot = "NEW.sl_key, NEW.req_owner, NEW.token, NEW.req_limit, NEW.at_ms + NEW.req_ttl";
  return [
    `CREATE TRIGGER IF NOT EXISTS "${table}:acquire_new" BEFORE INSERT ON ${t}
    WHEN NEW.req_side = 'r' AND NOT EXISTS (SELECT 1 FROM ${t} WHERE sl_key = NEW.sl_key) BEGIN
      INSERT INTO ${r} (sl_key, slot_id, token, slot_limit, expires_at) VALUES (${slot});
    END`,
    `CREATE TRIGGER IF NOT EXISTS "${table}:acquire" BEFORE UPDATE OF at_ms ON ${t} BEGIN
      DELETE FROM ${r} WHERE sl_key = NEW.sl_key
        AND (expires_at <= NEW.at_ms OR NEW.req_side = 'f');
      UPDATE ${r} SET expires_at = NEW.at_ms + NEW.req_ttl
      WHERE sl_key = NEW.sl_key AND slot_id = NEW.req_owner
        AND NEW.req_side = 'r' AND NEW.token = OLD.token;
      INSERT INTO ${r} (sl_key, slot_id, token, slot_limit, expires_at)
      SELECT ${slot} WHERE NEW.req_side = 'r' AND NEW.token <> OLD.token;
    END`,
    `CREATE TRIGGER IF NOT EXISTS "${table}:forget" AFTER DELETE ON ${t} BEGIN
      DELETE FROM ${r} WHERE sl_key = OLD.sl_key;
    END`,
  ];
}

/** The request columns every acquire writes (its VALUES, read back as excluded.*). */
const REQUEST =
  "req_side = excluded.req_side, req_owner = excluded.req_owner, req_limit = excluded.req_limit, req_ttl = excluded.req_ttl, req_intent = excluded.req_intent, at_ms = excluded.at_ms";

/**
 * :key, :owner, :ttl, :intent. The SET decides from the row as it was (k.*) and the key's live
 * slots; excluded.* is the row VALUES proposed (the key taken with a new token: what a key
 * without a row gets).
 */
function acquireWriterSql(t: string, r: string): string {
  const now = "excluded.at_ms";
  const writer = liveWriter(now, "k.");
  const mine = `(${writer} AND k.writer_owner = excluded.req_owner)`;
  const readers = `EXISTS (SELECT 1 FROM ${r} AS s WHERE s.sl_key = k.sl_key AND ${live(now, "s.")})`;
  const intent = liveIntent(now, "k.");
  const otherIntent = `(${intent} AND k.intent_owner <> excluded.req_owner)`;
  const take = `(NOT ${writer} AND NOT ${readers} AND NOT ${otherIntent})`;
  const held = `(${mine} OR ${take})`;
  const record = `((${writer} OR ${readers}) AND NOT ${mine} AND excluded.req_intent IS NOT NULL AND NOT ${otherIntent})`;
  const clear = `(${held} AND ${intent} AND k.intent_owner = excluded.req_owner)`;
  // RETURNING names the row by its table (the alias is not in scope there).
  const after = `FROM ${r} AS s WHERE s.sl_key = ${t}.sl_key AND ${live(`${t}.at_ms`, "s.")}`;
  const writerAfter = liveWriter(`${t}.at_ms`, `${t}.`);
  const grantedAfter = `(${writerAfter} AND ${t}.writer_owner = ${t}.req_owner)`;
  return `
    INSERT INTO ${t} AS k (sl_key, token, writer_owner, writer_expires_at, intent_owner,
      intent_until, req_side, req_owner, req_limit, req_ttl, req_intent, at_ms)
    VALUES (:key, ${NOW_US}, :owner, ${NOW_MS} + :ttl, NULL, NULL, 'w', :owner, NULL, :ttl,
      :intent, ${NOW_MS})
    ON CONFLICT (sl_key) DO UPDATE SET
      token = CASE WHEN ${take} THEN max(k.token + 1, excluded.token) ELSE k.token END,
      writer_owner = CASE WHEN ${take} THEN excluded.req_owner WHEN ${writer} THEN k.writer_owner END,
      writer_expires_at = CASE WHEN ${held} THEN excluded.writer_expires_at
        ELSE k.writer_expires_at END,
      intent_owner = CASE WHEN ${clear} THEN NULL WHEN ${record} THEN excluded.req_owner
        WHEN ${intent} THEN k.intent_owner END,
      intent_until = CASE WHEN ${clear} THEN NULL WHEN ${record} THEN ${now} + excluded.req_intent
        WHEN ${intent} THEN k.intent_until END,
      ${REQUEST}
    RETURNING
      CASE WHEN ${grantedAfter} THEN ${t}.token END AS granted,
      CASE WHEN ${grantedAfter} THEN NULL WHEN ${writerAfter} THEN 'writer'
        WHEN EXISTS (SELECT 1 ${after}) THEN 'readers' ELSE 'waiters' END AS blocked,
      CASE WHEN ${writerAfter} AND NOT ${grantedAfter} THEN ${t}.writer_owner END AS owner,
      (SELECT count(*) ${after}) AS taken,
      CASE WHEN ${grantedAfter} THEN NULL
        WHEN ${writerAfter} THEN ${t}.writer_expires_at - ${t}.at_ms
        WHEN EXISTS (SELECT 1 ${after}) THEN (SELECT min(s.expires_at) - ${t}.at_ms ${after})
        ELSE ${t}.intent_until - ${t}.at_ms END AS remaining`;
}

/**
 * :key, :owner, :limit, :ttl. The SET gives a new token only when the caller takes a new slot
 * (no live writer, no own live slot, no live intent, room under the limit rule); the triggers
 * then write or restart the caller's slot. excluded.* is the row VALUES proposed (a key without a
 * row: the caller's slot, taken with a new token).
 */
function acquireReaderSql(t: string, r: string): string {
  const now = "excluded.at_ms";
  const ofKey = `FROM ${r} AS s WHERE s.sl_key = k.sl_key AND ${live(now, "s.")}`;
  const after = `FROM ${r} AS s WHERE s.sl_key = ${t}.sl_key AND ${live(`${t}.at_ms`, "s.")}`;
  const writerAfter = liveWriter(`${t}.at_ms`, `${t}.`);
  const intentAfter = liveIntent(`${t}.at_ms`, `${t}.`);
  const own = `(SELECT s.token ${after} AND s.slot_id = ${t}.req_owner)`;
  const soonest = `(SELECT min(s.expires_at) ${after})`;
  return `
    INSERT INTO ${t} AS k (sl_key, token, writer_owner, writer_expires_at, intent_owner,
      intent_until, req_side, req_owner, req_limit, req_ttl, req_intent, at_ms)
    VALUES (:key, ${NOW_US}, NULL, NULL, NULL, NULL, 'r', :owner, :limit, :ttl, NULL, ${NOW_MS})
    ON CONFLICT (sl_key) DO UPDATE SET
      token = CASE
        WHEN ${liveWriter(now, "k.")} THEN k.token
        WHEN EXISTS (SELECT 1 ${ofKey} AND s.slot_id = excluded.req_owner) THEN k.token
        WHEN ${liveIntent(now, "k.")} THEN k.token
        WHEN (SELECT count(*) ${ofKey})
          < min(excluded.req_limit, coalesce((SELECT min(s.slot_limit) ${ofKey}), excluded.req_limit))
          THEN max(k.token + 1, excluded.token)
        ELSE k.token END,
      ${REQUEST}
    RETURNING
      ${own} AS granted,
      CASE WHEN ${own} IS NOT NULL THEN NULL WHEN ${writerAfter} THEN 'writer'
        WHEN ${intentAfter} THEN 'waiters' ELSE 'limit' END AS blocked,
      CASE WHEN ${writerAfter} THEN ${t}.writer_owner END AS owner,
      (SELECT min(${t}.req_limit, coalesce(min(s.slot_limit), ${t}.req_limit)) ${after}) AS lim,
      (SELECT count(*) ${after}) AS taken,
      CASE WHEN ${writerAfter} THEN ${t}.writer_expires_at - ${t}.at_ms
        WHEN ${intentAfter} THEN min(${t}.intent_until, coalesce(${soonest}, ${t}.intent_until)) - ${t}.at_ms
        ELSE ${soonest} - ${t}.at_ms END AS remaining`;
}

/** SQLite's statements on `table` (and `<table>:readers`). */
export function sqliteSharedLockStatements(table: string): KyselySharedLockStatements {
  const t = `"${table}"`;
  const r = `"${readersTable(table)}"`;
  const sql = <TArgs extends Record<string, unknown>>(text: string) =>
    statement<TArgs>("sqlite", text);
  const slots = slotStatements((_operation, text) => sql(text), r, NOW_MS, {
    key: "sl_key",
    id: "owner",
  });
  return {
    dialect: "sqlite",
    createSchema: [
      `CREATE TABLE IF NOT EXISTS ${t} (sl_key TEXT PRIMARY KEY NOT NULL, token INTEGER NOT NULL, writer_owner TEXT, writer_expires_at INTEGER, intent_owner TEXT, intent_until INTEGER, req_side TEXT, req_owner TEXT, req_limit INTEGER, req_ttl INTEGER, req_intent INTEGER, at_ms INTEGER) WITHOUT ROWID`,
      `CREATE TABLE IF NOT EXISTS ${r} (sl_key TEXT NOT NULL, slot_id TEXT NOT NULL, token INTEGER NOT NULL, slot_limit INTEGER NOT NULL, expires_at INTEGER, PRIMARY KEY (sl_key, slot_id)) WITHOUT ROWID`,
      ...triggers(t, r, table),
    ],
    dropSchema: [`DROP TABLE IF EXISTS ${t}`, `DROP TABLE IF EXISTS ${r}`],
    acquireWriter: sql<KyselySharedLockWriterArgs>(acquireWriterSql(t, r)),
    acquireReader: sql<KyselySharedLockReaderArgs>(acquireReaderSql(t, r)),
    releaseWriter: sql(
      `UPDATE ${t} SET writer_owner = NULL, writer_expires_at = ${NOW_MS}
      WHERE sl_key = :key AND writer_owner = :owner AND ${liveWriter(NOW_MS)}`,
    ),
    forceReleaseWriter: sql<KyselySharedLockKeyArgs>(
      `UPDATE ${t} SET writer_owner = NULL, writer_expires_at = ${NOW_MS}
      WHERE sl_key = :key AND ${liveWriter(NOW_MS)}`,
    ),
    releaseReader: slots.release,
    forceReleaseAllReaders: slots.forceReleaseAll,
    // Matches only a held key; the trigger deletes its reader slots (req_side 'f').
    forceRelease: sql<KyselySharedLockKeyArgs>(
      `UPDATE ${t} SET writer_owner = NULL,
        writer_expires_at = CASE WHEN ${liveWriter(NOW_MS)} THEN ${NOW_MS} ELSE writer_expires_at END,
        req_side = 'f', at_ms = ${NOW_MS}
      WHERE sl_key = :key AND (${liveWriter(NOW_MS)}
        OR EXISTS (SELECT 1 FROM ${r} AS s WHERE s.sl_key = ${t}.sl_key AND ${live(NOW_MS, "s.")}))`,
    ),
    freed: {
      releaseWriter: "count",
      forceReleaseWriter: "count",
      releaseReader: "count",
      forceReleaseAllReaders: "count",
      forceRelease: "count",
    },
    refreshWriter: sql<KyselySharedLockRefreshArgs>(
      `UPDATE ${t} SET writer_expires_at = ${NOW_MS} + :ttl
      WHERE sl_key = :key AND writer_owner = :owner AND writer_expires_at > ${NOW_MS}`,
    ),
    refreshReader: sql<KyselySharedLockRefreshArgs>(
      `UPDATE ${r} SET expires_at = ${NOW_MS} + :ttl
      WHERE sl_key = :key AND slot_id = :owner AND expires_at > ${NOW_MS}`,
    ),
    refreshed: "count",
    getState: sql(stateSql(t, r, NOW_MS, "k.writer_owner")),
    removeExpired: sql(
      `DELETE FROM ${t} WHERE token < ${NOW_US} - :grace * 1000
      AND NOT ${liveWriter(NOW_MS, `${t}.`)} AND NOT ${liveIntent(NOW_MS, `${t}.`)}
      AND NOT EXISTS (SELECT 1 FROM ${r} AS s WHERE s.sl_key = ${t}.sl_key AND ${live(NOW_MS, "s.")})`,
    ),
  };
}
