import type { PrimitiveSerde } from "../primitive/primitive-transformer.js";
import { ProviderRegistries, type RegisteredProvider } from "../primitive/provider-registry.js";
import type { ISerdeRegister } from "../serde/serde-contracts.js";
import { SharedLock } from "./shared-lock.js";
import type { SharedLockContext } from "./shared-lock-context.js";
import { sharedLockSerializedSchema } from "./shared-lock-settings.js";
import { sharedLockSides } from "./shared-lock-sides.js";

/** A shared lock's data carries the readers' limit it was made with. */
const SHARED_LOCK_SERDE: PrimitiveSerde<SharedLock, SharedLockContext, { limit: number }> = {
  name: "hasp.shared-lock",
  kind: "shared lock",
  providerClass: "SharedLockProvider",
  faceClass: SharedLock,
  schema: sharedLockSerializedSchema,
  contextOf: SharedLock.contextOf,
  ownerOf: SharedLock.ownerOf,
  idOf: (sharedLock) => sharedLock.id,
  ttlOf: (sharedLock) => sharedLock.ttl,
  ownOf: (sharedLock) => ({ limit: sharedLock.limit }),
  revive: ({ own, ...settings }) =>
    new SharedLock({ ...settings, sides: sharedLockSides(settings.context), limit: own.limit }),
};

const SHARED_LOCK_PROVIDERS = new ProviderRegistries(SHARED_LOCK_SERDE);

/**
 * Lets `serde` carry the shared locks of one provider (see `registerLockProvider`): written as
 * plain data with the provider's id, validated on the way back in, revived bound to that
 * provider. Altered data is another owner's shared lock, which holds nothing.
 *
 * @throws InvalidArgumentError when another provider already uses `providerId` on `serde`.
 */
export function registerSharedLockProvider(
  serde: ISerdeRegister,
  providerId: string,
  provider: RegisteredProvider<SharedLockContext>,
  replacing = false,
): void {
  SHARED_LOCK_PROVIDERS.register(serde, providerId, provider, replacing);
}
