// The SQL of KyselySharedLockAdapter on PostgreSQL: a PL/pgSQL procedure of the table's own per
// operation but the refreshes and getState (postgres-procedure.ts), created by init() and run by
// one CALL, in one transaction. Each locks the key's row first (an upsert for the acquires),
// reads the clock once it holds it, drops the key's expired readers and its expired writer, and
// serves the queue. The tables are those of kysely-shared-lock-statements.ts, and
//   "<table>".waiters            text[], the queue of claimed waits, oldest first (NULL: nobody
//                                waits), in wait-entry.ts's format: a reader's claim carries its
//                                limit, a writer's claim the limit "".
//   "<table>".writer_served_to   "<inbox>:<wait id>" of the wait the serving handed the writer
//                                hold to, until its next write; "<table>:readers".served_to, the
//                                same for a reader slot. Only that wait's leave frees the hold
//                                (a wait aborted as its grant came).
//   "<table>:inboxes"            the listening adapters' secrets (postgres-inbox.ts).
//
// "<table>:serve"(key, now) walks the queue oldest first: it skips entries past their deadline
// and claims whose owner already holds that side (kept in their place), gives a reader's claim a
// slot while no writer is live and the limit rule admits it, gives a writer's claim the key when
// no writer and no reader is live and nothing was granted earlier in this serving, and stops at
// the first claim it cannot serve. Grants are signed (postgres-grant-message.ts) and sent on the
// claim's adapter's channel. Intents are ignored by the serving: queued claims go first.
// Newcomers never pass the queue: a reader is refused while a live claim the serving stopped at
// (or a live writer claim) is queued, a writer while any live claim not passed over is queued.
// Without a listener nothing is ever queued, and a blocking writer records its intent instead.

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
import { liveSlot as live } from "../../../../backends/kysely/slot-statements.js";
import { statement } from "../../../../backends/kysely/sql-statement.js";
import { WAIT_ENTRY_SQL } from "../../../../backends/wait-queue/wait-entry.js";
import {
  type KyselySharedLockKeyArgs,
  type KyselySharedLockOwnerArgs,
  type KyselySharedLockReaderArgs,
  type KyselySharedLockRefreshArgs,
  type KyselySharedLockStatements,
  type KyselySharedLockWriterArgs,
  liveIntent,
  liveWriter,
  readersTable,
} from "../kysely-shared-lock-statements.js";

/** PostgreSQL's statements: those of every dialect, and the queue's. */
export type PostgresSharedLockStatements = KyselySharedLockStatements & PostgresQueueStatements;

const NOW_MS = `(${NOW_US_EXPRESSION} / 1000)`;
const CLOCK_US = "(date_part('epoch', clock_timestamp()) * 1000000)::bigint";

const KEY: Param = ["key", "text"];
const OWNER: Param = ["owner", "text"];
const WAIT_PARAMS: readonly Param[] = [
  KEY,
  OWNER,
  ["ttl", "text"],
  ["limit", "text"],
  ["wait", "bigint"],
  ["inbox", "text"],
  ["id", "text"],
];

/**
 * The variables the deciding procedures share, but for those among `answers` (an INOUT answer
 * of the same name would be shadowed).
 */
function declare(answers: string): string {
  const own = new Set(answers.split(", ").map((answer) => answer.split(" ")[0]));
  return [
    ["w", "text"],
    ["wexp", "bigint"],
    ["io", "text"],
    ["iu", "bigint"],
    ["taken", "bigint"],
    ["lim", "bigint"],
    ["soonest", "bigint"],
  ]
    .filter(([name]) => !own.has(name))
    .map(([name, type]) => `${name} ${type};`)
    .join("\n");
}

/** A hold's `served_to`: the wait of the entry split into `parts` ("<inbox>:<wait id>"). */
function servedTo(parts: { inbox: string; waitId: string }): string {
  return `(${parts.inbox} || ':' || ${parts.waitId})`;
}

