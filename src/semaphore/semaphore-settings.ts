import * as v from "valibot";
import {
  adapterSchema,
  ownerIdSchema,
  primitiveDefaults,
  providerSettingsEntries,
  serializedSchema,
  ttlSchema,
} from "../primitive/primitive-settings.js";
import { mustBe, settingsObject } from "../settings/parse-settings.js";
import type { ISemaphoreAdapter } from "./contracts/semaphore-adapter.js";
import type { SemaphoreEventMap } from "./contracts/semaphore-events.js";
import { MAX_LIMIT } from "./contracts/semaphore-limit.js";

export const SEMAPHORE_DEFAULTS = primitiveDefaults(["hasp", "semaphore"]);

export const limitSchema = v.pipe(
  v.number(mustBe("a number")),
  v.integer("must be a whole number"),
  v.minValue(1, "must be at least 1"),
  v.maxValue(MAX_LIMIT, `must be at most ${MAX_LIMIT}`),
);

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
