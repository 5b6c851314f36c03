// Reading what a MongoDB command answered: the integers the driver hands over in several forms,
// and remaining times computed by the server.

import { HaspError } from "../../errors/hasp-error.js";
import { TimeSpan } from "../../time-span/time-span.js";
import { durationTooLong, storeMilliseconds } from "../../time-span/time-span-schema.js";

/** A BSON integer as the driver hands it over: a number, a bigint (`useBigInt64`) or a Long. */
export function toNumber(value: unknown): number {
  if (typeof value === "number") {
    return value;
  }
  if (typeof value === "bigint") {
    return Number(value);
  }
  if (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { toNumber?: unknown }).toNumber === "function"
  ) {
    return (value as { toNumber(): number }).toNumber();
  }
  throw new HaspError(`MongoDB: expected an integer, got ${String(value)}`);
}

/** Milliseconds the server computed (`$subtract` from `$$NOW`); null or missing: no expiry. */
export function toRemainingTime(remainingMs: unknown): TimeSpan | null {
  if (remainingMs === null || remainingMs === undefined) {
    return null;
  }
  return TimeSpan.fromMilliseconds(Math.max(0, toNumber(remainingMs)));
}

/**
 * A TTL in whole ms (at least 1), as the documents store it.
 *
 * @throws InvalidArgumentError above MAX_DURATION_MS (a TimeSpan passed directly).
 */
export function toTtlMs(adapterName: string, ttl: TimeSpan): number {
  const ms = storeMilliseconds(ttl);
  if (ms === undefined) {
    throw durationTooLong(adapterName, "ttl", ttl);
  }
  return ms;
}

/** Whether `error` is the server's duplicate key error (E11000). */
export function isDuplicateKeyError(error: unknown): boolean {
  return (
    typeof error === "object" && error !== null && (error as { code?: unknown }).code === 11000
  );
}

/**
 * Runs an upsert of one document by `_id`, once more when it fails with a duplicate key error.
 * Two upserts of a missing key: one inserts, the other hits the unique `_id` index. The server
 * retries such an upsert itself (the filter is the `_id` alone), but only so often; if the error
 * still arrives the document exists now, and running the command again answers from it as from
 * any existing key.
 */
export async function upsertRetryingDuplicateKey<T>(upsert: () => Promise<T>): Promise<T> {
  try {
    return await upsert();
  } catch (error) {
    if (isDuplicateKeyError(error)) {
      return upsert();
    }
    throw error;
  }
}
