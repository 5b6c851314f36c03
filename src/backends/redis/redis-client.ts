// What every primitive's Redis adapter does with the client it is given: the same constructor
// forms (`new XAdapter(client)` or `({ database: client, ... })`), the same check of the client,
// and the same conversions of durations to what PX, PEXPIRE and PTTL speak.

import type { Cluster, Redis } from "ioredis";
import * as v from "valibot";
import { mustBe } from "../../settings/parse-settings.js";
import { TimeSpan } from "../../time-span/time-span.js";
import { storeMilliseconds } from "../../time-span/time-span-schema.js";

/** A standalone, Sentinel or Cluster ioredis client. */
export type RedisClient = Redis | Cluster;

/** Whether `value` can run scripts as an ioredis client does (it has `defineCommand`). */
export function isRedisClient(value: unknown): value is RedisClient {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as RedisClient).defineCommand === "function"
  );
}

/** The `database` setting of every Redis adapter. */
export const redisClientSchema = v.custom<RedisClient>(
  isRedisClient,
  mustBe("an ioredis client (Redis or Cluster)"),
);

/** An adapter's settings as given: the client alone stands for `{ database: client }`. */
export function redisSettings<TSettings extends { database: RedisClient }>(
  settings: RedisClient | TSettings,
): TSettings | { database: RedisClient } {
  return isRedisClient(settings) ? { database: settings } : settings;
}

/** The Redis key of a primitive's key: the whole namespaced key is the hash tag. */
export function redisHashTag(key: string): string {
  return `{${key}}`;
}

/**
 * A TTL as the whole milliseconds `PX`/`PEXPIRE` take (at least 1: 0 is an error there), or
 * `undefined` above MAX_DURATION_MS (a number comparison: this is every acquire's path).
 */
export function toPx(ttl: TimeSpan): string | undefined {
  const ms = storeMilliseconds(ttl);
  return ms === undefined ? undefined : String(ms);
}

/** A PTTL as a remaining time: `null` when negative (-1: never expires). */
export function fromPttl(pttl: number): TimeSpan | null {
  return pttl < 0 ? null : TimeSpan.fromMilliseconds(pttl);
}
