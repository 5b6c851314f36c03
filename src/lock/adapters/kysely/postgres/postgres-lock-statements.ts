// The SQL of KyselyLockAdapter on PostgreSQL. Each operation is a PL/pgSQL procedure of the
// table's own, created by init() and run by one CALL. The procedure plans its SQL once per
// connection, where the statement itself, sent unnamed (as Kysely sends every query), would be
// parsed and planned at every call; and a CALL, unlike a SELECT of a function, is not planned
// itself. Planning was most of the cost of an uncontended acquire and release. The answer is the
// procedure's INOUT parameters (the CALL passes NULLs): one row, NULL where the SQL found no row.
//
// Table: the one of kysely-lock-statements.ts, and
//   waiters   text[], the queue of blocking acquires, oldest first (NULL: nobody waits). An entry
//             is "deadline_ms:ttl:inbox:wait_id:limit:owner" (wait-entry.ts; the owner last); ttl is
//             the claim's in ms, "" for a hold without TTL, "-" for a wait without a claim. An
//             entry's deadline is renewed in place by its wait's checks, however often the holder
//             refreshes (a wait is known by the part after the deadline, which never changes).
//
// The release statement serves the queue through a trigger, "<table>_hand_off": only an UPDATE
// that frees a hold with waiters queued runs it (its WHEN is all an uncontended release pays).
// It skips entries past their deadline, wakes waits without a claim, and gives the key to the
// first claim (new token, its TTL from now), naming each wait on its adapter's channel
// (postgres-grant-message.ts: the grant signed with the secret the adapter keeps in
// "<table>:inboxes", so the waiter believes it without asking; a wait without a claim gets its id
// alone, a wake-up). NOTIFY is sent at commit and needs no privilege at all: a message that is
// not a grant signed with the inbox's secret is a wake-up, and the wait asks `check`.
//
// served_to: "<inbox>:<wait id>" of the wait the trigger handed the hold to, until the row's next
// acquire or refresh (NULL: the hold was not handed over, or was re-taken or refreshed since).
// Only that wait's leave frees it (a wait aborted as its grant came); another wait of the same
// owner (whose entry lapsed: its process was paused past its deadline, and a hand-off dropped
// it) frees nothing.
//
// "<table>:inboxes": one row per listening adapter (inbox, secret, and the pid of the backend
// that listens, so that a registration can drop the rows of backends gone). A role that may read
// it can forge grants: grant it to nobody but the roles that write the lock table.
//
// Time: in a procedure's body, the server's time is read once, into now_us and now_ms.

import { grantMessageSql } from "../../../../backends/kysely/postgres/postgres-grant-message.js";
import {
  inboxes,
  inboxStatements,
  type PostgresInboxStatements,
} from "../../../../backends/kysely/postgres/postgres-inbox.js";
import {
  CLOCK_MS,
  NOW_MS,
  NOW_US,
  NOW_US_EXPRESSION,
  type Param,
  type Procedure,
  procedure,
} from "../../../../backends/kysely/postgres/postgres-procedure.js";
import { statement } from "../../../../backends/kysely/sql-statement.js";
import { WAIT_ENTRY_SQL } from "../../../../backends/wait-queue/wait-entry.js";
import {
  free,
  type KyselyLockEntryArgs,
  type KyselyLockKeyArgs,
  type KyselyLockOwnerArgs,
  type KyselyLockStatements,
  type KyselyLockTtlArgs,
  type KyselyLockWaitArgs,
  liveHold,
  unexpired,
} from "../kysely-lock-statements.js";

/** PostgreSQL's statements: those of every dialect, and the queue's. */
export type PostgresLockStatements = KyselyLockStatements &
  Required<Pick<KyselyLockStatements, "wait" | "claim" | "leave" | "check">> & {
    readonly inbox: PostgresInboxStatements;
  };

const KEY: Param = ["key", "text"];
const OWNER: Param = ["owner", "text"];
const ENTRY: Param = ["entry", "text"];
const WAIT_PARAMS: readonly Param[] = [
  KEY,
  OWNER,
  ["ttl", "text"],
  ["wait", "bigint"],
  ["inbox", "text"],
  ["id", "text"],
];
/** The answer of acquire and getState. */
const ROW = "owner text, token bigint, remaining bigint";

