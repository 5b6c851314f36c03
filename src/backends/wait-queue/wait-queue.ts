// What a backend that queues waits (Redis, PostgreSQL) gives the shared queued wait: the queue
// of one wait's key, as its backend keeps it (its entries: wait-entry.ts); and what a wait
// claims and is handed, for every primitive (a lock's hold, a semaphore's slot).

import type { TimeSpan } from "../../time-span/time-span.js";

/** Who waits: the hold a release hands the waiter, when its wait is first in the queue. */
export type WaitClaim = {
  /** The waiter's holder id (a lock id, a slot id). */
  readonly owner: string;
  /** The TTL of that hold, counted from the hand-off; `null`: it never expires. */
  readonly ttl: TimeSpan | null;
  /**
   * The claim's limit, for a primitive with several holders (a semaphore), applied as its
   * acquire applies it; absent: one holder at a time (the lock).
   */
  readonly limit?: number;
};

/** What a wait resolves to when a release handed its claim the hold. */
export type WaitHandOff = {
  /** The claim's owner now holds it. */
  readonly acquired: true;
  /** The new hold's token, as an acquire would have issued it. */
  readonly fencingToken: number;
  /** How long the hold has left as the wait resolves, on the safe side (absent: unknown). */
  readonly remainingTime?: TimeSpan;
};

/**
 * What ending a wait does with its entry:
 * - `keep`: the wait ran out (or its client ended): remove the entry; a key handed to the
 *   claim meanwhile stays the waiter's (its token is answered);
 * - `release`: the wait was aborted (or its adapter closed): remove the entry; a key handed to
 *   the claim meanwhile is released (to the next wait).
 * Either way, a key is the claim's only when this wait's own entry is gone from the queue: a
 * second wait of the same owner, still queued, never answers (nor frees) the first one's hold.
 */
export type LeaveMode = "keep" | "release";

/** A wait in its key's queue: its entry (to leave with), and when to check on the holder. */
export type QueueEntry = {
  readonly entry: string;
  /**
   * Ms from now until the holder's hold expires (`Infinity`: it never does; absent: no hold):
   * the wait checks then, since an expiry sends no message.
   */
  readonly holderLeftMs?: number;
};

/** What the backend says of a queued wait. */
export type WaitCheck =
  /**
   * The key was handed to the claim, with this token; the hold has `remainingMs` left by the
   * backend's clock when it answered (absent: it never expires).
   */
  | { readonly state: "granted"; readonly fencingToken: number; readonly remainingMs?: number }
  /**
   * Still queued, as `entry` now (renewed: its deadline counts from this check); the holder's
   * hold expires in `holderLeftMs` (absent: never, or no hold).
   */
  | { readonly state: "queued"; readonly entry: string; readonly holderLeftMs?: number }
  /** No longer queued and not handed the key: woken (a wait without a claim), or lost. */
  | { readonly state: "gone" };

/**
 * A grant told by the release's own message, in a form only the backend's release can make (the
 * backend's adapter checked it): the wait believes it without asking.
 */
export type HeardGrant = {
  /** The new hold's token. */
  readonly fencingToken: number;
  /** When the hold began, in ms of the backend's clock. */
  readonly startedAtMs: number;
};

/** The queue of one wait's key, as its backend keeps it. */
export type WaitQueue = {
  /**
   * Queues the wait, named `waitId` in its messages, with a deadline `maxWaitMs` from now on the
   * backend's clock, or a short grace past the holder's expiry when that comes sooner (the wait
   * renews it by checking then: a waiter that died does not keep its place for long). Answers
   * the entry; or a token (> 0) when the key was free and taken for the claim; or a token negated
   * (< 0) when the key was the claim owner's own live hold, re-taken (TTL restarted); or 0 when
   * the key was free and the waiter should try it.
   */
  join(maxWaitMs: number, waitId: string): Promise<number | QueueEntry>;
  /** Ends the wait (see {@link LeaveMode}): the claim's token if it keeps the key, else 0. */
  leave(entry: string, mode: LeaveMode): Promise<number>;
  /**
   * Asks whether the wait was handed the key. With `serve` (the check at the holder's expiry,
   * which the wait's own clock says has come), a hold found gone is taken as expired: the queue
   * is served first (oldest first), as a release would serve it. A queued entry stays where it
   * is, renewed as `join` would set it with `leftMs` left.
   */
  check(entry: string, leftMs: number, serve: boolean): Promise<WaitCheck>;
  /** Releases a key taken for the claim (by `join`) of a wait aborted meanwhile. */
  giveBack(): Promise<unknown>;
  /**
   * Optional: the hand-off a {@link HeardGrant} makes, with the hold's time left now on the safe
   * side, once `join` answered an entry. Without it, a wait asks `check` on every message.
   */
  granted?(grant: HeardGrant): Extract<WaitCheck, { state: "granted" }>;
};
