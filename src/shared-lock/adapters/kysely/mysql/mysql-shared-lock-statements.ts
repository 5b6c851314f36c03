// The SQL of KyselySharedLockAdapter on MySQL and MariaDB. acquireWriter, acquireReader and
// forceRelease are stored procedures, created by init() and run by one CALL each: its own
// transaction (a procedure's statements would each commit on their own), which first locks the
// key's row (an upsert for the acquires), reads the server's time once the row is locked, drops
// the key's expired reader slots, and reads the slots left with locking reads (the latest
// committed rows, whatever the isolation level). Their names carry a hash of their text, so
// init() creates them with IF NOT EXISTS and adapters of another hasp version on the same table
// each call their own. The other operations are single statements, prepared once per connection
// on MariaDB (mysql-statement.ts). Keys and lock ids are VARBINARY: compared byte for byte. A
// key's reader slots go with its row (a foreign key's cascade).
//
// Time: @@timestamp, the statement's start as Unix seconds with µs (see the lock's
// mysql-lock-statements.ts); in a procedure it is read once the key's row is locked, each
// statement of a procedure having its own.

import { createHash } from "node:crypto";
import {
  type MysqlServerOptions,
  mysqlOperation,
} from "../../../../backends/kysely/mysql/mysql-statement.js";
import { liveSlot, slotStatements } from "../../../../backends/kysely/slot-statements.js";
import { KEY_MAX_BYTES, statement } from "../../../../backends/kysely/sql-statement.js";
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

const NOW_US = "CAST(@@timestamp * 1000000 AS SIGNED)";
const NOW_MS = `(${NOW_US} DIV 1000)`;
const ID = "VARBINARY(1020)";

/**
 * The start every procedure shares: the key's row locked (and read: its token, live writer and
 * live intent), the time read, the expired reader slots gone.
 */
function lockedKey(t: string, r: string, upsert: boolean): string {
  const lock = upsert
    ? `INSERT INTO ${t} (sl_key, token) VALUES (_key, 0) ON DUPLICATE KEY UPDATE token = token;`
    : "";
  return `${lock}
  SELECT MAX(token), MAX(writer_owner), MAX(writer_expires_at), MAX(intent_owner), MAX(intent_until)
  INTO cur, w_owner, w_exp, i_owner, i_until FROM ${t} WHERE sl_key = _key FOR UPDATE;
  SET now_us = ${NOW_US};
  SET now_ms = now_us DIV 1000;
  IF w_exp <= now_ms THEN SET w_owner = NULL; END IF;
  IF i_until <= now_ms OR i_until IS NULL THEN SET i_owner = NULL; END IF;
  DELETE FROM ${r} WHERE sl_key = _key AND expires_at <= now_ms;`;
}

const DECLARE_KEY = `DECLARE now_us BIGINT;
  DECLARE now_ms BIGINT;
  DECLARE cur BIGINT;
  DECLARE w_owner ${ID};
  DECLARE w_exp BIGINT;
  DECLARE i_owner ${ID};
  DECLARE i_until BIGINT;
  DECLARE granted BIGINT;
  DECLARE blocked VARCHAR(8);
  DECLARE taken BIGINT;
  DECLARE soonest BIGINT;
  DECLARE remaining BIGINT;`;

/** The declaration that ends every procedure's declarations: a failure rolls back. */
const ON_FAILURE = "DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;";

/** acquireWriter's body (parameters `_key`, `_owner`, `_ttl`, `_intent`). */
function acquireWriterBody(t: string, r: string): string {
  return `BEGIN
  ${DECLARE_KEY}
  ${ON_FAILURE}
  START TRANSACTION;
  ${lockedKey(t, r, true)}
  SELECT COUNT(*), MIN(expires_at) - now_ms INTO taken, soonest
  FROM ${r} WHERE sl_key = _key FOR UPDATE;
  IF w_owner = _owner THEN
    SET granted = cur;
    SET w_exp = now_ms + _ttl;
  ELSEIF w_owner IS NOT NULL THEN
    SET blocked = 'writer';
    SET remaining = w_exp - now_ms;
  ELSEIF taken > 0 THEN
    SET blocked = 'readers';
    SET remaining = soonest;
  ELSEIF i_owner IS NOT NULL AND i_owner <> _owner THEN
    SET blocked = 'waiters';
    SET remaining = i_until - now_ms;
  ELSE
    SET granted = GREATEST(cur + 1, now_us);
    SET w_owner = _owner;
    SET w_exp = now_ms + _ttl;
  END IF;
  IF granted IS NOT NULL AND i_owner = _owner THEN
    SET i_owner = NULL;
  ELSEIF blocked IN ('writer', 'readers') AND _intent IS NOT NULL
    AND (i_owner IS NULL OR i_owner = _owner) THEN
    SET i_owner = _owner;
    SET i_until = now_ms + _intent;
  END IF;
  UPDATE ${t} SET token = COALESCE(granted, cur), writer_owner = w_owner,
    writer_expires_at = w_exp, intent_owner = i_owner,
    intent_until = IF(i_owner IS NULL, NULL, i_until)
  WHERE sl_key = _key;
  COMMIT;
  SELECT granted, blocked, IF(blocked = 'writer', CONVERT(w_owner USING utf8mb4), NULL) AS owner,
    taken, remaining;
END`;
}