// The row `l` is taken (free or expired) or re-taken by its owner. In DO UPDATE SET every
// expression reads the row as it was before the statement, and excluded.* is the row VALUES
// proposed.
const TAKES = `${free(NOW_MS)} OR l.owner = excluded.owner`;

/** The acquire upsert into table `t`, for a TTL of `ttl` ms, setting `more` columns too. */
function upsert(t: string, ttl: string, ...more: string[]): string {
  return `INSERT INTO ${t} AS l (lock_key, owner, token, expires_at)
VALUES (:key, :owner, ${NOW_US}, ${NOW_MS} + ${ttl})
ON CONFLICT (lock_key) DO UPDATE SET
  ${[
    `token = CASE WHEN ${free(NOW_MS)} THEN greatest(l.token + 1, ${NOW_US}) ELSE l.token END`,
    `owner = CASE WHEN ${TAKES} THEN excluded.owner ELSE l.owner END`,
    `expires_at = CASE WHEN ${TAKES} THEN excluded.expires_at ELSE l.expires_at END`,
    `served_to = CASE WHEN ${TAKES} THEN NULL ELSE l.served_to END`,
    ...more,
  ].join(",\n  ")}`;
}

// Run by a transaction that only queued a wait (no hold, no token): its commit need not wait for
// the disk. The claims of a hot key come between its releases, and each one holds the row until
// its commit: one that waited for the disk held up the next release (the hand-off) as long. A
// queue entry lost in a server crash is a wait that finds itself gone and tries again; what the
// entry leads to, a grant, is committed by the release, which waits for the disk, and so makes
// the entry durable first (WAL is flushed in order).
const QUEUED_ONLY = "PERFORM set_config('synchronous_commit', 'off', true);";

// A wait's entry in the row's queue as it is now: the one whose part after the deadline is
// :entry's (a wait is known by that part, which never changes; its deadline is renewed in place,
// so an entry the waiter has not heard of yet, a reply lost, is still its).
const MINE = WAIT_ENTRY_SQL.mine();

/**
 * An entry's deadline: the wait's `left` ms, or the grace past the live hold of the row `l`
 * when that comes sooner (the waiter renews it by checking then).
 */
function lasts(left: string, row = ""): string {
  return WAIT_ENTRY_SQL.deadline(NOW_MS, left, {
    live: liveHold(NOW_MS, row),
    expiresAt: `${row}expires_at`,
  });
}

/** A hold's `served_to`: the wait of the entry split into `parts` ("<inbox>:<wait id>"). */
function servedTo(parts: { inbox: string; waitId: string }): string {
  return `(${parts.inbox} || ':' || ${parts.waitId})`;
}

// The trigger's reads of an entry split into its `parts` (wait-entry.ts).
const PARTS = WAIT_ENTRY_SQL.fields("parts");

/**
 * `"<table>:acquire"(key, owner, ttl)`: takes a free or expired row, re-takes our own live hold,
 * or leaves another's. Answers owner, token, remaining (ms; NULL: never expires) of the row as
 * it is after the statement. The remaining time is read on the clock of the moment the row was
 * written: a statement that waited for a concurrent acquire's insert began before that hold, so
 * its now_ms would report more than the holder's TTL left.
 */
function acquireProcedure(table: string): Procedure<KyselyLockTtlArgs> {
  return procedure(
    table,
    "acquire",
    [KEY, OWNER, ["ttl", "bigint"]],
    ROW,
    `${upsert(`"${table}"`, ":ttl")}
RETURNING owner, token,
  CASE WHEN expires_at IS NOT NULL THEN greatest(expires_at - ${CLOCK_MS}, 1) END`,
  );
}

/** `"<table>:release"(key, owner)`: frees our live hold. Answers its token (NULL: not ours). */
function releaseProcedure(table: string): Procedure<KyselyLockOwnerArgs> {
  return procedure(
    table,
    "release",
    [KEY, OWNER],
    "token bigint",
    `UPDATE "${table}" SET owner = NULL, expires_at = ${NOW_MS}
WHERE lock_key = :key AND owner = :owner AND ${unexpired(NOW_MS)}
RETURNING token`,
  );
}

