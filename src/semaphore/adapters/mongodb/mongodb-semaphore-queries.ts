// The queries of MongodbSemaphoreAdapter. Each operation is one command on one document, found
// by `_id` (the semaphore key), so the built-in unique `_id` index decides every race: an update
// of one document is atomic, and two upserts of a missing key cannot both insert. Every pipeline
// first drops the expired slots (LIVE_SLOTS), so they never count in a decision.
//
// Document per semaphore key K (namespaced):
//   { _id: K, slots: [{ id, limit, token, expiresAt }], token: long, expiresAt: Date | null }
//   slots      the slots taken, each with its holder's slot id, the limit it was taken with, its
//              fencing token and its expiry (null: never); expired ones linger until the next write
//   token      the last token issued for K; kept when slots end, so the next is above it
//   expiresAt  when the last slot ends (null: one never does); the time of the last release once
//              none is left. The TTL index (init) deletes a document REAP_GRACE_SECONDS after it.
//
// Every time is the server's (`$$NOW`); the client's clock is never read. A user-supplied string
// (the slot id) inside an update pipeline or an aggregation expression is wrapped in `$literal`:
// there a string starting with "$" would be read as a field path.

import type { Document } from "mongodb";
import {
  expiryIn,
  isSlotOf,
  LIVE_SLOTS,
  lastExpiry,
  NEXT_TOKEN,
  restarted,
  slotsOf,
} from "../../../backends/mongodb/mongodb-slots.js";

export {
  anyLiveSlot,
  expiringSlotOf,
  liveSlotOf,
} from "../../../backends/mongodb/mongodb-slots.js";

/** The document's `expiresAt` from its (live) `slots`: see the layout above. */
const LAST_EXPIRY = lastExpiry("$slots");

/** The stage that ends every update: the document's expiry from its slots, temporaries gone. */
const FINISH = [
  { $set: { expiresAt: LAST_EXPIRY } },
  { $unset: ["live", "mine", "free", "taken"] },
];

/** A one-document filter: the key. With `upsert` the inserted document gets this `_id`. */
export function byKey(key: string): Document {
  return { _id: key };
}

/**
 * The update of acquire (findOneAndUpdate on {@link byKey}, upsert, returning the document after
 * the update, projected by {@link acquireProjection}). One pipeline for every case:
 * - `slotId` holds a live slot: its expiry restarts; its token and limit stay;
 * - else, fewer live slots than `limit` and than every live slot's limit: `slotId` takes a new
 *   slot with a new token;
 * - else nothing but the expired slots changes.
 */
export function acquireUpdate(slotId: string, limit: number, ttlMs: number | null): Document[] {
  const count = { $size: "$live" };
  return [
    { $set: { live: LIVE_SLOTS } },
    {
      $set: {
        mine: { $in: [{ $literal: slotId }, "$live.id"] },
        free: {
          $and: [
            { $lt: [count, limit] },
            { $lt: [count, { $ifNull: [{ $min: "$live.limit" }, limit] }] },
          ],
        },
      },
    },
    { $set: { taken: { $and: [{ $not: ["$mine"] }, "$free"] } } },
    {
      $set: {
        token: { $cond: ["$taken", NEXT_TOKEN, "$token"] },
        slots: {
          $cond: [
            "$mine",
            restarted(slotId, ttlMs, "$live"),
            {
              $cond: [
                "$taken",
                {
                  $concatArrays: [
                    "$live",
                    [
                      {
                        id: { $literal: slotId },
                        limit,
                        token: NEXT_TOKEN,
                        expiresAt: expiryIn(ttlMs),
                      },
                    ],
                  ],
                },
                "$live",
              ],
            },
          ],
        },
      },
    },
    ...FINISH,
  ];
}

/**
 * What acquire returns, from the updated document (whose slots are all live): `slotToken` only
 * when `slotId` holds a slot, the count, the smallest limit and the soonest expiry.
 */
export function acquireProjection(slotId: string): Document {
  return {
    _id: 0,
    slotToken: {
      $arrayElemAt: [
        { $map: { input: slotsOf(slotId, "$slots"), as: "slot", in: "$$slot.token" } },
        0,
      ],
    },
    count: { $size: "$slots" },
    limit: { $min: "$slots.limit" },
    remainingMs: { $subtract: [{ $min: "$slots.expiresAt" }, "$$NOW"] },
  };
}

/**
 * What getState returns: the live slots' count and smallest limit, and `slotId`'s own slot
 * (`token`, `remainingMs`) when it holds one. Expired slots are left out, not written.
 */
export function stateProjection(slotId: string): Document {
  return {
    _id: 0,
    state: {
      $let: {
        vars: { live: LIVE_SLOTS },
        in: {
          count: { $size: "$$live" },
          limit: { $min: "$$live.limit" },
          slots: {
            $map: {
              input: slotsOf(slotId, "$$live"),
              as: "slot",
              in: {
                token: "$$slot.token",
                remainingMs: { $subtract: ["$$slot.expiresAt", "$$NOW"] },
              },
            },
          },
        },
      },
    },
  };
}

/**
 * The update of release: `slotId`'s slot and the expired ones go. The document stays, with its
 * token, so the next slot's token is above it; the TTL index deletes it later.
 */
export function releaseUpdate(slotId: string): Document[] {
  return [
    {
      $set: {
        slots: { $filter: { input: LIVE_SLOTS, as: "slot", cond: { $not: [isSlotOf(slotId)] } } },
      },
    },
    ...FINISH,
  ];
}

/** The update of forceReleaseAll: no slot left, the token kept. */
export function releaseAllUpdate(): Document[] {
  return [{ $set: { slots: { $literal: [] } } }, ...FINISH];
}

/** The update of refresh: `slotId`'s slot expires `ttlMs` from now; the expired ones go. */
export function refreshUpdate(slotId: string, ttlMs: number): Document[] {
  return [
    { $set: { live: LIVE_SLOTS } },
    { $set: { slots: restarted(slotId, ttlMs, "$live") } },
    ...FINISH,
  ];
}
