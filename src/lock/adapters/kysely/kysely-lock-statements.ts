// The SQL of KyselyLockAdapter, one statements object per dialect, chosen once in the adapter's
// constructor. Every operation is one statement in autocommit, so no transaction spans a round
// trip and a lost race is an answer, not an error.
//
// Table (name configurable):
//   lock_key    the namespaced key (hashed when longer than KEY_MAX_BYTES)   primary key
//   owner       the holder's lock id; NULL when free
//   token       the last fencing token issued for the key (kept when the key is freed)
//   expires_at  server time in ms: the hold's expiry (NULL: never expires); for a free row, when
//               it was freed, so `removeExpired` can tell how long it has been dead
//   waiters     PostgreSQL: the queue of blocking acquires, oldest first (see postgresStatements)
//
// Time is always the server's: NOW_MS / NOW_US below, fixed for the whole statement. A new token
// is max(last token + 1, server time in µs), so tokens grow across release and expiry (the row
// keeps its token) and across the deletion of a dead row (the clock has passed every old token).

import { createHash } from "node:crypto";
import { ENTRY_GRACE_MS } from "../queued-wait.js";

/** The SQL dialects the adapter speaks; MySQL covers MariaDB. */
export type KyselyLockDialect = "postgres" | "mysql" | "sqlite";

/** One statement: its text with the dialect's placeholders and how to order its parameters. */
export type KyselyLockStatement<TArgs extends Record<string, unknown>> = {
  /** The text, with the dialect's placeholders (`$1` or `?`). */
  readonly sql: string;
  /** The parameter values in placeholder order. */
  readonly parameters: (args: TArgs) => unknown[];
  /**
   * MariaDB, with `prepared`: the statement is prepared once per connection (`PREPARE`, with
   * `sql` as its parameter) and then run as `EXECUTE ... USING` the parameters, which the server
   * neither parses nor resolves again.
   */
  readonly prepared?: {
    /** Its name on a connection, quoted: `` `<table>:<operation>:<hash of sql>` ``. */
    readonly name: string;
    /** `PREPARE <name> FROM ?`. */
    readonly prepare: string;
    /** `EXECUTE <name> USING ?, ...`, one `?` a placeholder of `sql`. */
    readonly execute: string;
  };
};

/** The arguments of a statement on one key. */
export type KyselyLockKeyArgs = {
  /** The stored key (namespaced, hashed when too long). */
  key: string;
};
/** The arguments of a statement on one owner's hold. */
export type KyselyLockOwnerArgs = KyselyLockKeyArgs & {
  /** The lock id. */
  owner: string;
};
/** The arguments of a statement that sets a TTL. */
export type KyselyLockTtlArgs = KyselyLockOwnerArgs & {
  /** The TTL in ms; `null`: the hold never expires. */
  ttl: number | null;
};

/** The arguments of PostgreSQL's `wait`: a queue entry for the release to serve. */
export type KyselyLockWaitArgs = KyselyLockOwnerArgs & {
  /** The claim's TTL in ms, "" for a hold without one, "-" for a wait without a claim. */
  ttl: string;
  /** How long the entry stays valid, in ms from the server's now. */
  wait: number;
  /** The waiting adapter's channel, where the release tells it. */
  inbox: string;
  /** The wait's id within its adapter. */
  id: string;
};

/** The arguments of PostgreSQL's `leave` and `check`: one wait's queue entry. */
export type KyselyLockEntryArgs = {
  /** The entry `wait` or `claim` answered. */
  entry: string;
};

