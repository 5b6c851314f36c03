// The shape of KyselySharedLockAdapter's SQL. Each dialect's statements live in its folder
// (postgres/, mysql/, sqlite/), one statements object per dialect, chosen once in the adapter's
// constructor. Every operation is one statement in autocommit (a procedure's CALL on PostgreSQL
// and MySQL where it must decide, an upsert with triggers on SQLite).
//
// Tables (the name configurable, default "hasp_shared_locks"):
//   "<table>"          one row per key.
//     sl_key             the namespaced key (hashed when longer than KEY_MAX_BYTES)   primary key
//     token              the last fencing token issued for the key (writers' and readers'):
//                        while a writer is live, its token (nothing else is issued meanwhile)
//     writer_owner       the writer's lock id; NULL: no writer
//     writer_expires_at  server time in ms; NULL with an owner: never expires; for a freed or
//                        expired writer, whatever it was (only writer_owner says who holds)
//     intent_owner       the waiting writer on polling configurations (NULL: none)
//     intent_until       its deadline, server time in ms
//     (PostgreSQL also: waiters text[], the queue, as the semaphore's.)
//   "<table>:readers"  one row per reader slot: the semaphore's slot table layout
//     sl_key, slot_id                                                              primary key
//     token, slot_limit, expires_at (ms, NULL: never expires)
//
// Every operation first drops the key's expired readers and treats an expired writer as none,
// on the server's clock, so a crashed holder never counts. A new token, for either side, is
// max(last + 1, server time in µs). removeExpired() deletes a key's row only when it has no live
// writer, no live reader, no live intent (nor, on PostgreSQL, a queued wait whose deadline is to
// come) and issued its last token over `grace` ms ago.
//
// Answers: every column is named as below, so one adapter reads every dialect. A statement that
// answers a row answers exactly one (MySQL: the first row of the first result set of its CALL).

import type {
  SqlDialectName,
  SqlSchemaStatements,
  SqlStatement,
} from "../../../backends/kysely/sql-statement.js";

/** The arguments of a statement on one key. */
export type KyselySharedLockKeyArgs = {
  /** The stored key (namespaced, hashed when too long). */
  key: string;
};

/** The arguments of a statement on one lock id's hold (writer or reader slot). */
export type KyselySharedLockOwnerArgs = KyselySharedLockKeyArgs & {
  /** The lock id. */
  owner: string;
};

/** The arguments of `acquireWriter`. */
export type KyselySharedLockWriterArgs = KyselySharedLockOwnerArgs & {
  /** The TTL in ms; `null`: the hold never expires. */
  ttl: number | null;
  /**
   * How long, in ms, the caller's intent lasts when it is refused (recorded unless another lock
   * id's intent is live; the caller's own is renewed); `null`: record nothing.
   */
  intent: number | null;
};

/** The arguments of `acquireReader`. */
export type KyselySharedLockReaderArgs = KyselySharedLockOwnerArgs & {
  /** The caller's limit. */
  limit: number;
  /** The TTL in ms; `null`: the slot never expires. */
  ttl: number | null;
};

/** The arguments of `refreshWriter` and `refreshReader`. */
export type KyselySharedLockRefreshArgs = KyselySharedLockOwnerArgs & {
  /** The new TTL in ms. */
  ttl: number;
};

/**
 * How a release says it freed something: `count`, the affected-row count (> 0: freed); `row`, an
 * answered `freed` column (> 0: freed; a procedure's answer).
 */
export type KyselySharedLockFreed = "count" | "row";

/**
 * How a refresh says it changed a hold: `count`, an affected row; `insert-id`, a
 * `LAST_INSERT_ID(...)` set by the matched row (MySQL, whose UPDATE count depends on the
 * connection's CLIENT_FOUND_ROWS flag).
 */
export type KyselySharedLockRefreshed = "count" | "insert-id";

