// Which providers a serde revives a primitive's values for (locks, semaphores): per serde, the
// providers by id, and the id of each provider whose values it writes. One transformer per
// primitive and serde, shared by every provider registered on it.

import { InvalidArgumentError } from "../errors/invalid-argument-error.js";
import type { IKey, INamespace } from "../namespace/namespace.js";
import type { ISerdeRegister } from "../serde/serde-contracts.js";
import {
  type PrimitiveSerde,
  primitiveTransformer,
  requireTransformer,
} from "./primitive-transformer.js";

export type RegisteredProvider<TContext> = {
  readonly context: TContext;
  readonly namespace: INamespace;
};

/** The providers one serde knows, for one primitive. */
export type ProviderRegistry<TContext extends object> = {
  readonly byId: Map<string, RegisteredProvider<TContext>>;
  /** Weak: a provider that is dropped (a factory's copies come and go) is not kept alive. */
  readonly ids: WeakMap<TContext, string>;
};

export class ProviderRegistries<
  TFace extends { readonly key: IKey },
  TContext extends { readonly adapter: object },
  TOwn,
> {
  readonly #registries = new WeakMap<ISerdeRegister, ProviderRegistry<TContext>>();
  readonly #serde: PrimitiveSerde<TFace, TContext, TOwn>;

  /** Also marks the face's class: a serde without its transformer refuses it. */
  constructor(serde: PrimitiveSerde<TFace, TContext, TOwn>) {
    this.#serde = serde;
    requireTransformer(serde);
  }

  /**
   * Lets `serde` carry the values of one provider.
   *
   * @param replacing A factory's copy is being made: it replaces the provider of the same id on
   *   the same adapter and namespace.
   * @throws InvalidArgumentError when another provider already uses `providerId` on `serde`.
   */
  register(
    serde: ISerdeRegister,
    providerId: string,
    provider: RegisteredProvider<TContext>,
    replacing = false,
  ): void {
    let registry = this.#registries.get(serde);
    if (registry === undefined) {
      registry = { byId: new Map(), ids: new WeakMap() };
      serde.registerCustom(primitiveTransformer(this.#serde, registry));
      this.#registries.set(serde, registry);
    }
    const registered = registry.byId.get(providerId);
    // A factory's copy (made by one of its `set…` methods) revives the same values on the same
    // store as the provider it replaces: it takes over that provider's id.
    const isCopy =
      replacing &&
      registered?.context.adapter === provider.context.adapter &&
      registered.namespace.toString() === provider.namespace.toString();
    if (registered !== undefined && !isCopy) {
      throw new InvalidArgumentError(
        `${this.#serde.providerClass} settings: providerId: "${providerId}" is already registered on this serde; give each provider sharing a serde its own namespace or providerId`,
        [{ path: "providerId", message: "already registered on this serde" }],
      );
    }
    registry.byId.set(providerId, provider);
    registry.ids.set(provider.context, providerId);
  }
}