/** The SQL of one dialect, as `KyselyLockAdapter.statements()` shows it. */
export type KyselyLockStatements = {
  /** Which dialect the statements are written in. */
  readonly dialect: KyselyLockDialect;
  /** DDL run in order by `init()`; each is idempotent. */
  readonly createSchema: readonly string[];
  /** Drops the table and what belongs to it, in order (`dropSchema()`, for tests). */
  readonly dropSchema: readonly string[];
  /**
   * Takes a free or expired row, re-takes our own live hold (token kept, TTL restarted), or
   * leaves another's live hold exactly as it was. With `returning`, answers the row as it is
   * after the statement: `owner`, `token`, `remaining` (ms; NULL: never expires). Without it
   * (MySQL), the answer is the `LAST_INSERT_ID` of the statement: the token when acquired, 0
   * when not.
   */
  readonly acquire: KyselyLockStatement<KyselyLockTtlArgs>;
  /** Whether `acquire` answers rows (`RETURNING`). */
  readonly returning: boolean;
  /** Frees our live hold; see `affected` for how it says it did. */
  readonly release: KyselyLockStatement<KyselyLockOwnerArgs>;
  /** Frees any live hold, saying so as `release` does. */
  readonly forceRelease: KyselyLockStatement<KyselyLockKeyArgs>;
  /** Restarts the TTL of our live, expiring hold. Answers like `release`. */
  readonly refresh: KyselyLockStatement<
    KyselyLockTtlArgs & {
      /** The new TTL in ms (a hold without TTL cannot be refreshed). */
      ttl: number;
    }
  >;
  /**
   * The live hold: `owner`, `token`, `remaining`; when free, no row (PostgreSQL: a row of
   * NULLs).
   */
  readonly getState: KyselyLockStatement<KyselyLockKeyArgs>;
  /**
   * PostgreSQL: queues a wait on a live hold (answers the queue entry, `entry`, and the hold's
   * `remaining` ms), or finds the key free (`entry` NULL). The release that reaches the entry
   * hands the key to it (a claim) or wakes it, and names its wait on its adapter's inbox
   * channel.
   */
  readonly wait?: KyselyLockStatement<KyselyLockWaitArgs>;
  /**
   * PostgreSQL: `wait` for a claim, which is also an acquire: takes a free or expired row, or
   * re-takes the claim owner's live hold, as `acquire` does (its token then answered negated);
   * otherwise queues the claim (a refresh of the hold leaves it in place; `check` renews it).
   * Answers `owner`, `token`, `remaining` (as `acquire`; -1: never expires) and `entry` (when
   * queued).
   */
  readonly claim?: KyselyLockStatement<KyselyLockWaitArgs>;
  /**
   * PostgreSQL: takes a wait's entry out of the queue; answers `token`: the hold's, when the
   * entry was gone because the key was handed to `owner`, else 0 (an entry still queued was
   * handed nothing, whoever holds the key).
   */
  readonly leave?: KyselyLockStatement<KyselyLockOwnerArgs & KyselyLockEntryArgs>;
  /**
   * PostgreSQL: asks whether a queued wait was handed the key; when its entry is queued and the
   * hold has expired, first frees the row so the trigger serves the queue. An entry still queued
   * is renewed in place (its deadline set as `wait` sets it, with `left` ms left). Answers
   * `state`: 1 handed the key (`answer`: the token), 0 still queued (`answer`: the hold's
   * remaining ms, NULL when it never expires or there is none; `entry`: the renewed entry), -1
   * neither (woken, or past its deadline).
   */
  readonly check?: KyselyLockStatement<
    KyselyLockOwnerArgs &
      KyselyLockEntryArgs & {
        /** Ms left of the wait. */
        left: number;
      }
  >;
  /** Deletes rows free or expired for longer than `grace` ms. */
  readonly removeExpired: KyselyLockStatement<{
    /** How long, in ms, a row must have been free or expired. */
    grace: number;
  }>;
  /**
   * How release, forceRelease and refresh say they changed a hold: `count`, an affected row;
   * `token`, the answered `token` is not NULL (PostgreSQL); `insert-id`, a
   * `LAST_INSERT_ID(token)` set by the matched row.
   */
  readonly affected: "count" | "token" | "insert-id";
};

/** Longest key stored as it is, in UTF-8 bytes (the MySQL column's size); longer ones are hashed. */
export const KEY_MAX_BYTES = 255;

/** Rows dead for less than this stay, so a clock stepping back a little cannot reuse a token. */
export const DEAD_ROW_GRACE_MS = 60_000;

/** A named marker in a statement's text, `:key` (not the `::` of a cast). */
const MARKER = /(?<![:\w]):([a-z]+)\b/g;