/** The names of a table's objects. */
type Names = { t: string; r: string; serve: string; table: string };

function names(table: string): Names {
  return { table, t: `"${table}"`, r: `"${readersTable(table)}"`, serve: `"${table}:serve"` };
}

/**
 * PL/pgSQL: the key's row locked (inserted when `insert`), the clock read, the expired readers
 * dropped, the expired writer cleared, the queue served.
 */
function locked({ t, r, serve }: Names, insert: boolean): string {
  const lock = insert
    ? `INSERT INTO ${t} AS k (sl_key, token) VALUES (:key, 0)
ON CONFLICT (sl_key) DO UPDATE SET token = k.token WHERE false;`
    : `PERFORM 1 FROM ${t} WHERE sl_key = :key FOR UPDATE;`;
  return `${lock}
now_us := ${CLOCK_US};
now_ms := now_us / 1000;
DELETE FROM ${r} WHERE sl_key = :key AND expires_at <= now_ms;
UPDATE ${t} SET writer_owner = NULL, writer_served_to = NULL
WHERE sl_key = :key AND writer_owner IS NOT NULL AND writer_expires_at <= now_ms;
PERFORM ${serve}(:key, now_us);`;
}

/** PL/pgSQL: the key row's writer and intent into w, wexp, io, iu (live ones only). */
function readRow({ t }: Names): string {
  return `SELECT CASE WHEN ${liveWriter("now_ms")} THEN writer_owner END, writer_expires_at,
  CASE WHEN ${liveIntent("now_ms")} THEN intent_owner END, intent_until
INTO w, wexp, io, iu FROM ${t} WHERE sl_key = :key;`;
}

/** `"<table>:serve"(key, now_us)`: serves the key's queue (see the header). */
function serveFunction({ t, r, serve, table }: Names): string {
  const p = WAIT_ENTRY_SQL.fields("parts");
  const message = grantMessageSql({
    waitId: p.waitId,
    token: "granted",
    startMs: "now_ms",
    secret: "inbox_secret",
  });
  const stop = `UPDATE ${t} SET waiters = kept || queue[position:] WHERE sl_key = _key;
      RETURN;`;
  return `CREATE OR REPLACE FUNCTION ${serve}(_key text, now_us bigint) RETURNS void
  LANGUAGE plpgsql AS $hasp$
#variable_conflict use_column
DECLARE
  now_ms bigint := now_us / 1000;
  queue text[];
  entry text;
  parts text[];
  position int := 0;
  w text;
  taken bigint;
  lim bigint;
  granted bigint;
  served boolean := false;
  inbox_secret text;
  kept text[] := '{}';
BEGIN
  SELECT waiters, CASE WHEN ${liveWriter("now_ms")} THEN writer_owner END INTO queue, w
  FROM ${t} WHERE sl_key = _key;
  IF queue IS NULL THEN
    RETURN;
  END IF;
  FOREACH entry IN ARRAY queue LOOP
    position := position + 1;
    parts := ${WAIT_ENTRY_SQL.split("entry")};
    CONTINUE WHEN ${p.deadlineMs} <= now_ms;
    IF ${p.noClaim} THEN
      IF w IS NOT NULL THEN
        ${stop}
      END IF;
      PERFORM pg_notify(${p.inbox}, ${p.waitId});
      CONTINUE;
    END IF;
    IF ${p.limit} IS NULL THEN
      -- A writer's claim: its owner holds the key already (another of its waits was served).
      IF w = ${p.owner} THEN
        kept := kept || entry;
        CONTINUE;
      END IF;
      IF w IS NOT NULL OR served OR EXISTS (SELECT 1 FROM ${r} WHERE sl_key = _key) THEN
        ${stop}
      END IF;
      UPDATE ${t} SET token = greatest(token + 1, now_us), writer_owner = ${p.owner},
        writer_expires_at = now_ms + ${p.ttlMs}, writer_served_to = ${servedTo(p)}
      WHERE sl_key = _key RETURNING token INTO granted;
      w := ${p.owner};
    ELSE
      -- A reader's claim: its owner holds a slot already.
      IF EXISTS (SELECT 1 FROM ${r} WHERE sl_key = _key AND slot_id = ${p.owner}) THEN
        kept := kept || entry;
        CONTINUE;
      END IF;
      IF w IS NOT NULL THEN
        ${stop}
      END IF;
      SELECT count(*), least(${p.limit}, min(slot_limit)) INTO taken, lim FROM ${r}
      WHERE sl_key = _key;
      IF taken >= lim THEN
        ${stop}
      END IF;
      UPDATE ${t} SET token = greatest(token + 1, now_us) WHERE sl_key = _key
      RETURNING token INTO granted;
      INSERT INTO ${r} (sl_key, slot_id, token, slot_limit, expires_at, served_to)
      VALUES (_key, ${p.owner}, granted, ${p.limit}, now_ms + ${p.ttlMs}, ${servedTo(p)});
    END IF;
    served := true;
    SELECT i.secret INTO inbox_secret FROM ${inboxes(table)} AS i WHERE i.inbox = ${p.inbox};
    PERFORM pg_notify(${p.inbox}, ${message});
  END LOOP;
  UPDATE ${t} SET waiters = nullif(kept, '{}') WHERE sl_key = _key;
END
$hasp$`;
}

