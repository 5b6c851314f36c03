// The queries of MongodbSharedLockAdapter. Each operation is one command on one document, found
// by `_id` (the shared lock's key), so the built-in unique `_id` index decides every race: an
// update of one document is atomic, and two upserts of a missing key cannot both insert. Every
// pipeline first drops the expired writer, the expired reader slots and a lapsed intent
// (DROP_EXPIRED), so they never count in a decision.
//
// Document per key K (namespaced):
//   { _id: K, writer: { id, expiresAt } | null, slots: [{ id, limit, token, expiresAt }],
//     token: long, intent: { id, until } | null, expiresAt: Date | null }
//   writer     the writer's lock id and expiry (null: never); its token is `token`, since nothing
//              is issued while a writer is live
//   slots      the reader slots, as the semaphore's: holder, limit, token, expiry (null: never)
//   token      the last token issued for K, writers' and readers'; kept when holds end
//   intent     the waiting writer of a blocking acquire (polling), and its deadline
//   expiresAt  when the last hold or the intent ends (null: a hold never does); the time of the
//              last release once none is left. The TTL index (init) deletes the document
//              REAP_GRACE_SECONDS after it.
//
// Every time is the server's (`$$NOW`). A user-supplied string (a lock id) inside an update
// pipeline or an aggregation expression is wrapped in `$literal`: there a string starting with
// "$" would be read as a field path.

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

/** The writer while its hold is live (no expiry, or a later one); null otherwise. */
const LIVE_WRITER = {
  $cond: [
    {
      $or: [
        { $gt: ["$writer.expiresAt", "$$NOW"] },
        {
          $and: [{ $eq: [{ $type: "$writer" }, "object"] }, { $eq: ["$writer.expiresAt", null] }],
        },
      ],
    },
    "$writer",
    null,
  ],
} as const;

/** The intent while its deadline is ahead; null otherwise (missing, null or lapsed). */
const LIVE_INTENT = { $cond: [{ $gt: ["$intent.until", "$$NOW"] }, "$intent", null] } as const;

/** The stage that begins every update: expired holds and a lapsed intent gone. */
const DROP_EXPIRED = { $set: { slots: LIVE_SLOTS, writer: LIVE_WRITER, intent: LIVE_INTENT } };

/** The temporaries of the updates, unset by FINISH. */
const TEMPORARIES = ["holds", "outcome", "mine", "free"];

/**
 * The stages that end every update: the document's expiry from its holds and its intent (see
 * the layout above), temporaries gone.
 */
const FINISH = [
  {
    $set: {
      holds: {
        $concatArrays: [
          "$slots",
          { $cond: [{ $eq: ["$writer", null] }, [], ["$writer"]] },
          { $cond: [{ $eq: ["$intent", null] }, [], [{ expiresAt: "$intent.until" }]] },
        ],
      },
    },
  },
  { $set: { expiresAt: lastExpiry("$holds") } },
  { $unset: TEMPORARIES },
];

/** The value of the first `[condition, value]` whose condition holds, else `otherwise`. */
function firstOf(branches: Array<[unknown, unknown]>, otherwise: unknown): unknown {
  return branches.reduceRight<unknown>(
    (rest, [condition, value]) => ({ $cond: [condition, value, rest] }),
    otherwise,
  );
}

/** Whether the (live) writer is `lockId`. */
function writerIs(lockId: string): Document {
  return { $eq: ["$writer.id", { $literal: lockId }] };
}

/** Whether the (live) intent is `lockId`'s. */
function intentIs(lockId: string): Document {
  return { $eq: ["$intent.id", { $literal: lockId }] };
}

/** A one-document filter: the key. With `upsert` the inserted document gets this `_id`. */
export function byKey(key: string): Document {
  return { _id: key };
}

/**
 * The update of acquireWriter (findOneAndUpdate on {@link byKey}, upsert, returning the document
 * after it, projected by {@link writerProjection}). The outcome, in the contract's order:
 * - `lockId` is the live writer: its expiry restarts, its token stays;
 * - another live writer, or live readers (`lockId`'s own slot among them), or another lock id's
 *   live intent: refused; with `intentMs`, and no other lock id's intent live, `lockId` records
 *   (or renews) its intent until now + `intentMs`;
 * - else `lockId` takes the key with a new token, and its own intent is cleared.
 */