/** acquireReader's body (parameters `_key`, `_owner`, `_limit`, `_ttl`). */
function acquireReaderBody(t: string, r: string): string {
  return `BEGIN
  ${DECLARE_KEY}
  DECLARE lim BIGINT;
  ${ON_FAILURE}
  START TRANSACTION;
  ${lockedKey(t, r, true)}
  IF w_owner IS NOT NULL THEN
    SET blocked = 'writer';
    SET remaining = w_exp - now_ms;
  ELSE
    SELECT MAX(token) INTO granted FROM ${r} WHERE sl_key = _key AND slot_id = _owner FOR UPDATE;
    IF granted IS NOT NULL THEN
      UPDATE ${r} SET expires_at = now_ms + _ttl WHERE sl_key = _key AND slot_id = _owner;
    ELSE
      SELECT COUNT(*), LEAST(_limit, COALESCE(MIN(slot_limit), _limit)) INTO taken, lim
      FROM ${r} WHERE sl_key = _key FOR UPDATE;
      IF i_owner IS NOT NULL THEN
        SET blocked = 'waiters';
      ELSEIF taken < lim THEN
        SET granted = GREATEST(cur + 1, now_us);
        UPDATE ${t} SET token = granted WHERE sl_key = _key;
        INSERT INTO ${r} (sl_key, slot_id, token, slot_limit, expires_at)
        VALUES (_key, _owner, granted, _limit, now_ms + _ttl);
      ELSE
        SET blocked = 'limit';
      END IF;
    END IF;
  END IF;
  SELECT COUNT(*), LEAST(_limit, COALESCE(MIN(slot_limit), _limit)), MIN(expires_at) - now_ms
  INTO taken, lim, soonest FROM ${r} WHERE sl_key = _key;
  IF blocked = 'waiters' THEN
    SET remaining = LEAST(i_until - now_ms, COALESCE(soonest, i_until - now_ms));
  ELSEIF blocked = 'limit' THEN
    SET remaining = soonest;
  END IF;
  COMMIT;
  SELECT granted, blocked, IF(blocked = 'writer', CONVERT(w_owner USING utf8mb4), NULL) AS owner,
    lim, taken, remaining;
END`;
}

/** forceRelease's body (parameter `_key`): answers `freed`, the holds freed. */
function forceReleaseBody(t: string, r: string): string {
  return `BEGIN
  ${DECLARE_KEY}
  DECLARE freed BIGINT DEFAULT 0;
  ${ON_FAILURE}
  START TRANSACTION;
  ${lockedKey(t, r, false)}
  IF w_owner IS NOT NULL THEN
    UPDATE ${t} SET writer_owner = NULL, writer_expires_at = now_ms WHERE sl_key = _key;
    SET freed = 1;
  END IF;
  DELETE FROM ${r} WHERE sl_key = _key;
  SET freed = freed + ROW_COUNT();
  COMMIT;
  SELECT freed;
END`;
}

/** A procedure's `CREATE` and `DROP`, its name carrying a hash of its text. */
function procedure(table: string, name: string, params: string, body: string) {
  // At most 48 + 14 characters: MySQL keeps 64.
  const digest = createHash("sha256").update(params).update(body).digest("hex").slice(0, 6);
  const quoted = `\`${table}:${name}:${digest}\``;
  return {
    name: quoted,
    create: `CREATE PROCEDURE IF NOT EXISTS ${quoted}(${params}) ${body}`,
    drop: `DROP PROCEDURE IF EXISTS ${quoted}`,
  };
}

/**
 * MySQL's and MariaDB's statements on `table` (and `<table>:readers`). `returning` is not used:
 * the deciding operations are procedures, answering with a result set.
 */
