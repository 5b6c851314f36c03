import * as v from "valibot";
import {
  adapterSchema,
  limitSchema,
  ownerIdSchema,
  primitiveDefaults,
  providerSettingsEntries,
  serializedSchema,
  ttlSchema,
} from "../primitive/primitive-settings.js";
import { settingsObject } from "../settings/parse-settings.js";
import type { ISharedLockAdapter } from "./contracts/shared-lock-adapter.js";
import type { SharedLockEventMap } from "./contracts/shared-lock-events.js";

export const SHARED_LOCK_DEFAULTS = primitiveDefaults(["hasp", "shared-lock"]);

export const sharedLockProviderSettingsSchema = settingsObject(
  providerSettingsEntries<ISharedLockAdapter, SharedLockEventMap>(
    adapterSchema<ISharedLockAdapter>("shared lock", [
      "acquireWriter",
      "releaseWriter",
      "forceReleaseWriter",
      "refreshWriter",
      "acquireReader",
      "releaseReader",
      "forceReleaseAllReaders",
      "refreshReader",
      "forceRelease",
      "getState",
    ]),
    SHARED_LOCK_DEFAULTS,
  ),
);

export const sharedLockCreateSettingsSchema = settingsObject({
  limit: limitSchema,
  ttl: v.optional(ttlSchema),
  lockId: v.optional(ownerIdSchema),
});

/** A serialized shared lock (see `serializedSchema`): with the readers' limit it was made with. */
export const sharedLockSerializedSchema = serializedSchema("shared lock", { limit: limitSchema });