/**
 * SQL: a live queued entry that the serving did not pass over (its owner does not hold the side
 * it claims) is queued on the key.
 */
function queued({ t, r }: Names): string {
  const e = WAIT_ENTRY_SQL.fields(`(${WAIT_ENTRY_SQL.split("e")})`);
  return `EXISTS (SELECT 1 FROM ${t} AS k, unnest(k.waiters) AS e WHERE k.sl_key = :key
    AND ${e.deadlineMs} > now_ms
    AND NOT (CASE WHEN ${e.limit} IS NULL
      THEN k.writer_owner IS NOT DISTINCT FROM ${e.owner}
      ELSE EXISTS (SELECT 1 FROM ${r} AS o WHERE o.sl_key = :key AND o.slot_id = ${e.owner}) END))`;
}

/** PL/pgSQL: takes the key as `owner`'s writer (a new token), clearing its intent. */
function grantWriter({ t }: Names, owner: string, ttl: string, into: string): string {
  return `UPDATE ${t} SET token = greatest(token + 1, now_us), writer_owner = ${owner},
  writer_expires_at = now_ms + ${ttl}, writer_served_to = NULL,
  intent_owner = CASE WHEN intent_owner = ${owner} OR intent_until <= now_ms THEN NULL ELSE intent_owner END
WHERE sl_key = :key RETURNING token INTO ${into};`;
}

/** PL/pgSQL: gives `owner` a reader slot (a new token). */
function grantReader({ t, r }: Names, owner: string, limit: string, ttl: string, into: string) {
  return `UPDATE ${t} SET token = greatest(token + 1, now_us) WHERE sl_key = :key
RETURNING token INTO ${into};
INSERT INTO ${r} (sl_key, slot_id, token, slot_limit, expires_at)
VALUES (:key, ${owner}, ${into}, ${limit}, now_ms + ${ttl});`;
}

