import type { PrimitiveSerde } from "../primitive/primitive-transformer.js";
import { ProviderRegistries, type RegisteredProvider } from "../primitive/provider-registry.js";
import type { ISerdeRegister } from "../serde/serde-contracts.js";
import { Semaphore } from "./semaphore.js";
import type { SemaphoreContext } from "./semaphore-context.js";
import { semaphoreSerializedSchema } from "./semaphore-settings.js";

/** A semaphore's data carries the limit it was made with. */
const SEMAPHORE_SERDE: PrimitiveSerde<Semaphore, SemaphoreContext, { limit: number }> = {
  name: "hasp.semaphore",
  kind: "semaphore",
  providerClass: "SemaphoreProvider",
  faceClass: Semaphore,
  schema: semaphoreSerializedSchema,
  contextOf: Semaphore.contextOf,
  ownerOf: Semaphore.ownerOf,
  idOf: (semaphore) => semaphore.slotId,
  ttlOf: (semaphore) => semaphore.ttl,
  ownOf: (semaphore) => ({ limit: semaphore.limit }),
  revive: ({ own, ...settings }) => new Semaphore({ ...settings, limit: own.limit }),
};

const SEMAPHORE_PROVIDERS = new ProviderRegistries(SEMAPHORE_SERDE);

/**
 * Lets `serde` carry the semaphores of one provider (see `registerLockProvider`): written as
 * plain data with the provider's id, validated on the way back in, revived bound to that
 * provider. Altered data is another holder's semaphore, which holds nothing.
 *
 * @throws InvalidArgumentError when another provider already uses `providerId` on `serde`.
 */
export function registerSemaphoreProvider(
  serde: ISerdeRegister,
  providerId: string,
  provider: RegisteredProvider<SemaphoreContext>,
  replacing = false,
): void {
  SEMAPHORE_PROVIDERS.register(serde, providerId, provider, replacing);
}