/**
 * Writes a statement with named markers (`:key`) once and turns it into the dialect's
 * placeholders: `$1` (PostgreSQL, each name numbered once) or `?` (MySQL, SQLite: the value
 * repeated at every use).
 */
function statement<TArgs extends Record<string, unknown>>(
  dialect: KyselyLockDialect,
  text: string,
): KyselyLockStatement<TArgs> {
  const order: string[] = [];
  const sql = text
    .trim()
    .replace(/\s+/g, " ")
    .replace(MARKER, (_marker, name: string) => {
      if (dialect !== "postgres") {
        order.push(name);
        return "?";
      }
      const index = order.indexOf(name);
      if (index !== -1) {
        return `$${index + 1}`;
      }
      order.push(name);
      return `$${order.length}`;
    });
  return { sql, parameters: (args) => order.map((name) => args[name]) };
}

/** The condition "the row is held and its hold has not expired", on the row named by `row`. */
function liveHold(nowMs: string, row = ""): string {
  return `(${row}owner IS NOT NULL AND ${unexpired(nowMs, row)})`;
}

/** The condition "the row's hold, if any, has not expired" (NULL: it never expires). */
function unexpired(nowMs: string, row = ""): string {
  return `(${row}expires_at IS NULL OR ${row}expires_at > ${nowMs})`;
}

/**
 * The condition "the row `l` is free: released, or its hold expired" (an `expires_at` of NULL
 * compares as unknown, so a hold without TTL is never free).
 */
function free(nowMs: string): string {
  return `(l.owner IS NULL OR l.expires_at <= ${nowMs})`;
}

/** PostgreSQL's time in ms when the expression is evaluated (not when the statement began). */
const CLOCK_MS = "(date_part('epoch', clock_timestamp()) * 1000)::bigint";

