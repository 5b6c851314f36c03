// The SQL of KyselySemaphoreAdapter on PostgreSQL: a PL/pgSQL procedure of the table's own per
// operation but refresh and getState (postgres-procedure.ts), created by init() and run by one
// CALL, in one transaction. Each locks the key's row first, then reads the slots with a snapshot
// of its own (READ COMMITTED takes one per statement), so it sees every slot the one before it
// committed; under REPEATABLE READ or SERIALIZABLE the lock of a row changed since the snapshot
// fails with a serialization failure, which the adapter runs again. The tables are those of
// kysely-semaphore-statements.ts, and
//   "<table>".waiters   text[], the queue of blocking acquires, oldest first (NULL: nobody
//                       waits), in wait-entry.ts's format (with the claim's limit).
//   "<table>:inboxes"   the listening adapters' secrets (postgres-inbox.ts).
//   "<table>:slots".served_to   "<inbox>:<wait id>" of the queued wait the queue's service
//                       handed the slot to, until the slot's next write (a re-take, a refresh);
//                       NULL for a slot taken by an acquire or a claim's own statement. Only
//                       that wait's leave frees it (a wait aborted as its grant came).
//
// The queue is served by "<table>:serve"(key, now), which every procedure that may free a slot or
// find one expired runs once it holds the key's row: release, forceReleaseAll, acquire, and a
// wait's check. Oldest first, it skips entries past their deadline, wakes waits without a claim
// while a slot is free for anyone, and gives each claim that the limit rule admits a slot (its
// TTL from now), naming it on its adapter's channel with the grant signed as
// postgres-grant-message.ts says; the first entry it cannot serve keeps the rest waiting. A claim
// whose owner already holds a live slot (another of its waits was served) is passed over and
// stays queued, in its order, as on Redis: its abort must not free that slot. An acquire (or a
// claim) finding a wait queued that is not passed over so takes no slot: no newcomer slips in.
// A wait whose entry is gone without a grant (it lapsed: its process was paused past its
// deadline, and a service dropped it) finds its owner's slot unmarked, or marked with another
// wait: its abort frees nothing.
//
// Time: a procedure reads the server's clock once it holds the key's row (an acquire that waited
// for another must not date its slot from before that wait); a plain statement reads it once, at
// its start.

import { grantMessageSql } from "../../../../backends/kysely/postgres/postgres-grant-message.js";
import { inboxes, inboxStatements } from "../../../../backends/kysely/postgres/postgres-inbox.js";
import {
  NOW_US_EXPRESSION,
  type Param,
  type Procedure,
  procedure,
} from "../../../../backends/kysely/postgres/postgres-procedure.js";
import type {
  PostgresEntryArgs,
  PostgresLeaveArgs,
  PostgresQueueStatements,
  PostgresWaitArgs,
} from "../../../../backends/kysely/postgres/postgres-wait-queue.js";
import { statement } from "../../../../backends/kysely/sql-statement.js";
import { WAIT_ENTRY_SQL } from "../../../../backends/wait-queue/wait-entry.js";
import {
  type KyselySemaphoreAcquireArgs,
  type KyselySemaphoreKeyArgs,
  type KyselySemaphoreSlotArgs,
  type KyselySemaphoreStatements,
  liveSlot as live,
  slotStatements,
  slotsTable,
} from "../kysely-semaphore-statements.js";

/** PostgreSQL's statements: those of every dialect, and the queue's. */
export type PostgresSemaphoreStatements = KyselySemaphoreStatements & PostgresQueueStatements;

const NOW_MS = `(${NOW_US_EXPRESSION} / 1000)`;
const CLOCK_US = "(date_part('epoch', clock_timestamp()) * 1000000)::bigint";

const KEY: Param = ["key", "text"];
const WAIT_PARAMS: readonly Param[] = [
  KEY,
  ["owner", "text"],
  ["ttl", "text"],
  ["limit", "text"],
  ["wait", "bigint"],
  ["inbox", "text"],
  ["id", "text"],
];

/** A slot's `served_to`: the wait of the entry split into `parts` ("<inbox>:<wait id>"). */
function servedTo(parts: { inbox: string; waitId: string }): string {
  return `(${parts.inbox} || ':' || ${parts.waitId})`;
}

/** The names of a table's objects. */
type Names = { t: string; s: string; serve: string; table: string };

