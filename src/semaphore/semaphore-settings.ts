import * as v from "valibot";
import { Namespace } from "../namespace/namespace.js";
import {
  codePoints,
  eventBusSchema,
  hasMethods,
  namespaceSchema,
  nonEmptyStoredStringSchema,
  ownerIdSchema,
  PRIMITIVE_DEFAULTS,
  serdesSchema,
  ttlSchema,
} from "../primitive/primitive-settings.js";
import { mustBe, settingsObject } from "../settings/parse-settings.js";
import {
  MAX_DURATION_MESSAGE,
  MAX_DURATION_MS,
  nonNegativeTimeSpanSchema,
  positiveTimeSpanSchema,
} from "../time-span/time-span-schema.js";
import type { ISemaphoreAdapter } from "./contracts/semaphore-adapter.js";
import type { SemaphoreEventMap } from "./contracts/semaphore-events.js";

export const SEMAPHORE_DEFAULTS = Object.freeze({
  ...PRIMITIVE_DEFAULTS,
  namespace: new Namespace(["hasp", "semaphore"]),
});

/**
 * The greatest limit: far beyond any sensible one (a slot is a holder doing work), and small
 * enough for every backend to count slots in a plain integer and scan them in one step.
 */
export const MAX_LIMIT = 1_000_000;

const ADAPTER_METHODS = ["acquire", "release", "forceReleaseAll", "refresh", "getState"] as const;

const adapterSchema = v.custom<ISemaphoreAdapter>(
  (value) => hasMethods(value, ADAPTER_METHODS),
  mustBe(`a semaphore adapter (with ${ADAPTER_METHODS.join(", ")})`),
);

export const limitSchema = v.pipe(
  v.number(mustBe("a number")),
  v.integer("must be a whole number"),
  v.minValue(1, "must be at least 1"),
  v.maxValue(MAX_LIMIT, `must be at most ${MAX_LIMIT}`),
);

export const semaphoreProviderSettingsSchema = settingsObject({
  adapter: adapterSchema,
  namespace: v.optional(namespaceSchema, SEMAPHORE_DEFAULTS.namespace),
  defaultTtl: v.optional(ttlSchema, SEMAPHORE_DEFAULTS.ttl),
  defaultBlockingTime: v.optional(nonNegativeTimeSpanSchema, SEMAPHORE_DEFAULTS.blockingTime),
  defaultBlockingInterval: v.optional(positiveTimeSpanSchema, SEMAPHORE_DEFAULTS.blockingInterval),
  serde: v.optional(serdesSchema),
  eventBus: v.optional(eventBusSchema<SemaphoreEventMap>()),
  providerId: v.optional(nonEmptyStoredStringSchema),
  defaultRefreshTime: v.optional(positiveTimeSpanSchema),
});

export const semaphoreCreateSettingsSchema = settingsObject({
  limit: limitSchema,
  ttl: v.optional(ttlSchema),
  slotId: v.optional(ownerIdSchema),
});

const HEX_128 = /^[0-9a-f]{32}$/;

/** The longest public id that still fits a 255-character credential with `.<proof>`. */
const MAX_PROVEN_ID_LENGTH = 255 - 33;

/** A generated slot's proof: 32 hex digits (what `randomOwnerHex` makes). */
const proofSchema = v.pipe(
  v.string(mustBe("a string")),
  v.regex(HEX_128, "must be 32 lowercase hex digits"),
);

/**
 * A serialized semaphore: no fencing token (a revived semaphore learns it from the store), and
 * a proof of the shape a generated slot's has.
 */
export const semaphoreSerializedSchema = v.pipe(
  settingsObject({
    providerId: nonEmptyStoredStringSchema,
    key: nonEmptyStoredStringSchema,
    id: ownerIdSchema,
    proof: v.nullable(proofSchema),
    limit: limitSchema,
    ttl: v.nullable(
      v.pipe(
        v.number(mustBe("a number or null")),
        v.gtValue(0, "must be positive"),
        v.maxValue(MAX_DURATION_MS, MAX_DURATION_MESSAGE),
      ),
    ),
  }),
  v.forward(
    v.check(
      (semaphore) => semaphore.proof === null || codePoints(semaphore.id) <= MAX_PROVEN_ID_LENGTH,
      `must be at most ${MAX_PROVEN_ID_LENGTH} characters when the semaphore has a proof`,
    ),
    ["id"],
  ),
);
