import * as v from "valibot";
import type { IEventBus } from "../event-bus/event-bus-contracts.js";
import { type INamespace, Namespace } from "../namespace/namespace.js";
import { storedStringProblem } from "../namespace/stored-string-problem.js";
import type { ISerdeRegister } from "../serde/serde-contracts.js";
import { mustBe, settingsObject } from "../settings/parse-settings.js";
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

const adapterSchema = v.custom<ILockAdapter>(
  (value) =>
    typeof value === "object" &&
    value !== null &&
    ADAPTER_METHODS.every(
      (method) => typeof (value as Record<string, unknown>)[method] === "function",
    ),
  mustBe(`a lock adapter (with ${ADAPTER_METHODS.join(", ")})`),
);

const namespaceSchema = v.custom<INamespace>(
  (value) =>
    value instanceof Namespace ||
    (typeof value === "object" &&
      value !== null &&
      typeof (value as INamespace).create === "function"),
  mustBe("a Namespace (or an object with create(key) and toString())"),
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

const serdeSchema = v.custom<ISerdeRegister>(
  (value) =>
    typeof value === "object" &&
    value !== null &&
    typeof (value as ISerdeRegister).registerCustom === "function",
  mustBe("a Serde (with registerCustom)"),
);

const eventBusSchema = v.custom<IEventBus<LockEventMap>>(
  (value) =>
    typeof value === "object" &&
    value !== null &&
    ["addListener", "removeListener", "dispatch"].every(
      (method) => typeof (value as Record<string, unknown>)[method] === "function",
    ),
  mustBe("an EventBus"),
);

/** A lock's TTL: `null` for a lock that never expires. */
const ttlSchema = v.union([positiveTimeSpanSchema, v.null()], mustBe("a TimeSpan or null"));

/** A string that reaches every backend as it is: well-formed UTF-16, without NUL. */
const storedStringSchema = v.pipe(
  v.string(mustBe("a string")),
  v.rawCheck(({ dataset, addIssue }) => {
    const problem = dataset.typed ? storedStringProblem(dataset.value) : undefined;
    if (problem !== undefined) {
      addIssue({ message: problem });
    }
  }),
);

const nonEmptyStoredStringSchema = v.pipe(storedStringSchema, v.nonEmpty("must not be empty"));

const lockIdSchema = v.pipe(
  nonEmptyStoredStringSchema,
  v.maxCodePoints(255, "must be at most 255 characters"),
);

export const lockProviderSettingsSchema = settingsObject({
  adapter: adapterSchema,
  namespace: v.optional(namespaceSchema, LOCK_DEFAULTS.namespace),
  defaultTtl: v.optional(ttlSchema, LOCK_DEFAULTS.ttl),
  defaultBlockingTime: v.optional(nonNegativeTimeSpanSchema, LOCK_DEFAULTS.blockingTime),
  defaultBlockingInterval: v.optional(positiveTimeSpanSchema, LOCK_DEFAULTS.blockingInterval),
  serde: v.optional(
    v.union([serdeSchema, v.array(serdeSchema)], mustBe("a Serde or an array of Serdes")),
  ),
  eventBus: v.optional(eventBusSchema),
  providerId: v.optional(nonEmptyStoredStringSchema),
  createLockId: v.optional(lockIdFactorySchema),
  defaultRefreshTime: v.optional(positiveTimeSpanSchema),
  serdeTransformerName: v.optional(storedStringSchema),
});

export const lockCreateSettingsSchema = settingsObject({
  ttl: v.optional(ttlSchema),
  lockId: v.optional(lockIdSchema),
});

export const lockBlockingSettingsSchema = settingsObject({
  time: v.optional(nonNegativeTimeSpanSchema),
  interval: v.optional(positiveTimeSpanSchema),
});

const autoRefreshSchema = v.union(
  [
    v.boolean(),
    settingsObject({
      interval: v.optional(positiveTimeSpanSchema),
      maxHoldTime: v.optional(positiveTimeSpanSchema),
    }),
  ],
  mustBe("a boolean or an object of interval and maxHoldTime"),
);

export const lockRunSettingsSchema = settingsObject({
  autoRefresh: v.optional(autoRefreshSchema, true),
});

export const lockRunBlockingSettingsSchema = settingsObject({
  autoRefresh: v.optional(autoRefreshSchema, true),
  time: v.optional(nonNegativeTimeSpanSchema),
  interval: v.optional(positiveTimeSpanSchema),
});

export const refreshTtlSchema = v.optional(positiveTimeSpanSchema);

const HEX_128 = /^[0-9a-f]{32}$/;

/** The longest public id that still fits a 255-character credential with `.<proof>`. */
export const MAX_PROVEN_ID_LENGTH = 255 - 33;

/** A string's length in characters (code points), as lock ids are measured. */
export function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

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
