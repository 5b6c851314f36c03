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
import { Semaphore } from "./semaphore.js";
import type { SemaphoreContext } from "./semaphore-context.js";
import { semaphoreSerializedSchema } from "./semaphore-settings.js";

/**
 * A semaphore as plain data: a bearer credential (its id and proof act as the holder). It
 * carries no fencing token: a revived semaphore takes its token from the store.
 */
type SerializedSemaphore = {
  providerId: string;
  key: string;
  id: string;
  /** The secret part of a generated slot's holder; `null` for an explicit slot id. */
  proof: string | null;
  limit: number;
  ttl: number | null;
};

function notGivenThisSerde(semaphore: Semaphore): SerdeError {
  return new SerdeError(
    `The semaphore "${semaphore.key.get()}" belongs to a SemaphoreProvider that was not given this serde, so it cannot be serialized with it: pass the serde to that provider (new SemaphoreProvider({ serde }))`,
  );
}

// A serde no provider was given has no semaphore transformer: the mark makes it refuse a
// semaphore rather than write it as `{}`.
Object.defineProperty(Semaphore.prototype, TRANSFORMER_REQUIRED, {
  value(this: Semaphore): string {
    return notGivenThisSerde(this).message;
  },
});

const SEMAPHORE_PROVIDERS = new ProviderRegistries("SemaphoreProvider", createSemaphoreTransformer);

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

function createSemaphoreTransformer(
  registry: ProviderRegistry<SemaphoreContext>,
): ISerdeTransformer<Semaphore, SerializedSemaphore> {
  return {
    name: "hasp.semaphore",
    isApplicable: (value): value is Semaphore => value instanceof Semaphore,
    serialize: (semaphore) => {
      const providerId = registry.ids.get(Semaphore.contextOf(semaphore));
      if (providerId === undefined) {
        throw notGivenThisSerde(semaphore);
      }
      const owner = Semaphore.ownerOf(semaphore);
      return {
        providerId,
        key: semaphore.key.get(),
        id: semaphore.slotId,
        proof: owner === semaphore.slotId ? null : owner.slice(semaphore.slotId.length + 1),
        limit: semaphore.limit,
        ttl: semaphore.ttl?.toMilliseconds() ?? null,
      };
    },
    deserialize: (data) => {
      const { providerId, key, id, proof, limit, ttl } = parseSettings(
        "serialized semaphore",
        semaphoreSerializedSchema,
        data,
      );
      const provider = registry.byId.get(providerId);
      if (provider === undefined) {
        throw new SerdeError(
          `The semaphore "${key}" belongs to the SemaphoreProvider "${providerId}", which is not registered on this serde`,
        );
      }
      return new Semaphore({
        context: provider.context,
        key: createKey(provider.namespace, key),
        owner: proof === null ? id : `${id}.${proof}`,
        id,
        limit,
        ttl: ttl === null ? null : TimeSpan.fromMilliseconds(ttl),
      });
    },
  };
}
