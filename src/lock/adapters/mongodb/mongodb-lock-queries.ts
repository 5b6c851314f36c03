// The queries of MongodbLockAdapter. Each operation is one command on one document, found by
// `_id` (the lock key), so the built-in unique `_id` index decides every race: an update of one
// document is atomic, and two upserts of a missing key cannot both insert.
//
// Document per lock key K (namespaced):
//   { _id: K, owner: string | null, token: long, expiresAt: Date | null }
//   owner      the lock id of the hold; null once released or force-released
//   token      the fencing token of the last hold; kept when the hold ends, so the next is above it
//   expiresAt  when the hold ends (null: never); the time of the release for a released one. The
//              TTL index (init, REAP_INDEX) deletes a document REAP_GRACE_SECONDS after this time.
//
// Every time is the server's (`$$NOW`); the client's clock is never read. A user-supplied string
// (the lock id) inside an update pipeline or an aggregation expression is wrapped in `$literal`:
// there a string starting with "$" would be read as a field path.

import type { Document } from "mongodb";
import { nextToken } from "../../../backends/mongodb/mongodb-collection.js";

/** A hold counts when it has an owner and has not expired by the server's clock. */
const LIVE = {
  $and: [
    { $eq: [{ $type: "$owner" }, "string"] },
    { $or: [{ $eq: ["$expiresAt", null] }, { $gt: ["$expiresAt", "$$NOW"] }] },
  ],
} as const;

/** A new hold's token: see nextToken (the last one stays in the document when a hold ends). */
const NEXT_TOKEN = nextToken("$token");

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