/** The SQL of one dialect, as `KyselySharedLockAdapter.statements()` shows it. */
export type KyselySharedLockStatements = SqlSchemaStatements & {
  /** Which dialect the statements are written in. */
  readonly dialect: SqlDialectName;
  /**
   * Takes the key as the caller's writer (or re-takes its live writer hold: token kept, TTL
   * restarted; clears the caller's intent on success), or refuses and, when `intent` is not
   * NULL, records or renews the caller's intent as `ISharedLockAdapter.acquireWriter` says.
   * Answers one row:
   * - `granted`: the caller's token when it holds the key now; NULL: refused;
   * - `blocked`: `'writer'`, `'readers'` or `'waiters'` (NULL when granted);
   * - `owner`: the live writer's lock id (with `'writer'`);
   * - `taken`: the live reader slots (with `'readers'`);
   * - `remaining`: ms until what blocks may end (the writer's expiry, the soonest reader expiry,
   *   the blocking intent's deadline); NULL: it never expires (or, for `'waiters'`, unknown).
   */
  readonly acquireWriter: SqlStatement<KyselySharedLockWriterArgs>;
  /**
   * Takes a reader slot under the limit rule while no writer is live and none waits (or re-takes
   * the caller's live slot whatever the count and the waiters: token and limit kept, TTL
   * restarted). Answers one row:
   * - `granted`: the caller's token when it holds a slot now; NULL: refused;
   * - `blocked`: `'writer'`, `'waiters'` or `'limit'` (NULL when granted);
   * - `owner`: the live writer's lock id (with `'writer'`);
   * - `lim`: the limit in force, the smallest of the caller's and the live slots' (with `'limit'`);
   * - `taken`: the live reader slots;
   * - `remaining`: ms, as `ISharedLockAdapter.acquireReader`'s refusal says; NULL: never.
   */
  readonly acquireReader: SqlStatement<KyselySharedLockReaderArgs>;
  /** Frees the caller's live writer hold (then serves the queue, where there is one). */
  readonly releaseWriter: SqlStatement<KyselySharedLockOwnerArgs>;
  /** Frees the key's live writer, whoever it is. Waits and intents stay. */
  readonly forceReleaseWriter: SqlStatement<KyselySharedLockKeyArgs>;
  /** Frees the caller's live reader slot (then serves the queue, where there is one). */
  readonly releaseReader: SqlStatement<KyselySharedLockOwnerArgs>;
  /** Frees every live reader slot of the key. Waits and intents stay. */
  readonly forceReleaseAllReaders: SqlStatement<KyselySharedLockKeyArgs>;
  /** Frees the live writer and every live reader slot. */
  readonly forceRelease: SqlStatement<KyselySharedLockKeyArgs>;
  /** How each release says it freed something (see `KyselySharedLockFreed`). */
  readonly freed: {
    /** How `releaseWriter` says it. */
    readonly releaseWriter: KyselySharedLockFreed;
    /** How `forceReleaseWriter` says it. */
    readonly forceReleaseWriter: KyselySharedLockFreed;
    /** How `releaseReader` says it. */
    readonly releaseReader: KyselySharedLockFreed;
    /** How `forceReleaseAllReaders` says it. */
    readonly forceReleaseAllReaders: KyselySharedLockFreed;
    /** How `forceRelease` says it (`count`: the writer and the readers freed, summed). */
    readonly forceRelease: KyselySharedLockFreed;
  };
  /** Restarts the TTL of the caller's live, expiring writer hold. */
  readonly refreshWriter: SqlStatement<KyselySharedLockRefreshArgs>;
  /** Restarts the TTL of the caller's live, expiring reader slot (also while a writer waits). */
  readonly refreshReader: SqlStatement<KyselySharedLockRefreshArgs>;
  /** How both refreshes say they changed a hold (see `KyselySharedLockRefreshed`). */
  readonly refreshed: KyselySharedLockRefreshed;
  /**
   * The key as the caller sees it. Answers one row (none, or all NULL/0, when the key has no
   * row):
   * - `writer`: the live writer's lock id (NULL: none); `wtoken`: its token; `wremaining`: its
   *   ms left (-1: never expires);
   * - `taken`: the live reader slots (0: none); `lim`: their smallest limit;
   * - `token`, `remaining`: the caller's live slot's token and ms left (-1: never expires;
   *   both NULL when it holds none);
   * - `waiting`: 1 when a writer waits (a live intent, or a live writer claim queued), else 0.
   */
  readonly getState: SqlStatement<KyselySharedLockOwnerArgs>;
  /**
   * Deletes the rows of dead keys (see the header) and their reader slots; answers the
   * affected-row count of the keys' table.
   */
  readonly removeExpired: SqlStatement<{
    /** How long, in ms, a key must have issued no token. */
    grace: number;
  }>;
};

/** The reader slots' table of `table`. */
export function readersTable(table: string): string {
  return `${table}:readers`;
}

/** The condition "the row's writer is live" at `now` (ms), on the key row `row` (`"k."`). */
export function liveWriter(now: string, row = ""): string {
  return `(${row}writer_owner IS NOT NULL AND (${row}writer_expires_at IS NULL OR ${row}writer_expires_at > ${now}))`;
}

/** The condition "the row's intent is live" at `now` (ms), on the key row `row` (`"k."`). */
export function liveIntent(now: string, row = ""): string {
  return `(${row}intent_owner IS NOT NULL AND ${row}intent_until > ${now})`;
}
