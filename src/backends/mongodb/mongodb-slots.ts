// The slot fragments of the MongoDB semaphore and shared lock adapters: a document per key keeps
// its slots in an array `slots` of `{ id, limit, token, expiresAt }` (expiresAt null: never) and
// its last token in `token`. Every time is the server's `$$NOW`.

import type { Document } from "mongodb";
import { nextToken } from "./mongodb-collection.js";

/** The unexpired slots of the document (none when it has no `slots` yet: a fresh upsert). */
export const LIVE_SLOTS = {
  $filter: {
    input: { $ifNull: ["$slots", []] },
    as: "slot",
    cond: { $or: [{ $eq: ["$$slot.expiresAt", null] }, { $gt: ["$$slot.expiresAt", "$$NOW"] }] },
  },
} as const;

/** A new hold's (and the document's last) token, from the last one issued for the key. */
export const NEXT_TOKEN = nextToken("$token");

/**
 * The document's `expiresAt` from its live holds, `holds` being the field path of an array of
 * `{ expiresAt }` (`"$slots"`): when the last of them ends (null: one never does); `$$NOW` once
 * none is left (the time of the last release). The TTL index deletes the document after it.
 */
export function lastExpiry(holds: `$${string}`): Document {
  const expiries = `${holds}.expiresAt`;
  return {
    $cond: [
      { $eq: [{ $size: holds }, 0] },
      "$$NOW",
      { $cond: [{ $in: [null, expiries] }, null, { $max: expiries }] },
    ],
  };
}

/** Whether `$$slot` is `slotId`'s. */
export function isSlotOf(slotId: string): Document {
  return { $eq: ["$$slot.id", { $literal: slotId }] };
}

/** The slots of `slots` (an expression) that `slotId` holds: none or one. */
export function slotsOf(slotId: string, slots: unknown): Document {
  return { $filter: { input: slots, as: "slot", cond: isSlotOf(slotId) } };
}

/** An expiry `ttlMs` from now; null: never. */
export function expiryIn(ttlMs: number | null): Document | null {
  return ttlMs === null ? null : { $add: ["$$NOW", ttlMs] };
}

/** `slots` (the field path of the live slots) with `slotId`'s slot expiring anew. */
export function restarted(slotId: string, ttlMs: number | null, slots: `$${string}`): Document {
  return {
    $map: {
      input: slots,
      as: "slot",
      in: {
        $cond: [
          isSlotOf(slotId),
          {
            id: "$$slot.id",
            limit: "$$slot.limit",
            token: "$$slot.token",
            expiresAt: expiryIn(ttlMs),
          },
          "$$slot",
        ],
      },
    },
  };
}

/** The key while `slotId` holds a live slot of it (release). */
export function liveSlotOf(key: string, slotId: string): Document {
  return {
    _id: key,
    $expr: {
      $in: [{ $literal: slotId }, { $map: { input: LIVE_SLOTS, as: "slot", in: "$$slot.id" } }],
    },
  };
}

/** The key while `slotId` holds a live slot of it that expires (refresh). */
export function expiringSlotOf(key: string, slotId: string): Document {
  const expiring = {
    $filter: {
      input: { $ifNull: ["$slots", []] },
      as: "slot",
      cond: { $gt: ["$$slot.expiresAt", "$$NOW"] },
    },
  };
  return {
    _id: key,
    $expr: {
      $in: [{ $literal: slotId }, { $map: { input: expiring, as: "slot", in: "$$slot.id" } }],
    },
  };
}

/** The key while any slot of it is live (forceReleaseAll). */
export function anyLiveSlot(key: string): Document {
  return { _id: key, $expr: { $gt: [{ $size: LIVE_SLOTS }, 0] } };
}