/** `"<table>:force_release"(key)`: frees any live hold. Answers its token (NULL: none). */
function forceReleaseProcedure(table: string): Procedure<KyselyLockKeyArgs> {
  return procedure(
    table,
    "force_release",
    [KEY],
    "token bigint",
    `UPDATE "${table}" SET owner = NULL, expires_at = ${NOW_MS}
WHERE lock_key = :key AND ${liveHold(NOW_MS)}
RETURNING token`,
  );
}

/**
 * `"<table>:refresh"(key, owner, ttl)`: restarts the TTL of our live, expiring hold. Answers its
 * token (NULL: not ours, or no TTL).
 */
function refreshProcedure(table: string): Procedure<KyselyLockTtlArgs & { ttl: number }> {
  return procedure(
    table,
    "refresh",
    [KEY, OWNER, ["ttl", "bigint"]],
    "token bigint",
    `UPDATE "${table}" SET expires_at = ${NOW_MS} + :ttl, served_to = NULL
WHERE lock_key = :key AND owner = :owner AND expires_at > ${NOW_MS}
RETURNING token`,
  );
}

/** `"<table>:get_state"(key)`: answers owner, token, remaining of the live hold (NULLs: free). */
function getStateProcedure(table: string): Procedure<KyselyLockKeyArgs> {
  return procedure(
    table,
    "get_state",
    [KEY],
    ROW,
    `SELECT owner, token, expires_at - ${NOW_MS} FROM "${table}"
WHERE lock_key = :key AND ${liveHold(NOW_MS)}`,
  );
}

/**
 * `"<table>:wait"(key, owner, ttl, wait, inbox, id)`, a wait without a claim (ttl "-"): queues
 * an entry on a live hold. Answers entry (NULL: the key is free, to be tried) and remaining, the
 * hold's ms (-1: never expires). The waiter listens on its inbox before it queues, so no release
 * can miss it.
 */
function waitProcedure(table: string): Procedure<KyselyLockWaitArgs> {
  return procedure(
    table,
    "wait",
    WAIT_PARAMS,
    "entry text, remaining bigint",
    `UPDATE "${table}" SET waiters = array_append(waiters, ${WAIT_ENTRY_SQL.encode(lasts(":wait"), ":owner")})
WHERE lock_key = :key AND ${liveHold(NOW_MS)}
RETURNING waiters[cardinality(waiters)], coalesce(expires_at - ${NOW_MS}, -1)`,
    QUEUED_ONLY,
  );
}

/**
 * `"<table>:claim"(key, owner, ttl, wait, inbox, id)`: the acquire upsert, whose "held by
 * another" branch appends the claim to the queue (ttl "" for a hold without one). Answers owner,
 * token, remaining (-1: never expires), entry (when queued) and at, the server's ms (a signed
 * grant's start is read against it). A new token is at least the server's µs, a kept one (the
 * claim owner's own hold, re-taken) below them: that one is answered negated, so an abort does
 * not free what was held before.
 */
function claimProcedure(table: string): Procedure<KyselyLockWaitArgs> {
  return procedure(
    table,
    "claim",
    WAIT_PARAMS,
    `${ROW}, entry text, at bigint`,
    `${upsert(
      `"${table}"`,
      "nullif(:ttl, '')::bigint",
      `waiters = CASE WHEN ${TAKES} THEN l.waiters ELSE array_append(l.waiters,
    ${WAIT_ENTRY_SQL.encode(lasts(":wait", "l."), "excluded.owner")}) END`,
    )}
RETURNING owner, CASE WHEN owner = :owner AND token < ${NOW_US} THEN -token ELSE token END,
  coalesce(expires_at - ${NOW_MS}, -1), CASE WHEN owner <> :owner THEN waiters[cardinality(waiters)] END,
  ${NOW_MS}`,
    `IF owner <> _owner THEN
  ${QUEUED_ONLY}
END IF;`,
  );
}

/**
 * `"<table>:leave"(key, owner, entry, mode)`: takes a wait's entry out of the queue. An entry
 * still queued was handed nothing, even when its owner holds the key (through another wait of
 * the same owner, whose hold must stay): token 0. One that is gone: with mode "keep" (the wait
 * ran out), token is owner's live hold's (0: none); with "release" (an abort, close()), the hold
 * is freed (the trigger serves the queue) only when the trigger handed it to this very wait
 * (served_to), and token is 0.
 */
