// The shape of KyselyLockAdapter's SQL, and the pieces every dialect writes it with. Each
// dialect's statements live in its folder (postgres/, mysql/, sqlite/), one statements object per
// dialect, chosen once in the adapter's constructor. Every operation is one statement in
// autocommit, so no transaction spans a round trip and a lost race is an answer, not an error.
//
// Table (name configurable):
//   lock_key    the namespaced key (hashed when longer than KEY_MAX_BYTES)   primary key
//   owner       the holder's lock id; NULL when free
//   token       the last fencing token issued for the key (kept when the key is freed)
//   expires_at  server time in ms: the hold's expiry (NULL: never expires); for a free row, when
//               it was freed, so `removeExpired` can tell how long it has been dead
//   waiters     PostgreSQL: the queue of blocking acquires, oldest first (see
//               postgres/postgres-lock-statements.ts)
//
// Time is always the server's, read once per statement by each dialect (its now in ms and µs).
// A new token is max(last token + 1, server time in µs), so tokens grow across release and
// expiry (the row keeps its token) and across the deletion of a dead row (the clock has passed
// every old token).

import type {
  SqlDialectName,
  SqlSchemaStatements,
  SqlStatement,
} from "../../../backends/kysely/sql-statement.js";

/** The SQL dialects the adapter speaks; MySQL covers MariaDB. */
export type KyselyLockDialect = SqlDialectName;

/** One statement: its text with the dialect's placeholders and how to order its parameters. */
export type KyselyLockStatement<TArgs extends Record<string, unknown>> = SqlStatement<TArgs>;

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
export type KyselyLockStatements = SqlSchemaStatements & {
  /** Which dialect the statements are written in. */
  readonly dialect: KyselyLockDialect;
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
   * PostgreSQL: takes a wait's entry out of the queue. An entry still queued was handed nothing,
   * whoever holds the key: `token` 0. One that is gone: with `mode` "keep" (the wait ran out),
   * `token` is `owner`'s live hold's (0: none); with "release" (an abort, close()), the hold is
   * freed (the trigger serving the queue) only when the hand-off gave it to this very wait, and
   * `token` is 0.
   */
  readonly leave?: KyselyLockStatement<
    KyselyLockOwnerArgs &
      KyselyLockEntryArgs & {
        /** "keep" (the wait ran out) or "release" (an abort, close()): see above. */
        mode: "keep" | "release";
      }
  >;
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

/** The condition "the row is held and its hold has not expired", on the row named by `row`. */
export function liveHold(nowMs: string, row = ""): string {
  return `(${row}owner IS NOT NULL AND ${unexpired(nowMs, row)})`;
}

/** The condition "the row's hold, if any, has not expired" (NULL: it never expires). */
export function unexpired(nowMs: string, row = ""): string {
  return `(${row}expires_at IS NULL OR ${row}expires_at > ${nowMs})`;
}

/**
 * The condition "the row `l` is free: released, or its hold expired" (an `expires_at` of NULL
 * compares as unknown, so a hold without TTL is never free).
 */
export function free(nowMs: string): string {
  return `(l.owner IS NULL OR l.expires_at <= ${nowMs})`;
}