export function acquireWriterUpdate(
  lockId: string,
  ttlMs: number | null,
  intentMs: number | null,
): Document[] {
  const ownWriter = { id: { $literal: lockId }, expiresAt: expiryIn(ttlMs) };
  const otherIntent = { $and: [{ $ne: ["$intent", null] }, { $not: [intentIs(lockId)] }] };
  return [
    DROP_EXPIRED,
    {
      $set: {
        outcome: firstOf(
          [
            [writerIs(lockId), "mine"],
            [{ $ne: ["$writer", null] }, "writer"],
            [{ $gt: [{ $size: "$slots" }, 0] }, "readers"],
            [otherIntent, "waiters"],
          ],
          "taken",
        ),
      },
    },
    {
      $set: {
        token: { $cond: [{ $eq: ["$outcome", "taken"] }, NEXT_TOKEN, "$token"] },
        writer: { $cond: [{ $in: ["$outcome", ["mine", "taken"]] }, ownWriter, "$writer"] },
        intent: firstOf(
          [
            [{ $and: [{ $in: ["$outcome", ["mine", "taken"]] }, intentIs(lockId)] }, null],
            [
              {
                $and: [
                  intentMs !== null,
                  { $in: ["$outcome", ["writer", "readers"]] },
                  { $not: [otherIntent] },
                ],
              },
              { id: { $literal: lockId }, until: { $add: ["$$NOW", intentMs ?? 0] } },
            ],
          ],
          "$intent",
        ),
      },
    },
    ...FINISH,
  ];
}

/**
 * What acquireWriter returns, from the updated document (whose holds are all live): the writer
 * (`lockId` itself when it took or re-took the key, its token then being `token`), the reader
 * slots' count and soonest expiry, and the intent's remaining time.
 */
export function writerProjection(): Document {
  return {
    _id: 0,
    writerId: "$writer.id",
    token: "$token",
    writerMs: { $subtract: ["$writer.expiresAt", "$$NOW"] },
    count: { $size: "$slots" },
    readersMs: { $subtract: [{ $min: "$slots.expiresAt" }, "$$NOW"] },
    intentMs: { $subtract: ["$intent.until", "$$NOW"] },
  };
}

/**
 * The update of acquireReader (findOneAndUpdate on {@link byKey}, upsert, projected by
 * {@link readerProjection}). The outcome, in the contract's order:
 * - a live writer (`lockId` itself included): refused;
 * - `lockId` holds a live slot: its expiry restarts, its token and limit stay (whoever waits);
 * - a live intent (a writer waits): refused;
 * - fewer live slots than `limit` and than every live slot's limit: `lockId` takes a new slot
 *   with a new token;
 * - else refused (the limit). A refusal changes nothing but what expired.
 */
export function acquireReaderUpdate(
  lockId: string,
  limit: number,
  ttlMs: number | null,
): Document[] {
  const count = { $size: "$slots" };
  return [
    DROP_EXPIRED,
    {
      $set: {
        mine: { $in: [{ $literal: lockId }, "$slots.id"] },
        free: {
          $and: [
            { $eq: ["$writer", null] },
            { $eq: ["$intent", null] },
            { $lt: [count, limit] },
            { $lt: [count, { $ifNull: [{ $min: "$slots.limit" }, limit] }] },
          ],
        },
      },
    },
    { $set: { mine: { $and: [{ $eq: ["$writer", null] }, "$mine"] } } },
    {
      $set: {
        token: { $cond: [{ $and: [{ $not: ["$mine"] }, "$free"] }, NEXT_TOKEN, "$token"] },
        slots: firstOf(
          [
            ["$mine", restarted(lockId, ttlMs, "$slots")],
            [
              "$free",
              {
                $concatArrays: [
                  "$slots",
                  [
                    {
                      id: { $literal: lockId },
                      limit,
                      token: NEXT_TOKEN,
                      expiresAt: expiryIn(ttlMs),
                    },
                  ],
                ],
              },
            ],
          ],
          "$slots",
        ),
      },
    },
    ...FINISH,
  ];
}

/**
 * What acquireReader returns, from the updated document: `slotToken` only when `lockId` holds a
 * slot, the writer, the slots' count, smallest limit and soonest expiry, and the intent's
 * remaining time.
 */