function names(table: string): Names {
  return {
    table,
    t: `"${table}"`,
    s: `"${slotsTable(table)}"`,
    serve: `"${table}:serve"`,
  };
}

/**
 * PL/pgSQL: the key's row locked (inserted when `insert`, the race of two first acquirers
 * settled by its primary key; the upsert's `WHERE false` writes no new version of a row that
 * exists), the clock read, the expired slots dropped and the queue served.
 */
function locked({ t, s, serve }: Names, insert: boolean): string {
  const lock = insert
    ? `INSERT INTO ${t} AS k (sem_key, token) VALUES (:key, 0)
ON CONFLICT (sem_key) DO UPDATE SET token = k.token WHERE false;`
    : `PERFORM 1 FROM ${t} WHERE sem_key = :key FOR UPDATE;`;
  return `${lock}
now_us := ${CLOCK_US};
now_ms := now_us / 1000;
DELETE FROM ${s} WHERE sem_key = :key AND expires_at <= now_ms;
PERFORM ${serve}(:key, now_us);`;
}

/** `"<table>:serve"(key, now_us)`: serves the key's queue (see the header). */
function serveFunction({ t, s, serve, table }: Names): string {
  const p = WAIT_ENTRY_SQL.fields("parts");
  const message = grantMessageSql({
    waitId: p.waitId,
    token: "granted",
    startMs: "now_ms",
    secret: "inbox_secret",
  });
  return `CREATE OR REPLACE FUNCTION ${serve}(_key text, now_us bigint) RETURNS void
  LANGUAGE plpgsql AS $hasp$
#variable_conflict use_column
DECLARE
  now_ms bigint := now_us / 1000;
  queue text[];
  entry text;
  parts text[];
  position int := 0;
  taken bigint;
  lim bigint;
  granted bigint;
  inbox_secret text;
  kept text[] := '{}';
BEGIN
  SELECT waiters INTO queue FROM ${t} WHERE sem_key = _key;
  IF queue IS NULL THEN
    RETURN;
  END IF;
  FOREACH entry IN ARRAY queue LOOP
    position := position + 1;
    parts := ${WAIT_ENTRY_SQL.split("entry")};
    CONTINUE WHEN ${p.deadlineMs} <= now_ms;
    IF ${p.noClaim} THEN
      -- Woken when a slot is free for anyone; when none is, none is for a claim behind either.
      SELECT count(*), min(slot_limit) INTO taken, lim FROM ${s} WHERE sem_key = _key;
      IF taken > 0 AND taken >= lim THEN
        UPDATE ${t} SET waiters = kept || queue[position:] WHERE sem_key = _key;
        RETURN;
      END IF;
      PERFORM pg_notify(${p.inbox}, ${p.waitId});
      CONTINUE;
    END IF;
    -- The claim's owner holds a slot already (another of its waits was served): this wait
    -- stays queued (its abort must not free that slot), and the ones behind it are served.
    IF EXISTS (SELECT 1 FROM ${s} WHERE sem_key = _key AND slot_id = ${p.owner}) THEN
      kept := kept || entry;
      CONTINUE;
    END IF;
    SELECT count(*), least(${p.limit}, min(slot_limit)) INTO taken, lim FROM ${s}
    WHERE sem_key = _key;
    IF taken >= lim THEN
      UPDATE ${t} SET waiters = kept || queue[position:] WHERE sem_key = _key;
      RETURN;
    END IF;
    UPDATE ${t} SET token = greatest(token + 1, now_us) WHERE sem_key = _key
    RETURNING token INTO granted;
    INSERT INTO ${s} (sem_key, slot_id, token, slot_limit, expires_at, served_to)
    VALUES (_key, ${p.owner}, granted, ${p.limit}, now_ms + ${p.ttlMs}, ${servedTo(p)});
    SELECT i.secret INTO inbox_secret FROM ${inboxes(table)} AS i WHERE i.inbox = ${p.inbox};
    PERFORM pg_notify(${p.inbox}, ${message});
  END LOOP;
  UPDATE ${t} SET waiters = nullif(kept, '{}') WHERE sem_key = _key;
END
$hasp$`;
}

/**
 * SQL: no wait is queued on the key that the queue's service stopped at: every entry left (if
 * any) is a claim passed over because its owner holds a live slot (see the header).
 */
