// The shape of KyselySemaphoreAdapter's SQL. Each dialect's statements live in its folder
// (postgres/, mysql/, sqlite/), one statements object per dialect, chosen once in the adapter's
// constructor. Every operation is one statement in autocommit (acquire: a procedure's CALL on
// PostgreSQL and MySQL, an upsert with a trigger on SQLite).
//
// Tables (the name configurable, default "hasp_semaphores"):
//   "<table>"        one row per key: its fencing counter.
//     sem_key        the namespaced key (hashed when longer than KEY_MAX_BYTES)     primary key
//     token          the last fencing token issued for the key (kept when its slots go)
//   "<table>:slots"  one row per slot.
//     sem_key, slot_id                                                             primary key
//     token          the slot's fencing token
//     slot_limit     the limit the slot was acquired with (each slot keeps its own)
//     expires_at     server time in ms (NULL: never expires)
//
// A slot id is unique per key, not across keys. Acquire locks the key's row first (an upsert,
// so the first two acquirers of a new key meet on its primary key rather than both inserting),
// then drops the key's expired slots, then decides on what is left: every slot of a key is
// inserted under its key's row lock, so two acquirers never both count the same free slot.
// Release, refresh and forceReleaseAll only ever lower the count or move an expiry, and are
// single statements on the slots (on PostgreSQL, release and forceReleaseAll are procedures that
// lock the key's row first, as they serve its queue of waits). A new token is max(last + 1, server time in µs), so tokens grow
// across release, expiry and `removeExpired()`, which deletes a key's row only when it has no
// live slot and issued its last token over a minute ago (the clock has passed every old token).

import {
  liveSlot,
  type StatementWriter,
  slotStatements as sharedSlotStatements,
} from "../../../backends/kysely/slot-statements.js";
import type {
  SqlDialectName,
  SqlSchemaStatements,
  SqlStatement,
} from "../../../backends/kysely/sql-statement.js";

/** The arguments of a statement on one key. */
export type KyselySemaphoreKeyArgs = {
  /** The stored key (namespaced, hashed when too long). */
  key: string;
};

/** The arguments of a statement on one slot. */
export type KyselySemaphoreSlotArgs = KyselySemaphoreKeyArgs & {
  /** The slot id. */
  slot: string;
};

/** The arguments of `acquire`. */
export type KyselySemaphoreAcquireArgs = KyselySemaphoreSlotArgs & {
  /** The caller's limit. */
  limit: number;
  /** The TTL in ms; `null`: the slot never expires. */
  ttl: number | null;
};

/** The arguments of `refresh`. */
export type KyselySemaphoreRefreshArgs = KyselySemaphoreSlotArgs & {
  /** The new TTL in ms. */
  ttl: number;
};

/** The SQL of one dialect, as `KyselySemaphoreAdapter.statements()` shows it. */
export type KyselySemaphoreStatements = SqlSchemaStatements & {
  /** Which dialect the statements are written in. */
  readonly dialect: SqlDialectName;
  /**
   * Takes a slot when the limit rule allows it, or re-takes the caller's live slot (token and
   * limit kept, TTL restarted). Answers one row (MySQL: the first row of the first result set):
   * `granted`, the caller's token when it holds a slot now (NULL: refused); `lim`, the limit in
   * force (the smallest of the caller's and the live slots'); `taken`, the live slots;
   * `remaining`, ms until the soonest live slot expires (NULL: none expires).
   */
  readonly acquire: SqlStatement<KyselySemaphoreAcquireArgs>;
  /** Frees the caller's live slot; answers as `freed` says (1: freed). */
  readonly release: SqlStatement<KyselySemaphoreSlotArgs>;
  /** Frees every live slot of the key; answers as `freed` says (0: none was live). */
  readonly forceReleaseAll: SqlStatement<KyselySemaphoreKeyArgs>;
  /**
   * How release and forceReleaseAll say how many slots they freed: `count`, the affected-row
   * count; `row`, an answered `freed` (PostgreSQL's procedures, which also serve the queue).
   */
  readonly freed: "count" | "row";
  /** Restarts the TTL of the caller's live, expiring slot; answers as `refreshed` says. */
  readonly refresh: SqlStatement<KyselySemaphoreRefreshArgs>;
  /**
   * How `refresh` says it changed a slot: `count`, an affected row; `insert-id`, a
   * `LAST_INSERT_ID(token)` set by the matched row (MySQL, whose UPDATE count depends on the
   * connection's CLIENT_FOUND_ROWS flag).
   */
  readonly refreshed: "count" | "insert-id";
  /**
   * The live slots of the key: `taken` (0: none), `lim` (their smallest limit), and the asking
   * slot's `token` and `remaining` (ms; -1: never expires; both NULL when it holds none).
   */
  readonly getState: SqlStatement<KyselySemaphoreSlotArgs>;
  /**
   * Deletes the rows of keys without a live slot (nor, on PostgreSQL, a queued wait whose
   * deadline is to come) whose last token is older than `grace` ms, and their slots; answers the
   * affected-row count of the keys' table.
   */
  readonly removeExpired: SqlStatement<{
    /** How long, in ms, a key must have issued no token. */
    grace: number;
  }>;
};

/** How a dialect writes one operation's statement (MariaDB: prepared, under the operation's name). */
export type SemaphoreStatementWriter = StatementWriter;

export { liveSlot };

/**
 * The statements on the slots that read the same in every dialect but for its clock (`nowMs`,
 * the server's time in ms), on the slots' table `s` (quoted): MySQL and SQLite run all three;
 * PostgreSQL its getState (its release and forceReleaseAll are procedures that also serve the
 * queue).
 */
export function slotStatements(
  write: SemaphoreStatementWriter,
  s: string,
  nowMs: string,
): Pick<KyselySemaphoreStatements, "release" | "forceReleaseAll" | "getState"> {
  return sharedSlotStatements(write, s, nowMs, { key: "sem_key", id: "slot" });
}

/** The slots' table of `table`. */
export function slotsTable(table: string): string {
  return `${table}:slots`;
}