export function readerProjection(lockId: string): Document {
  return {
    _id: 0,
    slotToken: {
      $arrayElemAt: [
        { $map: { input: slotsOf(lockId, "$slots"), as: "slot", in: "$$slot.token" } },
        0,
      ],
    },
    writerId: "$writer.id",
    writerMs: { $subtract: ["$writer.expiresAt", "$$NOW"] },
    count: { $size: "$slots" },
    limit: { $min: "$slots.limit" },
    readersMs: { $subtract: [{ $min: "$slots.expiresAt" }, "$$NOW"] },
    intentMs: { $subtract: ["$intent.until", "$$NOW"] },
  };
}

/**
 * What getState returns, from the live holds (expired ones left out, nothing written): the
 * writer, or the readers' count and smallest limit, `lockId`'s own slot, and whether a writer
 * waits.
 */
export function stateProjection(lockId: string): Document {
  return {
    _id: 0,
    state: {
      $let: {
        vars: { writer: LIVE_WRITER, live: LIVE_SLOTS, intent: LIVE_INTENT },
        in: {
          writerId: "$$writer.id",
          writerMs: { $subtract: ["$$writer.expiresAt", "$$NOW"] },
          token: "$token",
          count: { $size: "$$live" },
          limit: { $min: "$$live.limit" },
          slots: {
            $map: {
              input: slotsOf(lockId, "$$live"),
              as: "slot",
              in: {
                token: "$$slot.token",
                remainingMs: { $subtract: ["$$slot.expiresAt", "$$NOW"] },
              },
            },
          },
          writerWaiting: { $ne: ["$$intent", null] },
        },
      },
    },
  };
}

/** The key while `lockId` is its live writer (releaseWriter). */
export function liveWriterOf(key: string, lockId: string): Document {
  return {
    _id: key,
    $expr: {
      $eq: [{ $let: { vars: { writer: LIVE_WRITER }, in: "$$writer.id" } }, { $literal: lockId }],
    },
  };
}

/** The key while `lockId` is its live writer and its hold expires (refreshWriter). */
export function expiringWriterOf(key: string, lockId: string): Document {
  return {
    _id: key,
    $expr: { $and: [{ $gt: ["$writer.expiresAt", "$$NOW"] }, writerIs(lockId)] },
  };
}

/** The key while a writer of it is live (forceReleaseWriter). */
export function anyLiveWriter(key: string): Document {
  return { _id: key, $expr: { $ne: [LIVE_WRITER, null] } };
}

/** The key while anyone holds it: a live writer or a live reader slot (forceRelease). */
export function anyLiveHold(key: string): Document {
  return {
    _id: key,
    $expr: { $or: [{ $ne: [LIVE_WRITER, null] }, { $gt: [{ $size: LIVE_SLOTS }, 0] }] },
  };
}

/** The update of releaseWriter and forceReleaseWriter: no writer; the token stays. */
export function releaseWriterUpdate(): Document[] {
  return [DROP_EXPIRED, { $set: { writer: null } }, ...FINISH];
}

/** The update of refreshWriter: the (live, matched) writer's hold ends `ttlMs` from now. */
export function refreshWriterUpdate(ttlMs: number): Document[] {
  return [
    DROP_EXPIRED,
    { $set: { writer: { id: "$writer.id", expiresAt: expiryIn(ttlMs) } } },
    ...FINISH,
  ];
}

/** The update of releaseReader: `lockId`'s slot and the expired ones go; the token stays. */
export function releaseReaderUpdate(lockId: string): Document[] {
  return [
    DROP_EXPIRED,
    {
      $set: {
        slots: { $filter: { input: "$slots", as: "slot", cond: { $not: [isSlotOf(lockId)] } } },
      },
    },
    ...FINISH,
  ];
}

/** The update of refreshReader: `lockId`'s slot expires `ttlMs` from now. */
export function refreshReaderUpdate(lockId: string, ttlMs: number): Document[] {
  return [DROP_EXPIRED, { $set: { slots: restarted(lockId, ttlMs, "$slots") } }, ...FINISH];
}

/** The update of forceReleaseAllReaders: no slot left; the writer, intent and token stay. */
export function releaseAllReadersUpdate(): Document[] {
  return [DROP_EXPIRED, { $set: { slots: { $literal: [] } } }, ...FINISH];
}

/** The update of forceRelease: no writer, no slot; the intent (until its deadline) and token stay. */
export function releaseAllUpdate(): Document[] {
  return [DROP_EXPIRED, { $set: { slots: { $literal: [] }, writer: null } }, ...FINISH];
}
