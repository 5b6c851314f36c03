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
import type { ISemaphoreAdapter } from "./contracts/semaphore-adapter.js";
import type { SemaphoreEventMap } from "./contracts/semaphore-events.js";

export const SEMAPHORE_DEFAULTS = primitiveDefaults(["hasp", "semaphore"]);

export const semaphoreProviderSettingsSchema = settingsObject(
  providerSettingsEntries<ISemaphoreAdapter, SemaphoreEventMap>(
    adapterSchema<ISemaphoreAdapter>("semaphore", [
      "acquire",
      "release",
      "forceReleaseAll",
      "refresh",
      "getState",
    ]),
    SEMAPHORE_DEFAULTS,
  ),
);

export const semaphoreCreateSettingsSchema = settingsObject({
  limit: limitSchema,
  ttl: v.optional(ttlSchema),
  slotId: v.optional(ownerIdSchema),
});

/** A serialized semaphore (see `serializedSchema`): with the limit it was made with. */
export const semaphoreSerializedSchema = serializedSchema("semaphore", { limit: limitSchema });
