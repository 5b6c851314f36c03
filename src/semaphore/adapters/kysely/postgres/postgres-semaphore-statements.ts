// The SQL of KyselySemaphoreAdapter on PostgreSQL. Acquire is a PL/pgSQL procedure of the
// table's own (postgres-procedure.ts), created by init() and run by one CALL, in one
// transaction: it locks the key's row, then reads the slots with a snapshot of its own (READ
// COMMITTED takes one per statement), so it sees every slot the acquirer before it committed.
// Under REPEATABLE READ or SERIALIZABLE the lock of a row changed since the snapshot fails with
// a serialization failure, which the adapter runs again. The other operations are plain
// statements on the slots. The tables are those of kysely-semaphore-statements.ts.
//
// Time: the procedure reads the server's clock once it holds the key's row (an acquire that
// waited for another must not date its slot from before that wait); a plain statement reads it
// once, at its start.

import {
  NOW_US_EXPRESSION,
  type Procedure,
  procedure,
} from "../../../../backends/kysely/postgres/postgres-procedure.js";
import { statement } from "../../../../backends/kysely/sql-statement.js";
import {
  type KyselySemaphoreAcquireArgs,
  type KyselySemaphoreStatements,
  slotsTable,
} from "../kysely-semaphore-statements.js";

const NOW_MS = `(${NOW_US_EXPRESSION} / 1000)`;
const CLOCK_US = "(date_part('epoch', clock_timestamp()) * 1000000)::bigint";

/** The condition "the slot row `s` has not expired" at `now`. */
function live(now: string, row = ""): string {
  return `(${row}expires_at IS NULL OR ${row}expires_at > ${now})`;
}

/**
 * `"<table>:acquire"(key, slot, limit, ttl)`: see KyselySemaphoreStatements.acquire. The upsert
 * with `WHERE false` locks the key's row (a new one is inserted, the race of two first acquirers
 * settled by its primary key) without writing a new version of it when it exists.
 */
function acquireProcedure(table: string): Procedure<KyselySemaphoreAcquireArgs> {
  const t = `"${table}"`;
  const s = `"${slotsTable(table)}"`;
  return procedure(
    table,
    "acquire",
    [
      ["key", "text"],
      ["slot", "text"],
      ["limit", "bigint"],
      ["ttl", "bigint"],
    ],
    "granted bigint, lim bigint, taken bigint, remaining bigint",
    `INSERT INTO ${t} AS k (sem_key, token) VALUES (:key, 0)
ON CONFLICT (sem_key) DO UPDATE SET token = k.token WHERE false;
now_us := ${CLOCK_US};
now_ms := now_us / 1000;
DELETE FROM ${s} WHERE sem_key = :key AND expires_at <= now_ms;
UPDATE ${s} SET expires_at = now_ms + :ttl WHERE sem_key = :key AND slot_id = :slot
RETURNING token INTO granted;
IF granted IS NULL THEN
  SELECT count(*), least(:limit, min(slot_limit)) INTO taken, lim FROM ${s} WHERE sem_key = :key;
  IF taken < lim THEN
    UPDATE ${t} SET token = greatest(token + 1, now_us) WHERE sem_key = :key
    RETURNING token INTO granted;
    INSERT INTO ${s} (sem_key, slot_id, token, slot_limit, expires_at)
    VALUES (:key, :slot, granted, :limit, now_ms + :ttl);
  END IF;
END IF;
SELECT granted, least(:limit, min(slot_limit)), count(*), min(expires_at) - now_ms
FROM ${s} WHERE sem_key = :key`,
  );
}

/** The trigger that deletes a key's slots with its row (removeExpired), made once. */
function forgetTrigger(table: string): string[] {
  const forget = `"${table}:forget"`;
  return [
    `CREATE OR REPLACE FUNCTION ${forget}() RETURNS trigger LANGUAGE plpgsql AS $hasp$
BEGIN
  DELETE FROM "${slotsTable(table)}" WHERE sem_key = OLD.sem_key;
  RETURN NULL;
END
$hasp$`,
    `DO $hasp$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '${table}:forget' AND tgrelid = '"${table}"'::regclass) THEN
    CREATE TRIGGER ${forget} AFTER DELETE ON "${table}" FOR EACH ROW EXECUTE FUNCTION ${forget}();
  END IF;
END $hasp$`,
  ];
}

/** PostgreSQL's statements on `table` (and `<table>:slots`). */
export function postgresSemaphoreStatements(table: string): KyselySemaphoreStatements {
  const t = `"${table}"`;
  const s = `"${slotsTable(table)}"`;
  const acquire = acquireProcedure(table);
  const LIVE = live(NOW_MS);
  return {
    dialect: "postgres",
    createSchema: [
      `CREATE TABLE IF NOT EXISTS ${t} (sem_key text PRIMARY KEY, token bigint NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${s} (sem_key text NOT NULL, slot_id text NOT NULL, token bigint NOT NULL, slot_limit bigint NOT NULL, expires_at bigint, PRIMARY KEY (sem_key, slot_id))`,
      ...forgetTrigger(table),
      acquire.create,
    ],
    dropSchema: [
      `DROP TABLE IF EXISTS ${t}`,
      `DROP TABLE IF EXISTS ${s}`,
      `DROP FUNCTION IF EXISTS "${table}:forget"()`,
      acquire.drop,
    ],
    acquire: acquire.call,
    release: statement(
      "postgres",
      `DELETE FROM ${s} WHERE sem_key = :key AND slot_id = :slot AND ${LIVE}`,
    ),
    forceReleaseAll: statement("postgres", `DELETE FROM ${s} WHERE sem_key = :key AND ${LIVE}`),
    refresh: statement(
      "postgres",
      `UPDATE ${s} SET expires_at = ${NOW_MS} + :ttl::bigint
      WHERE sem_key = :key AND slot_id = :slot AND expires_at > ${NOW_MS}`,
    ),
    refreshed: "count",
    getState: statement(
      "postgres",
      `SELECT count(*) AS taken, min(slot_limit) AS lim,
        max(CASE WHEN slot_id = :slot THEN token END) AS token,
        max(CASE WHEN slot_id = :slot THEN coalesce(expires_at - ${NOW_MS}, -1) END) AS remaining
      FROM ${s} WHERE sem_key = :key AND ${LIVE}`,
    ),
    removeExpired: statement(
      "postgres",
      `DELETE FROM ${t} AS k WHERE k.token < ${NOW_US_EXPRESSION} - :grace::bigint * 1000
      AND NOT EXISTS (SELECT FROM ${s} AS s WHERE s.sem_key = k.sem_key AND ${live(NOW_MS, "s.")})`,
    ),
  };
}
