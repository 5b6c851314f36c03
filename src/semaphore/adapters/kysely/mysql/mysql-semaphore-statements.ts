// The SQL of KyselySemaphoreAdapter on MySQL and MariaDB. Acquire is a stored procedure, created
// by init() and run by one CALL: its own transaction (a procedure's statements would each commit
// on their own), which locks the key's row with an upsert, then reads the key's slots with
// locking reads (the latest committed rows, whatever the isolation level). Its name carries a
// hash of its text, so init() creates it with IF NOT EXISTS and adapters of another hasp
// version on the same table each call their own. The other operations are plain statements on
// the slots, prepared once per connection on MariaDB (mysql-statement.ts). Keys and slot ids are
// VARBINARY: compared byte for byte. A key's slots go with its row (a foreign key's cascade:
// a trigger could not delete from the slots the deleting statement reads).
//
// Time: @@timestamp, the statement's start as Unix seconds with µs (see the lock's
// mysql-lock-statements.ts); in the procedure it is read once the key's row is locked, each
// statement of a procedure having its own.

import { createHash } from "node:crypto";
import {
  type MysqlServerOptions,
  mysqlOperation,
} from "../../../../backends/kysely/mysql/mysql-statement.js";
import { KEY_MAX_BYTES, statement } from "../../../../backends/kysely/sql-statement.js";
import {
  type KyselySemaphoreAcquireArgs,
  type KyselySemaphoreRefreshArgs,
  type KyselySemaphoreStatements,
  liveSlot,
  slotStatements,
  slotsTable,
} from "../kysely-semaphore-statements.js";

const NOW_US = "CAST(@@timestamp * 1000000 AS SIGNED)";
const NOW_MS = `(${NOW_US} DIV 1000)`;

/** The acquire procedure's body (its parameters are `_key`, `_slot`, `_limit`, `_ttl`). */
function acquireBody(t: string, s: string): string {
  return `BEGIN
  DECLARE now_us BIGINT;
  DECLARE now_ms BIGINT;
  DECLARE granted BIGINT;
  DECLARE taken BIGINT;
  DECLARE lim BIGINT;
  DECLARE soonest BIGINT;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
  START TRANSACTION;
  INSERT INTO ${t} (sem_key, token) VALUES (_key, 0) ON DUPLICATE KEY UPDATE token = token;
  SET now_us = ${NOW_US};
  SET now_ms = now_us DIV 1000;
  DELETE FROM ${s} WHERE sem_key = _key AND expires_at <= now_ms;
  SELECT MAX(token) INTO granted FROM ${s} WHERE sem_key = _key AND slot_id = _slot FOR UPDATE;
  IF granted IS NOT NULL THEN
    UPDATE ${s} SET expires_at = now_ms + _ttl WHERE sem_key = _key AND slot_id = _slot;
  ELSE
    SELECT COUNT(*), LEAST(_limit, COALESCE(MIN(slot_limit), _limit)) INTO taken, lim
    FROM ${s} WHERE sem_key = _key FOR UPDATE;
    IF taken < lim THEN
      SELECT GREATEST(token + 1, now_us) INTO granted FROM ${t} WHERE sem_key = _key;
      UPDATE ${t} SET token = granted WHERE sem_key = _key;
      INSERT INTO ${s} (sem_key, slot_id, token, slot_limit, expires_at)
      VALUES (_key, _slot, granted, _limit, now_ms + _ttl);
    END IF;
  END IF;
  SELECT COUNT(*), LEAST(_limit, COALESCE(MIN(slot_limit), _limit)), MIN(expires_at) - now_ms
  INTO taken, lim, soonest FROM ${s} WHERE sem_key = _key;
  COMMIT;
  SELECT granted, lim, taken, soonest AS remaining;
END`;
}

/**
 * MySQL's and MariaDB's statements on `table` (and `<table>:slots`). `returning` is not used:
 * the acquire procedure answers with a result set.
 */
export function mysqlSemaphoreStatements(
  table: string,
  { prepared }: MysqlServerOptions,
): KyselySemaphoreStatements {
  const t = `\`${table}\``;
  const s = `\`${slotsTable(table)}\``;
  const body = acquireBody(t, s);
  const params = `IN _key VARBINARY(${KEY_MAX_BYTES}), IN _slot VARBINARY(1020), IN _limit BIGINT, IN _ttl BIGINT`;
  // At most 48 + 15 characters: MySQL keeps 64.
  const digest = createHash("sha256").update(params).update(body).digest("hex").slice(0, 6);
  const acquire = `\`${table}:acquire:${digest}\``;
  const operation = <TArgs extends Record<string, unknown>>(name: string, text: string) =>
    mysqlOperation<TArgs>(table, name, text, prepared);
  return {
    dialect: "mysql",
    createSchema: [
      `CREATE TABLE IF NOT EXISTS ${t} (sem_key VARBINARY(${KEY_MAX_BYTES}) NOT NULL PRIMARY KEY, token BIGINT NOT NULL) ENGINE=InnoDB`,
      `CREATE TABLE IF NOT EXISTS ${s} (sem_key VARBINARY(${KEY_MAX_BYTES}) NOT NULL, slot_id VARBINARY(1020) NOT NULL, token BIGINT NOT NULL, slot_limit BIGINT NOT NULL, expires_at BIGINT NULL, PRIMARY KEY (sem_key, slot_id), FOREIGN KEY (sem_key) REFERENCES ${t} (sem_key) ON DELETE CASCADE) ENGINE=InnoDB`,
      `CREATE PROCEDURE IF NOT EXISTS ${acquire}(${params}) ${body}`,
    ],
    dropSchema: [
      `DROP PROCEDURE IF EXISTS ${acquire}`,
      `DROP TABLE IF EXISTS ${s}`,
      `DROP TABLE IF EXISTS ${t}`,
    ],
    acquire: statement<KyselySemaphoreAcquireArgs>(
      "mysql",
      `CALL ${acquire}(:key, :slot, :limit, :ttl)`,
    ),
    ...slotStatements(operation, s, NOW_MS),
    // LAST_INSERT_ID(token): a refresh within the same ms changes no value, which the
    // affected-row count would not count without CLIENT_FOUND_ROWS.
    refresh: operation<KyselySemaphoreRefreshArgs>(
      "refresh",
      `UPDATE ${s} SET expires_at = ${NOW_MS} + :ttl, token = LAST_INSERT_ID(token)
      WHERE sem_key = :key AND slot_id = :slot AND expires_at > ${NOW_MS}`,
    ),
    freed: "count",
    refreshed: "insert-id",
    removeExpired: statement(
      "mysql",
      `DELETE FROM ${t} WHERE token < ${NOW_US} - :grace * 1000
      AND NOT EXISTS (SELECT 1 FROM ${s} AS s WHERE s.sem_key = ${t}.sem_key
        AND ${liveSlot(NOW_MS, "s.")})`,
    ),
  };
}
