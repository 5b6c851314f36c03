import * as v from "valibot";
import {
  adapterSchema,
  ownerIdSchema,
  primitiveDefaults,
  providerSettingsEntries,
  serializedSchema,
  storedStringSchema,
  ttlSchema,
} from "../primitive/primitive-settings.js";
import { mustBe, settingsObject } from "../settings/parse-settings.js";
import type { LockIdFactory } from "./contracts/lock.js";
import type { ILockAdapter } from "./contracts/lock-adapter.js";
import type { LockEventMap } from "./contracts/lock-events.js";

export const LOCK_DEFAULTS = primitiveDefaults(["hasp", "lock"]);

/** daiso-core's `Invokable<[], string>`: a function, or an object with `invoke()`. */
const lockIdFactorySchema = v.custom<LockIdFactory>(
  (value) =>
    typeof value === "function" ||
    (typeof value === "object" &&
      value !== null &&
      typeof (value as { invoke?: unknown }).invoke === "function"),
  mustBe("a function, or an object with invoke(), returning a string"),
);

export const lockProviderSettingsSchema = settingsObject({
  ...providerSettingsEntries<ILockAdapter, LockEventMap>(
    adapterSchema<ILockAdapter>("lock", [
      "acquire",
      "release",
      "forceRelease",
      "refresh",
      "getState",
    ]),
    LOCK_DEFAULTS,
  ),
  createLockId: v.optional(lockIdFactorySchema),
  serdeTransformerName: v.optional(storedStringSchema),
});

export const lockCreateSettingsSchema = settingsObject({
  ttl: v.optional(ttlSchema),
  lockId: v.optional(ownerIdSchema),
});

/** A serialized lock (see `serializedSchema`). */
export const lockSerializedSchema = serializedSchema("lock", {});
