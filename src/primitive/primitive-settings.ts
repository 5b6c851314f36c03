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
  MAX_DURATION_MESSAGE,
  MAX_DURATION_MS,
  nonNegativeTimeSpanSchema,
  positiveTimeSpanSchema,
} from "../time-span/time-span-schema.js";
import { MAX_LIMIT } from "./slot-limit.js";

/** The defaults every primitive's provider shares. */
export const PRIMITIVE_DEFAULTS = Object.freeze({
  ttl: TimeSpan.fromMinutes(5),
  blockingTime: TimeSpan.fromMinutes(1),
  blockingInterval: TimeSpan.fromMilliseconds(100),
  /** Auto-refresh runs at this fraction of the TTL. */
  refreshFraction: 1 / 3,
});

/** A primitive's defaults: the shared ones, and its own namespace. */
export function primitiveDefaults(namespace: readonly string[]) {
  return Object.freeze({ ...PRIMITIVE_DEFAULTS, namespace: new Namespace([...namespace]) });
}

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

/** An adapter of a primitive (`"lock"`): an object with the primitive's `methods`. */
export function adapterSchema<TAdapter>(kind: string, methods: readonly string[]) {
  return v.custom<TAdapter>(
    (value) => hasMethods(value, methods),
    mustBe(`a ${kind} adapter (with ${methods.join(", ")})`),
  );
}

/**
 * The limit of a primitive of several holders (a semaphore's, a shared lock's readers'): a
 * whole number from 1 to `MAX_LIMIT`.
 */
export const limitSchema = v.pipe(
  v.number(mustBe("a number")),
  v.integer("must be a whole number"),
  v.minValue(1, "must be at least 1"),
  v.maxValue(MAX_LIMIT, `must be at most ${MAX_LIMIT}`),
);

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

/**
 * The provider settings every primitive takes, given its adapter's schema and its defaults (a
 * primitive adds its own entries after these).
 */
export function providerSettingsEntries<TAdapter, TEventMap extends Record<string, unknown>>(
  adapter: v.GenericSchema<unknown, TAdapter>,
  defaults: ReturnType<typeof primitiveDefaults>,
) {
  return {
    adapter,
    namespace: v.optional(namespaceSchema, defaults.namespace),
    defaultTtl: v.optional(ttlSchema, defaults.ttl),
    defaultBlockingTime: v.optional(nonNegativeTimeSpanSchema, defaults.blockingTime),
    defaultBlockingInterval: v.optional(positiveTimeSpanSchema, defaults.blockingInterval),
    serde: v.optional(serdesSchema),
    eventBus: v.optional(eventBusSchema<TEventMap>()),
    providerId: v.optional(nonEmptyStoredStringSchema),
    defaultRefreshTime: v.optional(positiveTimeSpanSchema),
  };
}

/** The longest public id that still fits a 255-character credential with `.<proof>`. */
export const MAX_PROVEN_ID_LENGTH = 255 - 33;

/** What every serialized primitive holds (see `serializedSchema`). */
type SerializedData = {
  providerId: string;
  key: string;
  id: string;
  proof: string | null;
  ttl: number | null;
};

/**
 * A serialized primitive (`"lock"`) of a provider: a bearer credential, its public id and the
 * proof a generated owner has (`null` for an id given as it is), its TTL in ms, and `entries` of
 * its own. No fencing token: a revived face learns it from the store.
 */
export function serializedSchema<const TEntries extends v.ObjectEntries>(
  kind: string,
  entries: TEntries,
): v.GenericSchema<unknown, SerializedData & v.InferOutput<v.ObjectSchema<TEntries, undefined>>> {
  const schema = v.pipe(
    settingsObject({
      providerId: nonEmptyStoredStringSchema,
      key: nonEmptyStoredStringSchema,
      id: ownerIdSchema,
      proof: v.nullable(
        v.pipe(
          v.string(mustBe("a string or null")),
          v.regex(/^[0-9a-f]{32}$/, "must be 32 lowercase hex digits"),
        ),
      ),
      ...(entries as v.ObjectEntries),
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
        (data) => data.proof === null || codePoints(data.id) <= MAX_PROVEN_ID_LENGTH,
        `must be at most ${MAX_PROVEN_ID_LENGTH} characters when the ${kind} has a proof`,
      ),
      ["id"],
    ),
  );
  return schema as unknown as v.GenericSchema<
    unknown,
    SerializedData & v.InferOutput<v.ObjectSchema<TEntries, undefined>>
  >;
}

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
