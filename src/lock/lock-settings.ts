import type { IEventBus } from "../event-bus/event-bus-contracts.js";
import { type INamespace, Namespace } from "../namespace/namespace.js";
import { storedStringProblem } from "../namespace/stored-string-problem.js";
import { s } from "../schema/schema.js";
import type { ISerdeRegister } from "../serde/serde-contracts.js";
import { TimeSpan } from "../time-span/time-span.js";
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
  namespace: new Namespace(["hasp", "lock"]),
  ttl: TimeSpan.fromMinutes(5),
  blockingTime: TimeSpan.fromMinutes(1),
  blockingInterval: TimeSpan.fromMilliseconds(100),
  /** Auto-refresh runs at this fraction of the TTL. */
  refreshFraction: 1 / 3,
});

const ADAPTER_METHODS = ["acquire", "release", "forceRelease", "refresh", "getState"] as const;

const adapterSchema = s.custom<ILockAdapter>(
  (value) =>
    typeof value === "object" &&
    value !== null &&
    ADAPTER_METHODS.every(
      (method) => typeof (value as Record<string, unknown>)[method] === "function",
    ),
  `must be a lock adapter (with ${ADAPTER_METHODS.join(", ")})`,
);

const namespaceSchema = s.custom<INamespace>(
  (value) =>
    value instanceof Namespace ||
    (typeof value === "object" &&
      value !== null &&
      typeof (value as INamespace).create === "function"),
  "must be a Namespace (or an object with create(key) and toString())",
);

/** daiso-core's `Invokable<[], string>`: a function, or an object with `invoke()`. */
const lockIdFactorySchema = s.custom<LockIdFactory>(
  (value) =>
    typeof value === "function" ||
    (typeof value === "object" &&
      value !== null &&
      typeof (value as { invoke?: unknown }).invoke === "function"),
  "must be a function, or an object with invoke(), returning a string",
);

const serdeSchema = s.custom<ISerdeRegister>(
  (value) =>
    typeof value === "object" &&
    value !== null &&
    typeof (value as ISerdeRegister).registerCustom === "function",
  "must be a Serde (with registerCustom)",
);

const eventBusSchema = s.custom<IEventBus<LockEventMap>>(
  (value) =>
    typeof value === "object" &&
    value !== null &&
    ["addListener", "removeListener", "dispatch"].every(
      (method) => typeof (value as Record<string, unknown>)[method] === "function",
    ),
  "must be an EventBus",
);

const ttlSchema = positiveTimeSpanSchema.nullable();

/** A string that reaches every backend as it is: well-formed UTF-16, without NUL. */
const storedStringSchema = s.string("must be a string").superRefine((value, context) => {
  const problem = storedStringProblem(value);
  if (problem !== undefined) {
    context.addIssue({ code: "custom", message: problem });
  }
});

const lockIdSchema = storedStringSchema
  .min(1, "must not be empty")
  .max(255, "must be at most 255 characters");

export const lockProviderSettingsSchema = s
  .object({
    adapter: adapterSchema,
    namespace: namespaceSchema.default(LOCK_DEFAULTS.namespace),
    defaultTtl: ttlSchema.default(LOCK_DEFAULTS.ttl),
    defaultBlockingTime: nonNegativeTimeSpanSchema.default(LOCK_DEFAULTS.blockingTime),
    defaultBlockingInterval: positiveTimeSpanSchema.default(LOCK_DEFAULTS.blockingInterval),
    serde: s.union([serdeSchema, s.array(serdeSchema)]).optional(),
    eventBus: eventBusSchema.optional(),
    providerId: storedStringSchema.min(1, "must not be empty").optional(),
    createLockId: lockIdFactorySchema.optional(),
    defaultRefreshTime: positiveTimeSpanSchema.optional(),
    serdeTransformerName: storedStringSchema.optional(),
  })
  .strict();

export const lockCreateSettingsSchema = s
  .object({ ttl: ttlSchema.optional(), lockId: lockIdSchema.optional() })
  .strict();

export const lockBlockingSettingsSchema = s
  .object({
    time: nonNegativeTimeSpanSchema.optional(),
    interval: positiveTimeSpanSchema.optional(),
  })
  .strict();

const autoRefreshSchema = s.union([
  s.boolean(),
  s
    .object({
      interval: positiveTimeSpanSchema.optional(),
      maxHoldTime: positiveTimeSpanSchema.optional(),
    })
    .strict(),
]);

export const lockRunSettingsSchema = s
  .object({ autoRefresh: autoRefreshSchema.default(true) })
  .strict();

export const lockRunBlockingSettingsSchema = s
  .object({
    autoRefresh: autoRefreshSchema.default(true),
    time: nonNegativeTimeSpanSchema.optional(),
    interval: positiveTimeSpanSchema.optional(),
  })
  .strict();

export const refreshTtlSchema = positiveTimeSpanSchema.optional();

const HEX_128 = /^[0-9a-f]{32}$/;

/** The longest public id that still fits a 255-character credential with `.<proof>`. */
export const MAX_PROVEN_ID_LENGTH = 255 - 33;

/**
 * A serialized lock: no fencing token (a revived lock learns it from the store), and a proof of
 * the shape a generated lock's has.
 */
export const lockSerializedSchema = s
  .object({
    providerId: storedStringSchema.min(1, "must not be empty"),
    key: storedStringSchema.min(1, "must not be empty"),
    id: lockIdSchema,
    proof: s.string().regex(HEX_128, "must be 32 lowercase hex digits").nullable(),
    ttl: s.number().positive().max(MAX_DURATION_MS, MAX_DURATION_MESSAGE).nullable(),
  })
  .strict()
  .refine((lock) => lock.proof === null || lock.id.length <= MAX_PROVEN_ID_LENGTH, {
    path: ["id"],
    message: `must be at most ${MAX_PROVEN_ID_LENGTH} characters when the lock has a proof`,
  });
