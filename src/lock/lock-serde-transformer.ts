import { createKey } from "../namespace/namespace.js";
import {
  ProviderRegistries,
  type ProviderRegistry,
  type RegisteredProvider,
} from "../primitive/provider-registry.js";
import { TRANSFORMER_REQUIRED } from "../serde/serde.js";
import type { ISerdeRegister, ISerdeTransformer } from "../serde/serde-contracts.js";
import { SerdeError } from "../serde/serde-error.js";
import { parseSettings } from "../settings/parse-settings.js";
import { TimeSpan } from "../time-span/time-span.js";
import { Lock } from "./lock.js";
import type { LockContext } from "./lock-context.js";
import { lockSerializedSchema } from "./lock-settings.js";

/**
 * A lock as plain data: a bearer credential (its id and proof act as the holder). It carries no
 * fencing token: a revived lock takes its token from the store, never from the payload.
 */
type SerializedLock = {
  providerId: string;
  key: string;
  id: string;
  /** The secret part of a generated lock's owner; `null` for an explicit lock id. */
  proof: string | null;
  ttl: number | null;
};

/**
 * @internal A setting of `LockProvider` only `LockProviderFactory`'s `set…` copies give: see
 * `registerLockProvider`'s `replacing`.
 */
export const REPLACES_PROVIDER = Symbol("hasp.lock.replacesProvider");

/** Why a lock cannot be serialized with a serde, and what to do. */
function notGivenThisSerde(lock: Lock): SerdeError {
  return new SerdeError(
    `The lock "${lock.key.get()}" belongs to a LockProvider that was not given this serde, so it cannot be serialized with it: pass the serde to that provider (new LockProvider({ serde }))`,
  );
}

// A serde that no provider was given has no lock transformer, and would write a lock's public
// fields as `{}`: the mark makes it refuse the lock instead. Every Lock comes from a provider,
// which loads this module.
Object.defineProperty(Lock.prototype, TRANSFORMER_REQUIRED, {
  value(this: Lock): string {
    return notGivenThisSerde(this).message;
  },
});

type LockRegistry = ProviderRegistry<LockContext>;

/**
 * Per serde, the providers whose locks it revives, by provider id, and the id of each provider
 * whose locks it writes (a provider replaced by a factory's copy still writes under its id).
 */
const LOCK_PROVIDERS = new ProviderRegistries("LockProvider", createLockTransformer);

/**
 * Lets `serde` carry the locks of one provider. A serde gets one lock transformer, shared by
 * every provider registered on it: a lock is written as plain data with its provider's id,
 * validated on the way back in, and revived bound to the provider of that id. The data is the
 * owner's credential: the revived lock can do what the original could; altered, it is the lock
 * of another owner, who holds nothing. A lock whose provider is not registered on the serde is
 * refused rather than written as an empty object.
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

function createLockTransformer(registry: LockRegistry): ISerdeTransformer<Lock, SerializedLock> {
  return {
    name: "hasp.lock",
    isApplicable: (value): value is Lock => value instanceof Lock,
    serialize: (lock) => {
      const providerId = registry.ids.get(Lock.contextOf(lock));
      if (providerId !== undefined) {
        const owner = Lock.ownerOf(lock);
        return {
          providerId,
          key: lock.key.get(),
          id: lock.id,
          proof: owner === lock.id ? null : owner.slice(lock.id.length + 1),
          ttl: lock.ttl?.toMilliseconds() ?? null,
        };
      }
      throw notGivenThisSerde(lock);
    },
    deserialize: (data) => {
      const { providerId, key, id, proof, ttl } = parseSettings(
        "serialized lock",
        lockSerializedSchema,
        data,
      );
      const provider = registry.byId.get(providerId);
      if (provider === undefined) {
        throw new SerdeError(
          `The lock "${key}" belongs to the LockProvider "${providerId}", which is not registered on this serde`,
        );
      }
      return new Lock(
        provider.context,
        createKey(provider.namespace, key),
        proof === null ? id : `${id}.${proof}`,
        ttl === null ? null : TimeSpan.fromMilliseconds(ttl),
      );
    },
  };
}