/** `"<table>:acquire_writer"(key, owner, ttl, intent)`: see KyselySharedLockStatements. */
function acquireWriterProcedure(n: Names): Procedure<KyselySharedLockWriterArgs> {
  const { t, r } = n;
  return procedure(
    n.table,
    "acquire_writer",
    [KEY, OWNER, ["ttl", "bigint"], ["intent", "bigint"]],
    "granted bigint, blocked text, owner text, taken bigint, remaining bigint",
    `${locked(n, true)}
${readRow(n)}
IF w = :owner THEN
  UPDATE ${t} SET writer_expires_at = now_ms + :ttl, writer_served_to = NULL,
    intent_owner = CASE WHEN intent_owner = :owner THEN NULL ELSE intent_owner END
  WHERE sl_key = :key RETURNING token INTO granted;
ELSIF w IS NOT NULL THEN
  blocked := 'writer';
  owner := w;
  remaining := wexp - now_ms;
ELSE
  SELECT count(*), min(expires_at) INTO taken, soonest FROM ${r} WHERE sl_key = :key;
  IF taken > 0 THEN
    blocked := 'readers';
    remaining := soonest - now_ms;
  ELSIF ${queued(n)} THEN
    blocked := 'waiters';
  ELSIF io IS NOT NULL AND io <> :owner THEN
    blocked := 'waiters';
    remaining := iu - now_ms;
  ELSE
    ${grantWriter(n, ":owner", ":ttl", "granted")}
  END IF;
END IF;
IF granted IS NULL AND :intent IS NOT NULL AND (io IS NULL OR io = :owner) THEN
  UPDATE ${t} SET intent_owner = :owner, intent_until = now_ms + :intent WHERE sl_key = :key;
END IF;
SELECT granted, blocked, owner, taken, remaining`,
    "",
    declare("granted bigint, blocked text, owner text, taken bigint, remaining bigint"),
  );
}

/** `"<table>:acquire_reader"(key, owner, limit, ttl)`: see KyselySharedLockStatements. */
function acquireReaderProcedure(n: Names): Procedure<KyselySharedLockReaderArgs> {
  const { r } = n;
  return procedure(
    n.table,
    "acquire_reader",
    [KEY, OWNER, ["limit", "bigint"], ["ttl", "bigint"]],
    "granted bigint, blocked text, owner text, lim bigint, taken bigint, remaining bigint",
    `${locked(n, true)}
${readRow(n)}
UPDATE ${r} SET expires_at = now_ms + :ttl, served_to = NULL
WHERE sl_key = :key AND slot_id = :owner RETURNING token INTO granted;
IF granted IS NULL THEN
  SELECT count(*), least(:limit, min(slot_limit)), min(expires_at) INTO taken, lim, soonest
  FROM ${r} WHERE sl_key = :key;
  IF w IS NOT NULL THEN
    blocked := 'writer';
    owner := w;
    remaining := wexp - now_ms;
  ELSIF (io IS NOT NULL AND io <> :owner) OR ${queued(n)} THEN
    blocked := 'waiters';
    remaining := least(soonest, CASE WHEN io <> :owner THEN iu END) - now_ms;
  ELSIF taken >= lim THEN
    blocked := 'limit';
    remaining := soonest - now_ms;
  ELSE
    ${grantReader(n, ":owner", ":limit", ":ttl", "granted")}
  END IF;
END IF;
SELECT granted, blocked, owner, lim, taken, remaining`,
    "",
    declare("granted bigint, blocked text, owner text, lim bigint, taken bigint, remaining bigint"),
  );
}

/**
 * `"<table>:<operation>"(key[, owner])`: frees the live writer (`writer`) and/or the live reader
 * slots (`readers`), of `owner` when given, then serves the queue. Answers freed, how many.
 */
function freeProcedure<TArgs extends Record<string, unknown>>(
  n: Names,
  operation: string,
  { writer, readers, owner }: { writer: boolean; readers: boolean; owner: boolean },
): Procedure<TArgs> {
  const { t, r, serve } = n;
  const frees: string[] = [];
  if (writer) {
    frees.push(`UPDATE ${t} SET writer_owner = NULL, writer_expires_at = now_ms, writer_served_to = NULL
WHERE sl_key = :key AND ${liveWriter("now_ms")}${owner ? " AND writer_owner = :owner" : ""};
GET DIAGNOSTICS n_rows = ROW_COUNT;
freed := freed + n_rows;`);
  }
  if (readers) {
    frees.push(`DELETE FROM ${r} WHERE sl_key = :key${owner ? " AND slot_id = :owner" : ""} AND ${live("now_ms")};
GET DIAGNOSTICS n_rows = ROW_COUNT;
freed := freed + n_rows;`);
  }
  return procedure(
    n.table,
    operation,
    owner ? [KEY, OWNER] : [KEY],
    "freed bigint",
    `PERFORM 1 FROM ${t} WHERE sl_key = :key FOR UPDATE;
now_us := ${CLOCK_US};
now_ms := now_us / 1000;
freed := 0;
${frees.join("\n")}
IF freed > 0 THEN
  DELETE FROM ${r} WHERE sl_key = :key AND expires_at <= now_ms;
  UPDATE ${t} SET writer_owner = NULL, writer_served_to = NULL
  WHERE sl_key = :key AND writer_owner IS NOT NULL AND writer_expires_at <= now_ms;
  PERFORM ${serve}(:key, now_us);
END IF;
SELECT freed`,
    "",
    "n_rows bigint;",
  );
}

