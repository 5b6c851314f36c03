import { parseSettings } from "../errors/invalid-argument-error.js";
import type { Namespace } from "../namespace/namespace.js";
import type { ISerdeTransformer } from "../serde/serde-contracts.js";
import { TimeSpan } from "../time-span/time-span.js";
import { Lock, type LockContext } from "./lock.js";
import { lockSerializedSchema } from "./lock-settings.js";

type SerializedLock = {
  key: string;
  id: string;
  ttl: number | null;
  fencingToken: number | null;
};

/**
 * Teaches a serde the locks of one provider: a lock is written as plain data, validated on
 * the way back in, and revived bound to the same provider (so it can do exactly what the
 * original could, nothing more). The name carries the provider id, so two providers sharing a
 * serde each revive their own locks.
 */
export function createLockSerdeTransformer(
  providerId: string,
  context: LockContext,
  namespace: Namespace,
): ISerdeTransformer<Lock, SerializedLock> {
  return {
    name: `hasp.lock/${providerId}`,
    isApplicable: (value): value is Lock => value instanceof Lock && Lock.belongsTo(value, context),
    serialize: (lock) => ({
      key: lock.key,
      id: lock.id,
      ttl: lock.ttl?.toMilliseconds() ?? null,
      fencingToken: lock.fencingToken,
    }),
    deserialize: (data) => {
      const { key, id, ttl, fencingToken } = parseSettings(
        "serialized lock",
        lockSerializedSchema,
        data,
      );
      return new Lock(
        context,
        namespace.create(key),
        id,
        ttl === null ? null : TimeSpan.fromMilliseconds(ttl),
        fencingToken,
      );
    },
  };
}
