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
  storedStringSchema,
  ttlSchema,
} from "../primitive/primitive-settings.js";
import { mustBe, settingsObject } from "../settings/parse-settings.js";
import {
  MAX_DURATION_MESSAGE,
  MAX_DURATION_MS,
  nonNegativeTimeSpanSchema,
  positiveTimeSpanSchema,
} from "../time-span/time-span-schema.js";
import type { LockIdFactory } from "./contracts/lock.js";
import type { ILockAdapter } from "./contracts/lock-adapter.js";
import type { LockEventMap } from "./contracts/lock-events.js";

export const LOCK_DEFAULTS = Object.freeze({
  ...PRIMITIVE_DEFAULTS,
  namespace: new Namespace(["hasp", "lock"]),
});

const ADAPTER_METHODS = ["acquire", "release", "forceRelease", "refresh", "getState"] as const;

const adapterSchema = v.custom<ILockAdapter>(
  (value) => hasMethods(value, ADAPTER_METHODS),
  mustBe(`a lock adapter (with ${ADAPTER_METHODS.join(", ")})`),
);

/** daiso-core's `Invokable<[], string>`: a function, or an object with `invoke()`. */
const lockIdFactorySchema = v.custom<LockIdFactory>(
  (value) =>
    typeof value === "function" ||
    (typeof value === "object" &&
      value !== null &&
      typeof (value as { invoke?: unknown }).invoke === "function"),
  mustBe("a function, or an object with invoke(), returning a string"),
);

const lockIdSchema = ownerIdSchema;

export const lockProviderSettingsSchema = settingsObject({
  adapter: adapterSchema,
  namespace: v.optional(namespaceSchema, LOCK_DEFAULTS.namespace),
  defaultTtl: v.optional(ttlSchema, LOCK_DEFAULTS.ttl),
  defaultBlockingTime: v.optional(nonNegativeTimeSpanSchema, LOCK_DEFAULTS.blockingTime),
  defaultBlockingInterval: v.optional(positiveTimeSpanSchema, LOCK_DEFAULTS.blockingInterval),
  serde: v.optional(serdesSchema),
  eventBus: v.optional(eventBusSchema<LockEventMap>()),
  providerId: v.optional(nonEmptyStoredStringSchema),
  createLockId: v.optional(lockIdFactorySchema),
  defaultRefreshTime: v.optional(positiveTimeSpanSchema),
  serdeTransformerName: v.optional(storedStringSchema),
});

export const lockCreateSettingsSchema = settingsObject({
  ttl: v.optional(ttlSchema),
  lockId: v.optional(lockIdSchema),
});

const HEX_128 = /^[0-9a-f]{32}$/;

/** The longest public id that still fits a 255-character credential with `.<proof>`. */
export const MAX_PROVEN_ID_LENGTH = 255 - 33;

/**
 * A serialized lock: no fencing token (a revived lock learns it from the store), and a proof of
 * the shape a generated lock's has.
 */
export const lockSerializedSchema = v.pipe(
  settingsObject({
    providerId: nonEmptyStoredStringSchema,
    key: nonEmptyStoredStringSchema,
    id: lockIdSchema,
    proof: v.nullable(
      v.pipe(
        v.string(mustBe("a string or null")),
        v.regex(HEX_128, "must be 32 lowercase hex digits"),
      ),
    ),
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
      (lock) => lock.proof === null || codePoints(lock.id) <= MAX_PROVEN_ID_LENGTH,
      `must be at most ${MAX_PROVEN_ID_LENGTH} characters when the lock has a proof`,
    ),
    ["id"],
  ),
);
