import type { PrimitiveSerde } from "../primitive/primitive-transformer.js";
import { ProviderRegistries, type RegisteredProvider } from "../primitive/provider-registry.js";
import type { ISerdeRegister } from "../serde/serde-contracts.js";
import { Lock } from "./lock.js";
import type { LockContext } from "./lock-context.js";
import { lockSerializedSchema } from "./lock-settings.js";

/**
 * @internal A setting of `LockProvider` only `LockProviderFactory`'s `set…` copies give: see
 * `registerLockProvider`'s `replacing`.
 */
export const REPLACES_PROVIDER = Symbol("hasp.lock.replacesProvider");

const LOCK_SERDE: PrimitiveSerde<Lock, LockContext, Record<never, never>> = {
  name: "hasp.lock",
  kind: "lock",
  providerClass: "LockProvider",
  faceClass: Lock,
  schema: lockSerializedSchema,
  contextOf: Lock.contextOf,
  ownerOf: Lock.ownerOf,
  idOf: (lock) => lock.id,
  ttlOf: (lock) => lock.ttl,
  ownOf: () => ({}),
  revive: ({ context, key, owner, ttl }) => new Lock(context, key, owner, ttl),
};

/**
 * Per serde, the providers whose locks it revives, by provider id, and the id of each provider
 * whose locks it writes (a provider replaced by a factory's copy still writes under its id).
 */
const LOCK_PROVIDERS = new ProviderRegistries(LOCK_SERDE);

/**
 * Lets `serde` carry the locks of one provider. A serde gets one lock transformer, shared by
 * every provider registered on it (see `primitiveTransformer`): a lock is written as plain data
 * with its provider's id, and revived bound to the provider of that id.
 *
 * @param replacing A factory's copy is being made: it replaces the provider of the same id on the
 *   same adapter and namespace.
 * @throws InvalidArgumentError when another provider already uses `providerId` on `serde`.
 */
export function registerLockProvider(
  serde: ISerdeRegister,
  providerId: string,
  provider: RegisteredProvider<LockContext>,
  replacing = false,
): void {
  LOCK_PROVIDERS.register(serde, providerId, provider, replacing);
}
