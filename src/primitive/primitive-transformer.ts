// A primitive's serde transformer (a lock, a semaphore as plain data): written with its
// provider's id, validated on the way back in, revived bound to the provider of that id. The
// data is the owner's credential: the revived face can do what the original could; altered, it
// is another owner's, who holds nothing. A face whose provider is not registered on the serde is
// refused rather than written as an empty object.

import type * as v from "valibot";
import { createKey, type IKey } from "../namespace/namespace.js";
import { TRANSFORMER_REQUIRED } from "../serde/serde.js";
import type { ISerdeTransformer } from "../serde/serde-contracts.js";
import { SerdeError } from "../serde/serde-error.js";
import { parseSettings } from "../settings/parse-settings.js";
import { TimeSpan } from "../time-span/time-span.js";
import type { ProviderRegistry } from "./provider-registry.js";

/** What every serialized primitive holds, and `TOwn`, what its primitive adds (a limit). */
export type SerializedPrimitive<TOwn> = {
  providerId: string;
  key: string;
  /** The public id. */
  id: string;
  /** The secret part of a generated owner; `null` for an id given as it is. */
  proof: string | null;
} & TOwn & { ttl: number | null };

/** What a revived face is made of. */
export type RevivedFace<TContext, TOwn> = {
  readonly context: TContext;
  readonly key: IKey;
  /** The credential: the id, and its proof when it has one. */
  readonly owner: string;
  readonly id: string;
  readonly ttl: TimeSpan | null;
  /** What the primitive added to the data. */
  readonly own: TOwn;
};

/** What a primitive tells the transformer of its faces. */
export type PrimitiveSerde<TFace extends { readonly key: IKey }, TContext, TOwn> = {
  /** The transformer's name (`"hasp.lock"`). */
  readonly name: string;
  /** `"lock"`: named in messages. */
  readonly kind: string;
  /** `"LockProvider"`: named in messages. */
  readonly providerClass: string;
  /** The face's class: its instances are what the transformer applies to. */
  readonly faceClass: abstract new (
    ...args: never[]
  ) => TFace;
  readonly schema: v.GenericSchema<unknown, SerializedPrimitive<TOwn>>;
  readonly contextOf: (face: TFace) => TContext;
  /** The face's credential. */
  readonly ownerOf: (face: TFace) => string;
  /** The face's public id. */
  readonly idOf: (face: TFace) => string;
  readonly ttlOf: (face: TFace) => TimeSpan | null;
  /** What the primitive adds to the data (`{}` for none). */
  readonly ownOf: (face: TFace) => TOwn;
  readonly revive: (face: RevivedFace<TContext, TOwn>) => TFace;
};

/** Why `face` cannot be serialized with a serde, and what to do. */
function notGivenThisSerde<TFace extends { readonly key: IKey }>(
  serde: PrimitiveSerde<TFace, unknown, unknown>,
  face: TFace,
): SerdeError {
  const { kind, providerClass } = serde;
  return new SerdeError(
    `The ${kind} "${face.key.get()}" belongs to a ${providerClass} that was not given this serde, so it cannot be serialized with it: pass the serde to that provider (new ${providerClass}({ serde }))`,
  );
}

/**
 * Marks the face's class: a serde that no provider was given has no transformer for it, and
 * would write its public fields as `{}`; the mark makes it refuse the face instead. Every face
 * comes from a provider, which loads the module that calls this.
 */
export function requireTransformer<TFace extends { readonly key: IKey }, TContext, TOwn>(
  serde: PrimitiveSerde<TFace, TContext, TOwn>,
): void {
  Object.defineProperty(serde.faceClass.prototype, TRANSFORMER_REQUIRED, {
    value(this: TFace): string {
      return notGivenThisSerde(serde as PrimitiveSerde<TFace, unknown, unknown>, this).message;
    },
  });
}

/** The one transformer of a primitive on one serde, over the providers registered on it. */
export function primitiveTransformer<
  TFace extends { readonly key: IKey },
  TContext extends object,
  TOwn,
>(
  serde: PrimitiveSerde<TFace, TContext, TOwn>,
  registry: ProviderRegistry<TContext>,
): ISerdeTransformer<TFace, SerializedPrimitive<TOwn>> {
  const { faceClass, kind, providerClass } = serde;
  return {
    name: serde.name,
    isApplicable: (value): value is TFace => value instanceof faceClass,
    serialize: (face) => {
      const providerId = registry.ids.get(serde.contextOf(face));
      if (providerId === undefined) {
        throw notGivenThisSerde(serde as PrimitiveSerde<TFace, unknown, unknown>, face);
      }
      const owner = serde.ownerOf(face);
      const id = serde.idOf(face);
      return {
        providerId,
        key: face.key.get(),
        id,
        proof: owner === id ? null : owner.slice(id.length + 1),
        ...serde.ownOf(face),
        ttl: serde.ttlOf(face)?.toMilliseconds() ?? null,
      };
    },
    deserialize: (data) => {
      const parsed = parseSettings(`serialized ${kind}`, serde.schema, data);
      const { providerId, key, id, proof, ttl } = parsed;
      const provider = registry.byId.get(providerId);
      if (provider === undefined) {
        throw new SerdeError(
          `The ${kind} "${key}" belongs to the ${providerClass} "${providerId}", which is not registered on this serde`,
        );
      }
      return serde.revive({
        context: provider.context,
        key: createKey(provider.namespace, key),
        owner: proof === null ? id : `${id}.${proof}`,
        id,
        ttl: ttl === null ? null : TimeSpan.fromMilliseconds(ttl),
        own: parsed,
      });
    },
  };
}