export function mysqlSharedLockStatements(
  table: string,
  { prepared }: MysqlServerOptions,
): KyselySharedLockStatements {
  const t = `\`${table}\``;
  const r = `\`${readersTable(table)}\``;
  const key = `IN _key VARBINARY(${KEY_MAX_BYTES})`;
  const writer = procedure(
    table,
    "writer",
    `${key}, IN _owner ${ID}, IN _ttl BIGINT, IN _intent BIGINT`,
    acquireWriterBody(t, r),
  );
  const reader = procedure(
    table,
    "reader",
    `${key}, IN _owner ${ID}, IN _limit BIGINT, IN _ttl BIGINT`,
    acquireReaderBody(t, r),
  );
  const force = procedure(table, "force", key, forceReleaseBody(t, r));
  const operation = <TArgs extends Record<string, unknown>>(name: string, text: string) =>
    mysqlOperation<TArgs>(table, name, text, prepared);
  const slots = slotStatements(operation, r, NOW_MS, { key: "sl_key", id: "owner" });
  return {
    dialect: "mysql",
    createSchema: [
      `CREATE TABLE IF NOT EXISTS ${t} (sl_key VARBINARY(${KEY_MAX_BYTES}) NOT NULL PRIMARY KEY, token BIGINT NOT NULL, writer_owner ${ID} NULL, writer_expires_at BIGINT NULL, intent_owner ${ID} NULL, intent_until BIGINT NULL) ENGINE=InnoDB`,
      `CREATE TABLE IF NOT EXISTS ${r} (sl_key VARBINARY(${KEY_MAX_BYTES}) NOT NULL, slot_id ${ID} NOT NULL, token BIGINT NOT NULL, slot_limit BIGINT NOT NULL, expires_at BIGINT NULL, PRIMARY KEY (sl_key, slot_id), FOREIGN KEY (sl_key) REFERENCES ${t} (sl_key) ON DELETE CASCADE) ENGINE=InnoDB`,
      writer.create,
      reader.create,
      force.create,
    ],
    dropSchema: [
      writer.drop,
      reader.drop,
      force.drop,
      `DROP TABLE IF EXISTS ${r}`,
      `DROP TABLE IF EXISTS ${t}`,
    ],
    acquireWriter: statement<KyselySharedLockWriterArgs>(
      "mysql",
      `CALL ${writer.name}(:key, :owner, :ttl, :intent)`,
    ),
    acquireReader: statement<KyselySharedLockReaderArgs>(
      "mysql",
      `CALL ${reader.name}(:key, :owner, :limit, :ttl)`,
    ),
    // The owner changes to NULL: the affected-row count counts it without CLIENT_FOUND_ROWS.
    releaseWriter: operation(
      "release_writer",
      `UPDATE ${t} SET writer_owner = NULL, writer_expires_at = ${NOW_MS}
      WHERE sl_key = :key AND writer_owner = :owner AND ${liveWriter(NOW_MS)}`,
    ),
    forceReleaseWriter: operation<KyselySharedLockKeyArgs>(
      "force_release_writer",
      `UPDATE ${t} SET writer_owner = NULL, writer_expires_at = ${NOW_MS}
      WHERE sl_key = :key AND ${liveWriter(NOW_MS)}`,
    ),
    releaseReader: slots.release,
    forceReleaseAllReaders: slots.forceReleaseAll,
    forceRelease: statement<KyselySharedLockKeyArgs>("mysql", `CALL ${force.name}(:key)`),
    freed: {
      releaseWriter: "count",
      forceReleaseWriter: "count",
      releaseReader: "count",
      forceReleaseAllReaders: "count",
      forceRelease: "row",
    },
    // LAST_INSERT_ID(token): a refresh within the same ms changes no value, which the
    // affected-row count would not count without CLIENT_FOUND_ROWS.
    refreshWriter: operation<KyselySharedLockRefreshArgs>(
      "refresh_writer",
      `UPDATE ${t} SET writer_expires_at = ${NOW_MS} + :ttl, token = LAST_INSERT_ID(token)
      WHERE sl_key = :key AND writer_owner = :owner AND writer_expires_at > ${NOW_MS}`,
    ),
    refreshReader: operation<KyselySharedLockRefreshArgs>(
      "refresh_reader",
      `UPDATE ${r} SET expires_at = ${NOW_MS} + :ttl, token = LAST_INSERT_ID(token)
      WHERE sl_key = :key AND slot_id = :owner AND expires_at > ${NOW_MS}`,
    ),
    refreshed: "insert-id",
    getState: operation(
      "get_state",
      stateSql(t, r, NOW_MS, "CONVERT(k.writer_owner USING utf8mb4)"),
    ),
    removeExpired: statement(
      "mysql",
      `DELETE FROM ${t} WHERE token < ${NOW_US} - :grace * 1000
      AND NOT ${liveWriter(NOW_MS, `${t}.`)} AND NOT ${liveIntent(NOW_MS, `${t}.`)}
      AND NOT EXISTS (SELECT 1 FROM ${r} AS s WHERE s.sl_key = ${t}.sl_key
        AND ${liveSlot(NOW_MS, "s.")})`,
    ),
  };
}

/**
 * getState's query (`:key`, `:owner`) on the key's row `k` and its live reader slots: the shape
 * `KyselySharedLockStatements.getState` names; `writer` is how the writer's id is read.
 */
export function stateSql(t: string, r: string, now: string, writer: string): string {
  const w = liveWriter(now, "k.");
  const slots = `FROM ${r} AS s WHERE s.sl_key = k.sl_key AND ${liveSlot(now, "s.")}`;
  return `SELECT
    CASE WHEN ${w} THEN ${writer} END AS writer,
    CASE WHEN ${w} THEN k.token END AS wtoken,
    CASE WHEN ${w} THEN coalesce(k.writer_expires_at - ${now}, -1) END AS wremaining,
    (SELECT count(*) ${slots}) AS taken,
    (SELECT min(s.slot_limit) ${slots}) AS lim,
    (SELECT max(s.token) ${slots} AND s.slot_id = :owner) AS token,
    (SELECT max(coalesce(s.expires_at - ${now}, -1)) ${slots} AND s.slot_id = :owner) AS remaining,
    CASE WHEN ${liveIntent(now, "k.")} THEN 1 ELSE 0 END AS waiting
  FROM ${t} AS k WHERE k.sl_key = :key`;
}