export function postgresStatements(table: string): KyselyLockStatements {
  const t = `"${table}"`;
  // date_part is double precision (extract is numeric since PostgreSQL 14: slower), exact to
  // the µs here; statement_timestamp() is fixed for the whole statement.
  const nowUsExpression = "(date_part('epoch', statement_timestamp()) * 1000000)::bigint";
  // Each operation is a PL/pgSQL procedure of the table's own, run by one CALL. The procedure
  // plans its SQL once per connection, where the statement itself, sent unnamed (as Kysely
  // sends every query), would be parsed and planned at every call; and a CALL, unlike a SELECT
  // of a function, is not planned itself. Planning was most of the cost of an uncontended
  // acquire and release. The answer is the procedure's INOUT parameters (the CALL passes
  // NULLs): one row, NULL where the SQL found no row. In a body, the server's time is read
  // once, into now_us and now_ms.
  const nowUs = "now_us";
  const nowMs = "now_ms";
  const routines: Array<{ name: string; types: string; ddl: string }> = [];
  const routine = <TArgs extends Record<string, unknown>>(
    operation: string,
    params: ReadonlyArray<readonly [name: string, type: string]>,
    answers: string,
    body: string,
  ): KyselyLockStatement<TArgs> => {
    // "<table>:acquire": no name of the functions an earlier hasp made ("<table>_acquire"),
    // which a CALL would find ambiguous with these, so both can run on one table during an
    // upgrade. At most 62 characters: PostgreSQL keeps 63.
    const name = `"${table}:${operation}"`;
    const columns = answers.split(", ").map((answer) => answer.split(" ") as [string, string]);
    // The body's :markers become the parameters, named _key, ... (no column starts with _).
    // The answers are variables too: column names win over them in the body's SQL.
    routines.push({
      name,
      types: [...params, ...columns].map(([, type]) => type).join(", "),
      ddl: `CREATE OR REPLACE PROCEDURE ${name}(${[
        ...params.map(([param, type]) => `_${param} ${type}`),
        ...columns.map(([column, type]) => `INOUT ${column} ${type}`),
      ].join(", ")})
  LANGUAGE plpgsql AS $hasp$
#variable_conflict use_column
DECLARE
  now_us bigint := ${nowUsExpression};
  now_ms bigint := now_us / 1000;
BEGIN
  ${body.replace(MARKER, "_$1").replace(/\n/g, "\n  ")}
  INTO ${columns.map(([column]) => column).join(", ")};
END
$hasp$`,
    });
    return statement<TArgs>(
      "postgres",
      `CALL ${name}(${[
        ...params.map(([param, type]) => `:${param}::${type}`),
        ...columns.map(([, type]) => `NULL::${type}`),
      ].join(", ")})`,
    );
  };
  const row = "owner text, token bigint, remaining bigint";
  // The queue of blocking acquires lives in the row (`waiters`), and the release statement
  // serves it through a trigger: only an UPDATE that frees a hold with waiters queued runs it
  // (its WHEN is all an uncontended release pays). An entry is
  // "deadline_ms:ttl:inbox:wait_id:owner" (the owner last: it may hold ':'); ttl is "" for a
  // hold without TTL and "-" for a wait without a claim. An entry's deadline is renewed in place
  // by its wait's checks, however often the holder refreshes (a wait is known by the part after
  // the deadline, which never changes). The trigger skips entries past their deadline, wakes
  // waits without a claim, and gives the key to the first claim (new token, its TTL from now),
  // naming each wait on its adapter's channel ("wait_id"). NOTIFY is sent at commit, and needs
  // no privilege at all: a message is a wake-up, and the wait asks `check` what it was given.
  const handOff = `"${table}_hand_off"`;
  // The row `l` is taken (free or expired) or re-taken by its owner. In DO UPDATE SET every
  // expression reads the row as it was before the statement, and excluded.* is the row VALUES
  // proposed.
  const takes = `${free(nowMs)} OR l.owner = excluded.owner`;
  const upsert = (
    ttl: string,
    ...more: string[]
  ) => `INSERT INTO ${t} AS l (lock_key, owner, token, expires_at)
VALUES (:key, :owner, ${nowUs}, ${nowMs} + ${ttl})
ON CONFLICT (lock_key) DO UPDATE SET
  ${[
    `token = CASE WHEN ${free(nowMs)} THEN greatest(l.token + 1, ${nowUs}) ELSE l.token END`,
    `owner = CASE WHEN ${takes} THEN excluded.owner ELSE l.owner END`,
    `expires_at = CASE WHEN ${takes} THEN excluded.expires_at ELSE l.expires_at END`,
    ...more,
  ].join(",\n  ")}`;
  // A queue entry, "deadline_ms:ttl:inbox:wait_id:owner" (see the trigger).
  const entry = (deadline: string, owner: string) =>
    `(${deadline})::text || ':' || :ttl || ':' || :inbox || ':' || :id || ':' || ${owner}`;
  // A wait's entry in the row's queue as it is now: the one whose part after the deadline is
  // :entry's (a wait is known by that part, which never changes; its deadline is renewed in
  // place, so an entry the waiter has not heard of yet, a reply lost, is still its).
  const mine = `(SELECT w FROM unnest(waiters) AS w
    WHERE substr(w, strpos(w, ':')) = substr(:entry, strpos(:entry, ':')) LIMIT 1)`;
  // An entry's deadline: the wait's `left` ms, or the grace past the live hold of the row `l`
  // when that comes sooner (the waiter renews it by checking then).
  const lasts = (left: string, row = "") =>
    `CASE WHEN ${liveHold(nowMs, row)} AND ${row}expires_at IS NOT NULL
    THEN least(${nowMs} + ${left}, ${row}expires_at + ${ENTRY_GRACE_MS}) ELSE ${nowMs} + ${left} END`;
  const key = ["key", "text"] as const;
  const owner = ["owner", "text"] as const;
  const waitParams = [
    key,
    owner,
    ["ttl", "text"],
    ["wait", "bigint"],
    ["inbox", "text"],
    ["id", "text"],
  ] as const;
  const statements = {
    acquire: routine<KyselyLockTtlArgs>(
      "acquire",
      [key, owner, ["ttl", "bigint"]],
      row,
      // The remaining time is read on the clock of the moment the row was written: a statement
      // that waited for a concurrent acquire's insert began before that hold, so its now_ms
      // would report more than the holder's TTL left.
      `${upsert(":ttl")}
RETURNING owner, token,
  CASE WHEN expires_at IS NOT NULL THEN greatest(expires_at - ${CLOCK_MS}, 1) END`,
    ),
    release: routine<KyselyLockOwnerArgs>(
      "release",
      [key, owner],
      "token bigint",
      `UPDATE ${t} SET owner = NULL, expires_at = ${nowMs}
WHERE lock_key = :key AND owner = :owner AND ${unexpired(nowMs)}
RETURNING token`,
    ),
    forceRelease: routine<KyselyLockKeyArgs>(
      "force_release",
      [key],
      "token bigint",
      `UPDATE ${t} SET owner = NULL, expires_at = ${nowMs}
WHERE lock_key = :key AND ${liveHold(nowMs)}
RETURNING token`,
    ),
    refresh: routine<KyselyLockTtlArgs & { ttl: number }>(
      "refresh",
      [key, owner, ["ttl", "bigint"]],
      "token bigint",
      `UPDATE ${t} SET expires_at = ${nowMs} + :ttl
WHERE lock_key = :key AND owner = :owner AND expires_at > ${nowMs}
RETURNING token`,
    ),
    getState: routine<KyselyLockKeyArgs>(
      "get_state",
      [key],
      row,
      `SELECT owner, token, expires_at - ${nowMs} FROM ${t}
WHERE lock_key = :key AND ${liveHold(nowMs)}`,
    ),
    // The waiter listens on its inbox before it queues, so no release can miss it. The hold's
    // remaining time is -1 when it never expires.
    wait: routine<KyselyLockWaitArgs>(
      "wait",
      waitParams,
      "entry text, remaining bigint",
      `UPDATE ${t} SET waiters = array_append(waiters, ${entry(lasts(":wait"), ":owner")})
WHERE lock_key = :key AND ${liveHold(nowMs)}
RETURNING waiters[cardinality(waiters)], coalesce(expires_at - ${nowMs}, -1)`,
    ),
    // The acquire upsert, whose "held by another" branch appends the claim to the queue. The
    // claim's TTL is "" for a hold without one. A new token is at least the server's µs, a kept
    // one (the claim owner's own hold, re-taken) below them: that one is answered negated, so an
    // abort does not free what was held before.
    claim: routine<KyselyLockWaitArgs>(
      "claim",
      waitParams,
      `${row}, entry text`,
      `${upsert(
        "nullif(:ttl, '')::bigint",
        `waiters = CASE WHEN ${takes} THEN l.waiters ELSE array_append(l.waiters,
    ${entry(lasts(":wait", "l."), "excluded.owner")}) END`,
      )}
RETURNING owner, CASE WHEN owner = :owner AND token < ${nowUs} THEN -token ELSE token END,
  coalesce(expires_at - ${nowMs}, -1), CASE WHEN owner <> :owner THEN waiters[cardinality(waiters)] END`,
    ),
    // An entry still queued was handed nothing, even when its owner holds the key (through
    // another wait of the same owner, whose hold must stay).
    leave: routine<KyselyLockOwnerArgs & KyselyLockEntryArgs>(
      "leave",
      [key, owner, ["entry", "text"]],
      "token bigint",
      `UPDATE ${t} SET waiters = nullif(array_remove(waiters, ${mine}), '{}')
WHERE lock_key = :key AND ${mine} IS NOT NULL;
IF FOUND THEN
  token := 0;
  RETURN;
END IF;
SELECT CASE WHEN owner = :owner AND ${unexpired(nowMs)} THEN token ELSE 0 END FROM ${t}
WHERE lock_key = :key`,
    ),
    // A hold that expired with waits queued sends nothing: freeing it here runs the trigger,
    // which serves the queue oldest first, as a release would. A queued entry is renewed in
    // place; remaining is the holder's (-1: never expires; NULL: no hold), or the granted hold's.
    check: routine<KyselyLockOwnerArgs & KyselyLockEntryArgs & { left: number }>(
      "check",
      [key, owner, ["entry", "text"], ["left", "bigint"]],
      "state int, token bigint, remaining bigint, entry text",
      `UPDATE ${t} SET owner = NULL, expires_at = ${nowMs}
WHERE lock_key = :key AND owner IS NOT NULL AND expires_at <= ${nowMs} AND ${mine} IS NOT NULL;
UPDATE ${t} SET waiters[array_position(waiters, ${mine})] =
  (${lasts(":left")})::text || substr(:entry, strpos(:entry, ':'))
WHERE lock_key = :key AND ${mine} IS NOT NULL
RETURNING 0, NULL::bigint,
  CASE WHEN ${liveHold(nowMs)} THEN coalesce(expires_at - ${nowMs}, -1) END,
  (${lasts(":left")})::text || substr(:entry, strpos(:entry, ':'))
INTO state, token, remaining, entry;
IF FOUND THEN
  RETURN;
END IF;
SELECT CASE WHEN owner = :owner AND ${unexpired(nowMs)} THEN 1 ELSE -1 END,
  CASE WHEN owner = :owner AND ${unexpired(nowMs)} THEN token END,
  expires_at - ${nowMs}, NULL
FROM ${t} WHERE lock_key = :key`,
    ),
  };
  return {
    dialect: "postgres",
    createSchema: [
      // Concurrent CREATE TABLE IF NOT EXISTS can still collide in pg_type: the adapter runs
      // these under an advisory lock. No index beyond the key: every update then stays in its
      // page (a HOT update), and removeExpired, an occasional sweep, can scan.
      `CREATE TABLE IF NOT EXISTS ${t} (lock_key text PRIMARY KEY, owner text, token bigint NOT NULL, expires_at bigint, waiters text[])`,
      // A table made by hasp before the queue.
      `ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS waiters text[]`,
      `CREATE OR REPLACE FUNCTION ${handOff}() RETURNS trigger LANGUAGE plpgsql AS $hasp$
DECLARE
  now_us bigint := ${nowUsExpression};
  entry text;
  parts text[];
  position int := 0;
BEGIN
  -- A release (or forceRelease) of a key with waiters queued: entries are
  -- "deadline_ms:ttl:inbox:wait_id:owner", oldest first.
  FOREACH entry IN ARRAY NEW.waiters LOOP
    position := position + 1;
    parts := string_to_array(entry, ':');
    -- Its wait has ended (or its process died): skip it.
    CONTINUE WHEN parts[1]::bigint <= now_us / 1000;
    -- A wait without a claim: woken, the key stays free for now.
    IF parts[2] = '-' THEN
      PERFORM pg_notify(parts[3], parts[4]);
      CONTINUE;
    END IF;
    -- The first claim: the key is its hold, from now.
    NEW.owner := array_to_string(parts[5:], ':');
    NEW.token := greatest(OLD.token + 1, now_us);
    NEW.expires_at := now_us / 1000 + nullif(parts[2], '')::bigint;
    NEW.waiters := nullif(NEW.waiters[position + 1:], '{}');
    PERFORM pg_notify(parts[3], parts[4]);
    RETURN NEW;
  END LOOP;
  NEW.waiters := NULL;
  RETURN NEW;
END
$hasp$`,
      // Made once: a DROP and CREATE would lock the table at every init().
      `DO $hasp$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '${table}_hand_off' AND tgrelid = '${t}'::regclass) THEN
    CREATE TRIGGER ${handOff} BEFORE UPDATE ON ${t} FOR EACH ROW
      WHEN (NEW.owner IS NULL AND OLD.owner IS NOT NULL AND NEW.waiters IS NOT NULL)
      EXECUTE FUNCTION ${handOff}();
  END IF;
END $hasp$`,
      ...routines.map(({ ddl }) => ddl),
    ],
    dropSchema: [
      `DROP TABLE IF EXISTS ${t}`,
      `DROP FUNCTION IF EXISTS ${handOff}()`,
      ...routines.map(({ name, types }) => `DROP PROCEDURE IF EXISTS ${name}(${types})`),
    ],
    returning: true,
    affected: "token",
    ...statements,
    removeExpired: statement(
      "postgres",
      `DELETE FROM ${t} WHERE expires_at < ${nowUsExpression} / 1000 - :grace::bigint`,
    ),
  };
}