/** SQL: the soonest expiry (ms) of what holds the key now: its live writer, else its readers. */
function soonestHold({ r }: Names): string {
  return `CASE WHEN w IS NOT NULL THEN wexp
  ELSE (SELECT min(expires_at) FROM ${r} WHERE sl_key = :key) END`;
}

/** An entry's deadline: the wait's `left` ms, or the grace past the soonest expiry if sooner. */
function lasts(left: string): string {
  return WAIT_ENTRY_SQL.deadline("now_ms", left, { live: "true", expiresAt: "soonest" });
}

/**
 * `"<table>:wait"(...)`, a wait without a claim (the shared lock always claims; kept for the
 * queue's shape): queues an entry while a writer is live. Answers entry (NULL: try again) and
 * remaining.
 */
function waitProcedure(n: Names): Procedure<PostgresWaitArgs> {
  const { t } = n;
  return procedure(
    n.table,
    "wait",
    WAIT_PARAMS,
    "entry text, remaining bigint",
    `${locked(n, false).replace("FOR UPDATE;", "FOR UPDATE;\nIF NOT FOUND THEN\n  RETURN;\nEND IF;")}
${readRow(n)}
IF w IS NULL THEN
  RETURN;
END IF;
soonest := wexp;
UPDATE ${t} SET waiters = array_append(waiters, ${WAIT_ENTRY_SQL.encode(lasts(":wait"), ":owner", ":limit")})
WHERE sl_key = :key
RETURNING waiters[cardinality(waiters)], coalesce(soonest - now_ms, -1)`,
    "",
    declare("entry text, remaining bigint"),
  );
}

/**
 * `"<table>:claim"(key, owner, ttl, limit, wait, inbox, id)`: the acquire of the claim's side
 * (limit "": a writer), whose refusal queues the claim. Answers owner (the claim's when it holds
 * now), token (negated when its own live hold was re-taken), remaining (the soonest expiry of
 * what holds the key, -1: none), entry (when queued) and at, the server's ms.
 */
function claimProcedure(n: Names): Procedure<PostgresWaitArgs> {
  const { t, r } = n;
  const ttl = "nullif(:ttl, '')::bigint";
  return procedure(
    n.table,
    "claim",
    WAIT_PARAMS,
    "owner text, token bigint, remaining bigint, entry text, at bigint",
    `${locked(n, true)}
at := now_ms;
${readRow(n)}
IF :limit = '' THEN
  IF w = :owner THEN
    UPDATE ${t} SET writer_expires_at = now_ms + ${ttl}, writer_served_to = NULL
    WHERE sl_key = :key RETURNING -token INTO token;
    owner := :owner;
    RETURN;
  END IF;
  IF w IS NULL AND NOT EXISTS (SELECT 1 FROM ${r} WHERE sl_key = :key) AND NOT ${queued(n)}
    AND (io IS NULL OR io = :owner) THEN
    ${grantWriter(n, ":owner", ttl, "token")}
    owner := :owner;
    RETURN;
  END IF;
ELSE
  UPDATE ${r} SET expires_at = now_ms + ${ttl}, served_to = NULL
  WHERE sl_key = :key AND slot_id = :owner RETURNING -token INTO token;
  IF token IS NOT NULL THEN
    owner := :owner;
    RETURN;
  END IF;
  SELECT count(*), least(:limit::bigint, min(slot_limit)) INTO taken, lim FROM ${r}
  WHERE sl_key = :key;
  IF w IS NULL AND taken < lim AND NOT ${queued(n)} AND (io IS NULL OR io = :owner) THEN
    ${grantReader(n, ":owner", ":limit::bigint", ttl, "token")}
    owner := :owner;
    RETURN;
  END IF;
END IF;
soonest := ${soonestHold(n)};
UPDATE ${t} SET waiters = array_append(waiters, ${WAIT_ENTRY_SQL.encode(lasts(":wait"), ":owner", ":limit")})
WHERE sl_key = :key
RETURNING NULL::text, NULL::bigint, coalesce(soonest - now_ms, -1), waiters[cardinality(waiters)],
  now_ms`,
    "",
    declare("owner text, token bigint, remaining bigint, entry text, at bigint"),
  );
}