function noneWaiting({ t, s }: Names): string {
  const w = WAIT_ENTRY_SQL.fields(`(${WAIT_ENTRY_SQL.split("w")})`);
  return `NOT EXISTS (SELECT 1 FROM ${t} AS k, unnest(k.waiters) AS w WHERE k.sem_key = :key
    AND NOT EXISTS (SELECT 1 FROM ${s} AS o WHERE o.sem_key = :key AND o.slot_id = ${w.owner}))`;
}

/** `"<table>:acquire"(key, slot, limit, ttl)`: see KyselySemaphoreStatements.acquire. */
function acquireProcedure(n: Names): Procedure<KyselySemaphoreAcquireArgs> {
  const { t, s } = n;
  return procedure(
    n.table,
    "acquire",
    [KEY, ["slot", "text"], ["limit", "bigint"], ["ttl", "bigint"]],
    "granted bigint, lim bigint, taken bigint, remaining bigint",
    `${locked(n, true)}
UPDATE ${s} SET expires_at = now_ms + :ttl, served_to = NULL WHERE sem_key = :key AND slot_id = :slot
RETURNING token INTO granted;
IF granted IS NULL AND ${noneWaiting(n)} THEN
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

/**
 * `"<table>:<operation>"(key[, slot])`: frees the caller's live slot (`slot`) or every live slot,
 * then serves the queue. Answers freed, the slots freed.
 */
function freeProcedure<TArgs extends Record<string, unknown>>(
  n: Names,
  operation: string,
  slot: boolean,
): Procedure<TArgs> {
  const { s, serve } = n;
  return procedure(
    n.table,
    operation,
    slot ? [KEY, ["slot", "text"]] : [KEY],
    "freed bigint",
    `PERFORM 1 FROM ${n.t} WHERE sem_key = :key FOR UPDATE;
now_us := ${CLOCK_US};
now_ms := now_us / 1000;
DELETE FROM ${s} WHERE sem_key = :key${slot ? " AND slot_id = :slot" : ""} AND ${live("now_ms")};
GET DIAGNOSTICS freed = ROW_COUNT;
IF freed > 0 THEN
  DELETE FROM ${s} WHERE sem_key = :key AND expires_at <= now_ms;
  PERFORM ${serve}(:key, now_us);
END IF;
SELECT freed`,
  );
}

/** An entry's deadline: the wait's `left` ms, or the grace past the soonest expiry if sooner. */
function lasts(left: string): string {
  return WAIT_ENTRY_SQL.deadline("now_ms", left, { live: "true", expiresAt: "soonest" });
}

/**
 * `"<table>:wait"(key, owner, ttl, limit, wait, inbox, id)`, a wait without a claim: queues an
 * entry when no slot is free for anyone. Answers entry (NULL: a slot is free, to be tried) and
 * remaining, the soonest expiry's ms (-1: none expires).
 */
function waitProcedure(n: Names): Procedure<PostgresWaitArgs> {
  const { t, s } = n;
  return procedure(
    n.table,
    "wait",
    WAIT_PARAMS,
    "entry text, remaining bigint",
    `${locked(n, false).replace("FOR UPDATE;", "FOR UPDATE;\nIF NOT FOUND THEN\n  RETURN;\nEND IF;")}
SELECT count(*), min(slot_limit), min(expires_at) INTO taken, lim, soonest FROM ${s}
WHERE sem_key = :key;
IF taken = 0 OR (taken < lim AND ${noneWaiting(n)}) THEN
  RETURN;
END IF;
UPDATE ${t} SET waiters = array_append(waiters, ${WAIT_ENTRY_SQL.encode(lasts(":wait"), ":owner", ":limit")})
WHERE sem_key = :key
RETURNING waiters[cardinality(waiters)], coalesce(soonest - now_ms, -1)`,
    "",
    "taken bigint;\nlim bigint;\nsoonest bigint;",
  );
}

/**
 * `"<table>:claim"(key, owner, ttl, limit, wait, inbox, id)`: the acquire, whose "no slot"
 * branch queues the claim. Answers owner (the claim's when it holds a slot now), token (negated
 * when its own live slot was re-taken), remaining (the soonest expiry's ms, -1: none expires),
 * entry (when queued) and at, the server's ms (a signed grant's start is read against it).
 */
function claimProcedure(n: Names): Procedure<PostgresWaitArgs> {
  const { t, s } = n;
  const ttl = "nullif(:ttl, '')::bigint";
  return procedure(
    n.table,
    "claim",
    WAIT_PARAMS,
    "owner text, token bigint, remaining bigint, entry text, at bigint",
    `${locked(n, true)}
at := now_ms;
UPDATE ${s} SET expires_at = now_ms + ${ttl}, served_to = NULL
WHERE sem_key = :key AND slot_id = :owner
RETURNING -token INTO token;
IF token IS NOT NULL THEN
  owner := :owner;
  RETURN;
END IF;
SELECT count(*), least(:limit::bigint, min(slot_limit)), min(expires_at) INTO taken, lim, soonest
FROM ${s} WHERE sem_key = :key;
IF taken < lim AND ${noneWaiting(n)} THEN
  UPDATE ${t} SET token = greatest(token + 1, now_us) WHERE sem_key = :key
  RETURNING token INTO token;
  INSERT INTO ${s} (sem_key, slot_id, token, slot_limit, expires_at)
  VALUES (:key, :owner, token, :limit::bigint, now_ms + ${ttl});
  owner := :owner;
  RETURN;
END IF;
UPDATE ${t} SET waiters = array_append(waiters, ${WAIT_ENTRY_SQL.encode(lasts(":wait"), ":owner", ":limit")})
WHERE sem_key = :key
RETURNING NULL::text, NULL::bigint, coalesce(soonest - now_ms, -1), waiters[cardinality(waiters)],
  now_ms`,
    "",
    "taken bigint;\nlim bigint;\nsoonest bigint;",
  );
}

/**
 * `"<table>:leave"(key, owner, entry, mode)`: takes a wait's entry out of the queue. An entry
 * still queued was handed nothing: token 0. One that is gone: with mode "keep" (the wait ran
 * out), token is the owner's live slot's (0: none); with "release" (an abort, close()), the
 * owner's slot is freed, and the queue served, only when the queue's service handed it to this
 * very wait (`served_to`): another wait of the owner, or a call that re-took or refreshed it
 * since, counts on it, and an entry that lapsed was handed nothing. Answers token 0 then.
 */
function leaveProcedure(n: Names): Procedure<PostgresLeaveArgs> {
  const { t, s, serve } = n;
  const mine = WAIT_ENTRY_SQL.mine();
  const entry = WAIT_ENTRY_SQL.fields(`(${WAIT_ENTRY_SQL.split(":entry")})`);
  return procedure(
    n.table,
    "leave",
    [KEY, ["owner", "text"], ["entry", "text"], ["mode", "text"]],
    "token bigint",
    `UPDATE ${t} SET waiters = nullif(array_remove(waiters, ${mine}), '{}')
WHERE sem_key = :key AND ${mine} IS NOT NULL;
IF FOUND THEN
  token := 0;
  RETURN;
END IF;
IF :mode = 'release' THEN
  PERFORM 1 FROM ${t} WHERE sem_key = :key FOR UPDATE;
  now_us := ${CLOCK_US};
  now_ms := now_us / 1000;
  DELETE FROM ${s} WHERE sem_key = :key AND slot_id = :owner AND served_to = ${servedTo(entry)}
    AND ${live("now_ms")};
  IF FOUND THEN
    DELETE FROM ${s} WHERE sem_key = :key AND expires_at <= now_ms;
    PERFORM ${serve}(:key, now_us);
  END IF;
  token := 0;
  RETURN;
END IF;
SELECT token FROM ${s} WHERE sem_key = :key AND slot_id = :owner AND ${live("now_ms")}`,
  );
}

/**
 * `"<table>:check"(key, owner, entry, left)`: serves the queue (an expiry sends no message), then
 * answers state 1 (handed a slot: token, and remaining of the slot, NULL: never expires), 0
 * (still queued: entry, renewed in place with `left` ms left, and remaining, the soonest
 * expiry's, -1: none) or -1 (neither: woken, or past its deadline).
 */
function checkProcedure(n: Names): Procedure<PostgresEntryArgs & { left: number }> {
  const mine = WAIT_ENTRY_SQL.mine();
  const renewed = WAIT_ENTRY_SQL.renewed(lasts(":left"));
  return procedure(
    n.table,
    "check",
    [KEY, ["owner", "text"], ["entry", "text"], ["left", "bigint"]],
    "state int, token bigint, remaining bigint, entry text",
    `${locked(n, false)}
SELECT min(expires_at) INTO soonest FROM ${n.s} WHERE sem_key = :key;
UPDATE ${n.t} SET waiters[array_position(waiters, ${mine})] = ${renewed}
WHERE sem_key = :key AND ${mine} IS NOT NULL
RETURNING 0, NULL::bigint, coalesce(soonest - now_ms, -1), ${renewed}
INTO state, token, remaining, entry;
IF FOUND THEN
  RETURN;
END IF;
SELECT CASE WHEN s.token IS NULL THEN -1 ELSE 1 END, s.token, s.expires_at - now_ms, NULL
FROM (SELECT 1) AS one LEFT JOIN ${n.s} AS s
  ON s.sem_key = :key AND s.slot_id = :owner AND ${live("now_ms", "s.")}`,
    "",
    "soonest bigint;",
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

/** PostgreSQL's statements on `table` (and `<table>:slots`, `<table>:inboxes`). */
export function postgresSemaphoreStatements(table: string): PostgresSemaphoreStatements {
  const n = names(table);
  const { t, s } = n;
  const procedures = {
    acquire: acquireProcedure(n),
    release: freeProcedure<KyselySemaphoreSlotArgs>(n, "release", true),
    forceReleaseAll: freeProcedure<KyselySemaphoreKeyArgs>(n, "force_release_all", false),
    wait: waitProcedure(n),
    claim: claimProcedure(n),
    leave: leaveProcedure(n),
    check: checkProcedure(n),
  };
  const all = Object.values(procedures);
  return {
    dialect: "postgres",
    createSchema: [
      `CREATE TABLE IF NOT EXISTS ${t} (sem_key text PRIMARY KEY, token bigint NOT NULL, waiters text[])`,
      `CREATE TABLE IF NOT EXISTS ${s} (sem_key text NOT NULL, slot_id text NOT NULL, token bigint NOT NULL, slot_limit bigint NOT NULL, expires_at bigint, served_to text, PRIMARY KEY (sem_key, slot_id))`,
      // A table made before served_to gains it, once (an ALTER TABLE at every init() would lock
      // the table). The previous version's leave, which took no mode, stays beside the new one
      // until dropSchema(): a process of that version may still call it.
      `DO $hasp$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '${s}'::regclass AND attname = 'served_to' AND NOT attisdropped) THEN
    ALTER TABLE ${s} ADD COLUMN served_to text;
  END IF;
END $hasp$`,
      `CREATE TABLE IF NOT EXISTS ${inboxes(table)} (inbox text PRIMARY KEY, secret text NOT NULL, pid int NOT NULL)`,
      ...forgetTrigger(table),
      serveFunction(n),
      ...all.map(({ create }) => create),
    ],
    dropSchema: [
      `DROP TABLE IF EXISTS ${t}`,
      `DROP TABLE IF EXISTS ${s}`,
      `DROP TABLE IF EXISTS ${inboxes(table)}`,
      `DROP FUNCTION IF EXISTS "${table}:forget"()`,
      `DROP FUNCTION IF EXISTS ${n.serve}(text, bigint)`,
      ...all.map(({ drop }) => drop),
      `DROP PROCEDURE IF EXISTS "${table}:leave"(text, text, text, bigint)`,
    ],
    acquire: procedures.acquire.call,
    release: procedures.release.call,
    forceReleaseAll: procedures.forceReleaseAll.call,
    freed: "row",
    refresh: statement(
      "postgres",
      `UPDATE ${s} SET expires_at = ${NOW_MS} + :ttl::bigint, served_to = NULL
      WHERE sem_key = :key AND slot_id = :slot AND expires_at > ${NOW_MS}`,
    ),
    refreshed: "count",
    getState: slotStatements((_operation, text) => statement("postgres", text), s, NOW_MS).getState,
    removeExpired: statement(
      "postgres",
      `DELETE FROM ${t} AS k WHERE k.token < ${NOW_US_EXPRESSION} - :grace::bigint * 1000
      AND NOT EXISTS (SELECT FROM ${s} AS s WHERE s.sem_key = k.sem_key AND ${live(NOW_MS, "s.")})
      AND NOT EXISTS (SELECT FROM unnest(k.waiters) AS w
        WHERE split_part(w, ':', 1)::bigint > ${NOW_MS})`,
    ),
    wait: procedures.wait.call,
    claim: procedures.claim.call,
    leave: procedures.leave.call,
    check: procedures.check.call,
    inbox: inboxStatements(table),
  };
}
