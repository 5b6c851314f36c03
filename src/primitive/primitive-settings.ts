// The settings every primitive's provider shares (the namespace, serdes, the event bus, TTLs,
// blocking and run settings): one schema each, used by `lock-settings.ts` and its kin.

import * as v from "valibot";
import type { IEventBus } from "../event-bus/event-bus-contracts.js";
import { type INamespace, Namespace } from "../namespace/namespace.js";
import { storedStringProblem } from "../namespace/stored-string-problem.js";
import type { ISerdeRegister } from "../serde/serde-contracts.js";
import { mustBe, settingsObject } from "../settings/parse-settings.js";
import { TimeSpan } from "../time-span/time-span.js";
import {
  nonNegativeTimeSpanSchema,
  positiveTimeSpanSchema,
} from "../time-span/time-span-schema.js";

/** The defaults every primitive's provider shares. */
export const PRIMITIVE_DEFAULTS = Object.freeze({
  ttl: TimeSpan.fromMinutes(5),
  blockingTime: TimeSpan.fromMinutes(1),
  blockingInterval: TimeSpan.fromMilliseconds(100),
  /** Auto-refresh runs at this fraction of the TTL. */
  refreshFraction: 1 / 3,
});

/** An object that has every one of `methods`. */
export function hasMethods(value: unknown, methods: readonly string[]): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    methods.every((method) => typeof (value as Record<string, unknown>)[method] === "function")
  );
}

export const namespaceSchema = v.custom<INamespace>(
  (value) =>
    value instanceof Namespace ||
    (typeof value === "object" &&
      value !== null &&
      typeof (value as INamespace).create === "function"),
  mustBe("a Namespace (or an object with create(key) and toString())"),
);

const serdeSchema = v.custom<ISerdeRegister>(
  (value) => hasMethods(value, ["registerCustom"]),
  mustBe("a Serde (with registerCustom)"),
);

export const serdesSchema = v.union(
  [serdeSchema, v.array(serdeSchema)],
  mustBe("a Serde or an array of Serdes"),
);

/** An event bus of any primitive's events. */
export function eventBusSchema<TEventMap extends Record<string, unknown>>() {
  return v.custom<IEventBus<TEventMap>>(
    (value) => hasMethods(value, ["addListener", "removeListener", "dispatch"]),
    mustBe("an EventBus"),
  );
}

/** A TTL: `null` for holds that never expire. */
export const ttlSchema = v.union([positiveTimeSpanSchema, v.null()], mustBe("a TimeSpan or null"));

/** A string that reaches every backend as it is: well-formed UTF-16, without NUL. */
export const storedStringSchema = v.pipe(
  v.string(mustBe("a string")),
  v.rawCheck(({ dataset, addIssue }) => {
    const problem = dataset.typed ? storedStringProblem(dataset.value) : undefined;
    if (problem !== undefined) {
      addIssue({ message: problem });
    }
  }),
);

export const nonEmptyStoredStringSchema = v.pipe(
  storedStringSchema,
  v.nonEmpty("must not be empty"),
);

/** An owner's id as given (a lock id, a slot id): the credential the adapter stores. */
export const ownerIdSchema = v.pipe(
  nonEmptyStoredStringSchema,
  v.maxCodePoints(255, "must be at most 255 characters"),
);

export const blockingSettingsSchema = settingsObject({
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

export const runSettingsSchema = settingsObject({
  autoRefresh: v.optional(autoRefreshSchema, true),
});

export const runBlockingSettingsSchema = settingsObject({
  autoRefresh: v.optional(autoRefreshSchema, true),
  time: v.optional(nonNegativeTimeSpanSchema),
  interval: v.optional(positiveTimeSpanSchema),
});

export const refreshTtlSchema = v.optional(positiveTimeSpanSchema);

/** A string's length in characters (code points), as owner ids are measured. */
export function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}