export function sqliteStatements(table: string): KyselyLockStatements {
  const t = `"${table}"`;
  // julianday('now') is fixed for the whole statement and exact to the millisecond.
  const nowMs = "CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";
  const nowUs = `(${nowMs} * 1000)`;
  const live = liveHold(nowMs);
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
    // In DO UPDATE SET every expression reads the row as it was before the statement, and
    // excluded.* is the row VALUES proposed: its token is the server time (ms x 1000), read once.
    acquire: s(`
      INSERT INTO ${t} AS l (lock_key, owner, token, expires_at)
      VALUES (:key, :owner, ${nowUs}, ${nowMs} + :ttl)
      ON CONFLICT (lock_key) DO UPDATE SET
        token = CASE WHEN ${free("excluded.token / 1000")}
          THEN max(l.token + 1, excluded.token) ELSE l.token END,
        owner = CASE WHEN ${free("excluded.token / 1000")} OR l.owner = excluded.owner
          THEN excluded.owner ELSE l.owner END,
        expires_at = CASE WHEN ${free("excluded.token / 1000")} OR l.owner = excluded.owner
          THEN excluded.expires_at ELSE l.expires_at END
      RETURNING owner, token, expires_at - ${nowMs} AS remaining`),
    release: s(`
      UPDATE ${t} SET owner = NULL, expires_at = ${nowMs}
      WHERE lock_key = :key AND owner = :owner AND ${unexpired(nowMs)}`),
    forceRelease: s(`
      UPDATE ${t} SET owner = NULL, expires_at = ${nowMs}
      WHERE lock_key = :key AND ${live}`),
    refresh: s(`
      UPDATE ${t} SET expires_at = ${nowMs} + :ttl
      WHERE lock_key = :key AND owner = :owner AND expires_at > ${nowMs}`),
    getState: s(`
      SELECT owner, token, expires_at - ${nowMs} AS remaining FROM ${t}
      WHERE lock_key = :key AND ${live}`),
    removeExpired: s(`DELETE FROM ${t} WHERE expires_at < ${nowMs} - :grace`),
  };
}

