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