/**
 * `"<table>:leave"(key, owner, entry, mode)`: takes a wait's entry out of the queue (token 0).
 * One that is gone: with "keep", token is the owner's live hold of the entry's side (0: none);
 * with "release", that hold is freed, and the queue served, only when the serving handed it to
 * this very wait (token 0).
 */
function leaveProcedure(n: Names): Procedure<PostgresLeaveArgs> {
  const { t, r, serve } = n;
  const mine = WAIT_ENTRY_SQL.mine();
  const entry = WAIT_ENTRY_SQL.fields(`(${WAIT_ENTRY_SQL.split(":entry")})`);
  return procedure(
    n.table,
    "leave",
    [KEY, OWNER, ["entry", "text"], ["mode", "text"]],
    "token bigint",
    `UPDATE ${t} SET waiters = nullif(array_remove(waiters, ${mine}), '{}')
WHERE sl_key = :key AND ${mine} IS NOT NULL;
IF FOUND THEN
  token := 0;
  RETURN;
END IF;
IF :mode = 'release' THEN
  PERFORM 1 FROM ${t} WHERE sl_key = :key FOR UPDATE;
  now_us := ${CLOCK_US};
  now_ms := now_us / 1000;
  IF ${entry.limit} IS NULL THEN
    UPDATE ${t} SET writer_owner = NULL, writer_expires_at = now_ms, writer_served_to = NULL
    WHERE sl_key = :key AND writer_owner = :owner AND writer_served_to = ${servedTo(entry)}
      AND ${liveWriter("now_ms")};
  ELSE
    DELETE FROM ${r} WHERE sl_key = :key AND slot_id = :owner AND served_to = ${servedTo(entry)}
      AND ${live("now_ms")};
  END IF;
  IF FOUND THEN
    DELETE FROM ${r} WHERE sl_key = :key AND expires_at <= now_ms;
    PERFORM ${serve}(:key, now_us);
  END IF;
  token := 0;
  RETURN;
END IF;
SELECT CASE WHEN ${entry.limit} IS NULL
  THEN (SELECT token FROM ${t} WHERE sl_key = :key AND writer_owner = :owner AND ${liveWriter("now_ms")})
  ELSE (SELECT token FROM ${r} WHERE sl_key = :key AND slot_id = :owner AND ${live("now_ms")}) END`,
  );
}

/**
 * `"<table>:check"(key, owner, entry, left)`: serves the queue (an expiry sends no message),
 * then answers state 1 (handed the hold: token, remaining, NULL: never expires), 0 (still
 * queued: entry renewed with `left` ms left, remaining the soonest expiry's, -1: none) or -1.
 */