/**
 * MySQL and MariaDB. Keys and owners are VARBINARY: compared byte for byte, where the default
 * collations would make `A` and `a` (or `a` and `a `) one lock.
 *
 * @param returning MariaDB 10.5+ answers an upsert with `RETURNING`; MySQL cannot, so its
 *   acquire answers through `LAST_INSERT_ID(expr)` (the token, or 0 when not acquired).
 */
/** How the MySQL family's statements are run; see `KyselyLockAdapterSettings`. */
export type KyselyLockMysqlOptions = {
  /** The upsert answers with `RETURNING` (MariaDB 10.5+). */
  readonly returning: boolean;
  /** The operations run as prepared statements (MariaDB 10.2+: `EXECUTE ... USING` values). */
  readonly prepared: boolean;
};

export function mysqlStatements(
  table: string,
  { returning, prepared }: KyselyLockMysqlOptions,
): KyselyLockStatements {
  const t = `\`${table}\``;
  // @@timestamp is the statement's start as Unix seconds, a double with µs (what NOW() and
  // UTC_TIMESTAMP() read): fixed for the statement and free of the session's time zone, where
  // UNIX_TIMESTAMP of a local time would jump at a DST change. A double holds today's µs
  // exactly enough to round to the right one. It is cheaper than
  // TIMESTAMPDIFF(MICROSECOND, '1970-01-01', UTC_TIMESTAMP(6)), which parses that date each time.
  const nowUs = "CAST(@@timestamp * 1000000 AS SIGNED)";
  const nowMs = `(${nowUs} DIV 1000)`;
  const live = liveHold(nowMs);
  const heldByOther = `(owner <> :owner AND (expires_at IS NULL OR expires_at > ${nowMs}))`;
  const s = <TArgs extends Record<string, unknown>>(text: string) =>
    statement<TArgs>("mysql", text);
  // An operation's statement, prepared on each connection when `prepared`: sent as text, the
  // server parses the upsert and resolves its every expression at each call, which cost about
  // as much as running it.
  const operation = <TArgs extends Record<string, unknown>>(
    name: string,
    text: string,
  ): KyselyLockStatement<TArgs> => {
    const plain = s<TArgs>(text);
    if (!prepared) {
      return plain;
    }
    // The text's hash in the name: adapters on one pool whose SQL differs (other settings,
    // another hasp version) never run each other's statement.
    const digest = createHash("sha256").update(plain.sql).digest("hex").slice(0, 8);
    const quoted = `\`${table}:${name}:${digest}\``;
    const placeholders = plain.sql.split("?").length - 1;
    return {
      ...plain,
      prepared: {
        name: quoted,
        prepare: `PREPARE ${quoted} FROM ?`,
        execute: `EXECUTE ${quoted} USING ${Array(placeholders).fill("?").join(", ")}`,
      },
    };
  };
  return {
    dialect: "mysql",
    createSchema: [
      `CREATE TABLE IF NOT EXISTS ${t} (lock_key VARBINARY(${KEY_MAX_BYTES}) NOT NULL PRIMARY KEY, owner VARBINARY(1020) NULL, token BIGINT NOT NULL, expires_at BIGINT NULL) ENGINE=InnoDB`,
    ],
    dropSchema: [`DROP TABLE IF EXISTS ${t}`],
    returning,
    // The affected-row count depends on the connection's CLIENT_FOUND_ROWS flag (an UPDATE that
    // changes nothing counts as 1 with it, 0 without); LAST_INSERT_ID(expr) does not.
    affected: "insert-id",
    // ON DUPLICATE KEY UPDATE assigns left to right and later expressions see earlier
    // assignments: token and owner are decided from the old row, then expires_at follows owner
    // (it is ours exactly when we took the row). LAST_INSERT_ID carries the answer without
    // RETURNING: the token when acquired, 0 when another holds the key.
    acquire: operation(
      "acquire",
      `
      INSERT INTO ${t} (lock_key, owner, token, expires_at)
      VALUES (:key, :owner, LAST_INSERT_ID(${nowUs}), ${nowMs} + :ttl)
      ON DUPLICATE KEY UPDATE
        token = IF(${heldByOther}, token + LAST_INSERT_ID(0),
          LAST_INSERT_ID(IF(${live}, token, GREATEST(token + 1, ${nowUs})))),
        owner = IF(${heldByOther}, owner, :owner),
        expires_at = IF(owner = :owner, ${nowMs} + :ttl, expires_at)
      ${returning ? `RETURNING CONVERT(owner USING utf8mb4) AS owner, token, expires_at - ${nowMs} AS remaining` : ""}`,
    ),
    release: operation(
      "release",
      `
      UPDATE ${t} SET owner = NULL, expires_at = ${nowMs}, token = LAST_INSERT_ID(token)
      WHERE lock_key = :key AND owner = :owner AND ${live}`,
    ),
    forceRelease: operation(
      "force_release",
      `
      UPDATE ${t} SET owner = NULL, expires_at = ${nowMs}, token = LAST_INSERT_ID(token)
      WHERE lock_key = :key AND ${live}`,
    ),
    refresh: operation(
      "refresh",
      `
      UPDATE ${t} SET expires_at = ${nowMs} + :ttl, token = LAST_INSERT_ID(token)
      WHERE lock_key = :key AND owner = :owner AND expires_at > ${nowMs}`,
    ),
    getState: operation(
      "get_state",
      `
      SELECT CONVERT(owner USING utf8mb4) AS owner, token, expires_at - ${nowMs} AS remaining
      FROM ${t} WHERE lock_key = :key AND ${live}`,
    ),
    removeExpired: s(`DELETE FROM ${t} WHERE expires_at < ${nowMs} - :grace`),
  };
}
