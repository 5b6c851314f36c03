// The queries of MongodbLockAdapter. Each operation is one command on one document, found by
// `_id` (the lock key), so the built-in unique `_id` index decides every race: an update of one
// document is atomic, and two upserts of a missing key cannot both insert.
//
// Document per lock key K (namespaced):
//   { _id: K, owner: string | null, token: long, expiresAt: Date | null }
//   owner      the lock id of the hold; null once released or force-released
//   token      the fencing token of the last hold; kept when the hold ends, so the next is above it
//   expiresAt  when the hold ends (null: never); the time of the release for a released one. The
//              TTL index (init) deletes a document REAP_GRACE_SECONDS after this time.
//
// Every time is the server's (`$$NOW`); the client's clock is never read. A user-supplied string
// (the lock id) inside an update pipeline or an aggregation expression is wrapped in `$literal`:
// there a string starting with "$" would be read as a field path.

import type { Document } from "mongodb";

/** How long a dead document (released, or its hold expired) stays before the TTL index deletes it. */
export const REAP_GRACE_SECONDS = 60;

/** A hold counts when it has an owner and has not expired by the server's clock. */
const LIVE = {
  $and: [
    { $eq: [{ $type: "$owner" }, "string"] },
    { $or: [{ $eq: ["$expiresAt", null] }, { $gt: ["$expiresAt", "$$NOW"] }] },
  ],
} as const;

/**
 * A new hold's token: max(last token + 1, server time in µs). The last token is kept in the
 * document, and when the TTL index deleted it (at least REAP_GRACE_SECONDS after the hold ended)
 * the server's clock has moved far past it.
 */
const NEXT_TOKEN = {
  $max: [{ $add: [{ $ifNull: ["$token", 0] }, 1] }, { $multiply: [{ $toLong: "$$NOW" }, 1000] }],
} as const;

/** What acquire and getState return: the holder, its token and its remaining ms (server clock). */
export const HOLD_PROJECTION = {
  _id: 0,
  owner: 1,
  token: 1,
  remainingMs: { $subtract: ["$expiresAt", "$$NOW"] },
} as const;

/** A one-document filter: the key. With `upsert` the inserted document gets this `_id`. */
export function byKey(key: string): Document {
  return { _id: key };
}

/**
 * The update of acquire (findOneAndUpdate on {@link byKey}, upsert, returning the document after
 * the update). One pipeline for all cases, so the answer always holds the holder's fields:
 * - free, expired or missing: `lockId` takes it with a new token and expiry;
 * - live and `lockId`'s own: the token stays, the expiry restarts;
 * - live and someone else's: every field stays as it is (a no-op write).
 */
export function acquireUpdate(lockId: string, ttlMs: number | null): Document[] {
  const owner = { $literal: lockId };
  const heldByOther = { $and: [LIVE, { $ne: ["$owner", owner] }] };
  return [
    {
      $set: {
        owner: { $cond: [LIVE, "$owner", owner] },
        token: { $cond: [LIVE, "$token", NEXT_TOKEN] },
        expiresAt: {
          $cond: [heldByOther, "$expiresAt", ttlMs === null ? null : { $add: ["$$NOW", ttlMs] }],
        },
      },
    },
  ];
}

/** The live hold of `key`, whoever holds it (getState, forceRelease). */
export function liveHoldOf(key: string): Document {
  return { _id: key, $expr: LIVE };
}

/** The live hold of `key` by `lockId` (release). */
export function liveHoldOfOwner(key: string, lockId: string): Document {
  return { _id: key, owner: lockId, $expr: LIVE };
}

/** `lockId`'s live hold of `key` that expires (refresh: a never-expiring one is left alone). */
export function expiringHoldOfOwner(key: string, lockId: string): Document {
  return { _id: key, owner: lockId, $expr: { $gt: ["$expiresAt", "$$NOW"] } };
}

/**
 * The update of release and forceRelease: no owner, dead from now on. The document stays, with
 * its token, so the next hold's token is above it; the TTL index deletes it later.
 */
export function releaseUpdate(): Document[] {
  return [{ $set: { owner: null, expiresAt: "$$NOW" } }];
}

/** The update of refresh: a new expiry from now. */
export function refreshUpdate(ttlMs: number): Document[] {
  return [{ $set: { expiresAt: { $add: ["$$NOW", ttlMs] } } }];
}

/** The TTL index that deletes dead documents (see {@link REAP_GRACE_SECONDS}). */
export const REAP_INDEX = {
  keys: { expiresAt: 1 },
  options: { expireAfterSeconds: REAP_GRACE_SECONDS },
} as const;