function checkProcedure(n: Names): Procedure<PostgresEntryArgs & { left: number }> {
  const { t, r } = n;
  const mine = WAIT_ENTRY_SQL.mine();
  const renewed = WAIT_ENTRY_SQL.renewed(lasts(":left"));
  const entry = WAIT_ENTRY_SQL.fields(`(${WAIT_ENTRY_SQL.split(":entry")})`);
  return procedure(
    n.table,
    "check",
    [KEY, OWNER, ["entry", "text"], ["left", "bigint"]],
    "state int, token bigint, remaining bigint, entry text",
    `${locked(n, false)}
${readRow(n)}
soonest := ${soonestHold(n)};
UPDATE ${t} SET waiters[array_position(waiters, ${mine})] = ${renewed}
WHERE sl_key = :key AND ${mine} IS NOT NULL
RETURNING 0, NULL::bigint, coalesce(soonest - now_ms, -1), ${renewed}
INTO state, token, remaining, entry;
IF FOUND THEN
  RETURN;
END IF;
IF ${entry.limit} IS NULL THEN
  SELECT CASE WHEN w = :owner THEN 1 ELSE -1 END,
    CASE WHEN w = :owner THEN k.token END, CASE WHEN w = :owner THEN wexp - now_ms END
  INTO state, token, remaining FROM ${t} AS k WHERE k.sl_key = :key;
  RETURN;
END IF;
SELECT CASE WHEN s.token IS NULL THEN -1 ELSE 1 END, s.token, s.expires_at - now_ms, NULL
FROM (SELECT 1) AS one LEFT JOIN ${r} AS s
  ON s.sl_key = :key AND s.slot_id = :owner AND ${live("now_ms", "s.")}`,
    "",
    declare("state int, token bigint, remaining bigint, entry text"),
  );
}