function leaveProcedure(
  table: string,
): Procedure<KyselyLockOwnerArgs & KyselyLockEntryArgs & { mode: "keep" | "release" }> {
  const entry = WAIT_ENTRY_SQL.fields(`(${WAIT_ENTRY_SQL.split(":entry")})`);
  return procedure(
    table,
    "leave",
    [KEY, OWNER, ENTRY, ["mode", "text"]],
    "token bigint",
    `UPDATE "${table}" SET waiters = nullif(array_remove(waiters, ${MINE}), '{}')
WHERE lock_key = :key AND ${MINE} IS NOT NULL;
IF FOUND THEN
  token := 0;
  RETURN;
END IF;
IF :mode = 'release' THEN
  UPDATE "${table}" SET owner = NULL, expires_at = ${NOW_MS}
  WHERE lock_key = :key AND owner = :owner AND served_to = ${servedTo(entry)} AND ${unexpired(NOW_MS)};
  token := 0;
  RETURN;
END IF;
SELECT CASE WHEN owner = :owner AND ${unexpired(NOW_MS)} THEN token ELSE 0 END FROM "${table}"
WHERE lock_key = :key`,
  );
}

/**
 * `"<table>:check"(key, owner, entry, left)`: whether a queued wait was handed the key. Answers
 * state 1 (handed: token, and remaining of the granted hold), 0 (still queued: entry, renewed in
 * place with `left` ms left, and remaining, the holder's: -1 never expires, NULL no hold) or -1
 * (neither: woken, or past its deadline). A hold that expired with waits queued sends nothing:
 * freeing it here runs the trigger, which serves the queue oldest first, as a release would.
 */
function checkProcedure(
  table: string,
): Procedure<KyselyLockOwnerArgs & KyselyLockEntryArgs & { left: number }> {
  const t = `"${table}"`;
  return procedure(
    table,
    "check",
    [KEY, OWNER, ENTRY, ["left", "bigint"]],
    "state int, token bigint, remaining bigint, entry text",
    `UPDATE ${t} SET owner = NULL, expires_at = ${NOW_MS}
WHERE lock_key = :key AND owner IS NOT NULL AND expires_at <= ${NOW_MS} AND ${MINE} IS NOT NULL;
UPDATE ${t} SET waiters[array_position(waiters, ${MINE})] =
  ${WAIT_ENTRY_SQL.renewed(lasts(":left"))}
WHERE lock_key = :key AND ${MINE} IS NOT NULL
RETURNING 0, NULL::bigint,
  CASE WHEN ${liveHold(NOW_MS)} THEN coalesce(expires_at - ${NOW_MS}, -1) END,
  ${WAIT_ENTRY_SQL.renewed(lasts(":left"))}
INTO state, token, remaining, entry;
IF FOUND THEN
  RETURN;
END IF;
SELECT CASE WHEN owner = :owner AND ${unexpired(NOW_MS)} THEN 1 ELSE -1 END,
  CASE WHEN owner = :owner AND ${unexpired(NOW_MS)} THEN token END,
  expires_at - ${NOW_MS}, NULL
FROM ${t} WHERE lock_key = :key`,
  );
}

/**
 * The trigger's function, `"<table>_hand_off"()`: run by an UPDATE that frees a hold with
 * waiters queued, it serves the queue (see the header) in the same statement.
 */
function handOffFunction(table: string): string {
  const message = grantMessageSql({
    waitId: PARTS.waitId,
    token: "NEW.token",
    startMs: "now_us / 1000",
    secret: "inbox_secret",
  });
  return `CREATE OR REPLACE FUNCTION "${table}_hand_off"() RETURNS trigger LANGUAGE plpgsql AS $hasp$
DECLARE
  now_us bigint := ${NOW_US_EXPRESSION};
  entry text;
  parts text[];
  position int := 0;
  inbox_secret text;
BEGIN
  -- A release (or forceRelease) of a key with waiters queued: entries are
  -- "deadline_ms:ttl:inbox:wait_id:limit:owner", oldest first.
  FOREACH entry IN ARRAY NEW.waiters LOOP
    position := position + 1;
    parts := ${WAIT_ENTRY_SQL.split("entry")};
    -- Its wait has ended (or its process died): skip it.
    CONTINUE WHEN ${PARTS.deadlineMs} <= now_us / 1000;
    -- A wait without a claim: woken, the key stays free for now.
    IF ${PARTS.noClaim} THEN
      PERFORM pg_notify(${PARTS.inbox}, ${PARTS.waitId});
      CONTINUE;
    END IF;
    -- The first claim: the key is its hold, from now.
    NEW.owner := ${PARTS.owner};
    NEW.token := greatest(OLD.token + 1, now_us);
    NEW.expires_at := now_us / 1000 + ${PARTS.ttlMs};
    NEW.served_to := ${servedTo(PARTS)};
    NEW.waiters := nullif(NEW.waiters[position + 1:], '{}');
    SELECT i.secret INTO inbox_secret FROM ${inboxes(table)} AS i WHERE i.inbox = ${PARTS.inbox};
    PERFORM pg_notify(${PARTS.inbox}, ${message});
    RETURN NEW;
  END LOOP;
  NEW.waiters := NULL;
  RETURN NEW;
END
$hasp$`;
}

/** The trigger, made once: a DROP and CREATE would lock the table at every init(). */
function handOffTrigger(table: string): string {
  const handOff = `"${table}_hand_off"`;
  return `DO $hasp$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '${table}_hand_off' AND tgrelid = '"${table}"'::regclass) THEN
    CREATE TRIGGER ${handOff} BEFORE UPDATE ON "${table}" FOR EACH ROW
      WHEN (NEW.owner IS NULL AND OLD.owner IS NOT NULL AND NEW.waiters IS NOT NULL)
      EXECUTE FUNCTION ${handOff}();
  END IF;
END $hasp$`;
}

/** PostgreSQL's statements on `table`: a CALL of the table's procedure per operation. */
export function postgresStatements(table: string): PostgresLockStatements {
  const t = `"${table}"`;
  const procedures = {
    acquire: acquireProcedure(table),
    release: releaseProcedure(table),
    forceRelease: forceReleaseProcedure(table),
    refresh: refreshProcedure(table),
    getState: getStateProcedure(table),
    wait: waitProcedure(table),
    claim: claimProcedure(table),
    leave: leaveProcedure(table),
    check: checkProcedure(table),
  };
  const all = Object.values(procedures);
  return {
    dialect: "postgres",
    createSchema: [
      // Concurrent CREATE TABLE IF NOT EXISTS can still collide in pg_type: the dialect runs
      // these under an advisory lock. No index beyond the key: every update then stays in its
      // page (a HOT update), and removeExpired, an occasional sweep, can scan.
      `CREATE TABLE IF NOT EXISTS ${t} (lock_key text PRIMARY KEY, owner text, token bigint NOT NULL, expires_at bigint, waiters text[], served_to text)`,
      // A table made before served_to gains it, once (an ALTER TABLE at every init() would lock
      // the table). The previous version's leave, which took no mode, stays beside the new one
      // until dropSchema(): a process of that version may still call it.
      `DO $hasp$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '${t}'::regclass AND attname = 'served_to' AND NOT attisdropped) THEN
    ALTER TABLE ${t} ADD COLUMN served_to text;
  END IF;
END $hasp$`,
      `CREATE TABLE IF NOT EXISTS ${inboxes(table)} (inbox text PRIMARY KEY, secret text NOT NULL, pid int NOT NULL)`,
      handOffFunction(table),
      handOffTrigger(table),
      ...all.map(({ create }) => create),
    ],
    dropSchema: [
      `DROP TABLE IF EXISTS ${t}`,
      `DROP TABLE IF EXISTS ${inboxes(table)}`,
      `DROP FUNCTION IF EXISTS "${table}_hand_off"()`,
      ...all.map(({ drop }) => drop),
      `DROP PROCEDURE IF EXISTS "${table}:leave"(text, text, text, bigint)`,
    ],
    returning: true,
    affected: "token",
    acquire: procedures.acquire.call,
    release: procedures.release.call,
    forceRelease: procedures.forceRelease.call,
    refresh: procedures.refresh.call,
    getState: procedures.getState.call,
    wait: procedures.wait.call,
    claim: procedures.claim.call,
    leave: procedures.leave.call,
    check: procedures.check.call,
    inbox: inboxStatements(table),
    // :grace (ms): deletes rows free or expired for longer. Answers the affected-row count.
    removeExpired: statement(
      "postgres",
      `DELETE FROM ${t} WHERE expires_at < ${NOW_US_EXPRESSION} / 1000 - :grace::bigint`,
    ),
  };
}