/** The trigger that deletes a key's reader slots with its row (removeExpired), made once. */
function forgetTrigger(table: string): string[] {
  const forget = `"${table}:forget"`;
  return [
    `CREATE OR REPLACE FUNCTION ${forget}() RETURNS trigger LANGUAGE plpgsql AS $hasp$
BEGIN
  DELETE FROM "${readersTable(table)}" WHERE sl_key = OLD.sl_key;
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

/** PostgreSQL's statements on `table` (and `<table>:readers`, `<table>:inboxes`). */
export function postgresSharedLockStatements(table: string): PostgresSharedLockStatements {
  const n = names(table);
  const { t, r } = n;
  const procedures = {
    acquireWriter: acquireWriterProcedure(n),
    acquireReader: acquireReaderProcedure(n),
    releaseWriter: freeProcedure<KyselySharedLockOwnerArgs>(n, "release_writer", {
      writer: true,
      readers: false,
      owner: true,
    }),
    forceReleaseWriter: freeProcedure<KyselySharedLockKeyArgs>(n, "force_release_writer", {
      writer: true,
      readers: false,
      owner: false,
    }),
    releaseReader: freeProcedure<KyselySharedLockOwnerArgs>(n, "release_reader", {
      writer: false,
      readers: true,
      owner: true,
    }),
    forceReleaseAllReaders: freeProcedure<KyselySharedLockKeyArgs>(n, "force_release_all_readers", {
      writer: false,
      readers: true,
      owner: false,
    }),
    forceRelease: freeProcedure<KyselySharedLockKeyArgs>(n, "force_release", {
      writer: true,
      readers: true,
      owner: false,
    }),
    wait: waitProcedure(n),
    claim: claimProcedure(n),
    leave: leaveProcedure(n),
    check: checkProcedure(n),
  };
  const all = Object.values(procedures);
  const now = NOW_MS;
  return {
    dialect: "postgres",
    createSchema: [
      `CREATE TABLE IF NOT EXISTS ${t} (sl_key text PRIMARY KEY, token bigint NOT NULL, writer_owner text, writer_expires_at bigint, writer_served_to text, intent_owner text, intent_until bigint, waiters text[])`,
      `CREATE TABLE IF NOT EXISTS ${r} (sl_key text NOT NULL, slot_id text NOT NULL, token bigint NOT NULL, slot_limit bigint NOT NULL, expires_at bigint, served_to text, PRIMARY KEY (sl_key, slot_id))`,
      `CREATE TABLE IF NOT EXISTS ${inboxes(table)} (inbox text PRIMARY KEY, secret text NOT NULL, pid int NOT NULL)`,
      ...forgetTrigger(table),
      serveFunction(n),
      ...all.map(({ create }) => create),
    ],
    dropSchema: [
      `DROP TABLE IF EXISTS ${t}`,
      `DROP TABLE IF EXISTS ${r}`,
      `DROP TABLE IF EXISTS ${inboxes(table)}`,
      `DROP FUNCTION IF EXISTS "${table}:forget"()`,
      `DROP FUNCTION IF EXISTS ${n.serve}(text, bigint)`,
      ...all.map(({ drop }) => drop),
    ],
    acquireWriter: procedures.acquireWriter.call,
    acquireReader: procedures.acquireReader.call,
    releaseWriter: procedures.releaseWriter.call,
    forceReleaseWriter: procedures.forceReleaseWriter.call,
    releaseReader: procedures.releaseReader.call,
    forceReleaseAllReaders: procedures.forceReleaseAllReaders.call,
    forceRelease: procedures.forceRelease.call,
    freed: {
      releaseWriter: "row",
      forceReleaseWriter: "row",
      releaseReader: "row",
      forceReleaseAllReaders: "row",
      forceRelease: "row",
    },
    refreshWriter: statement<KyselySharedLockRefreshArgs>(
      "postgres",
      `UPDATE ${t} SET writer_expires_at = ${now} + :ttl::bigint, writer_served_to = NULL
      WHERE sl_key = :key AND writer_owner = :owner AND writer_expires_at > ${now}`,
    ),
    refreshReader: statement<KyselySharedLockRefreshArgs>(
      "postgres",
      `UPDATE ${r} SET expires_at = ${now} + :ttl::bigint, served_to = NULL
      WHERE sl_key = :key AND slot_id = :owner AND expires_at > ${now}`,
    ),
    refreshed: "count",
    getState: statement<KyselySharedLockOwnerArgs>(
      "postgres",
      `SELECT CASE WHEN ${liveWriter(now, "k.")} THEN k.writer_owner END AS writer,
        k.token AS wtoken, coalesce(k.writer_expires_at - ${now}, -1) AS wremaining,
        (SELECT count(*) FROM ${r} AS s WHERE s.sl_key = k.sl_key AND ${live(now, "s.")}) AS taken,
        (SELECT min(slot_limit) FROM ${r} AS s WHERE s.sl_key = k.sl_key AND ${live(now, "s.")}) AS lim,
        s.token AS token, coalesce(s.expires_at - ${now}, -1) AS remaining,
        CASE WHEN ${liveIntent(now, "k.")} OR EXISTS (SELECT 1 FROM unnest(k.waiters) AS e
          WHERE split_part(e, ':', 1)::bigint > ${now} AND split_part(e, ':', 5) = ''
            AND split_part(e, ':', 2) <> '-') THEN 1 ELSE 0 END AS waiting
      FROM ${t} AS k LEFT JOIN ${r} AS s
        ON s.sl_key = k.sl_key AND s.slot_id = :owner AND ${live(now, "s.")}
      WHERE k.sl_key = :key`,
    ),
    removeExpired: statement(
      "postgres",
      `DELETE FROM ${t} AS k WHERE k.token < ${NOW_US_EXPRESSION} - :grace::bigint * 1000
      AND NOT ${liveWriter(now, "k.")} AND NOT ${liveIntent(now, "k.")}
      AND NOT EXISTS (SELECT FROM ${r} AS s WHERE s.sl_key = k.sl_key AND ${live(now, "s.")})
      AND NOT EXISTS (SELECT FROM unnest(k.waiters) AS w
        WHERE split_part(w, ':', 1)::bigint > ${now})`,
    ),
    wait: procedures.wait.call,
    claim: procedures.claim.call,
    leave: procedures.leave.call,
    check: procedures.check.call,
    inbox: inboxStatements(table),
  };
}
