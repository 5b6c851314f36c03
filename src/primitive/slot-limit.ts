import { InvalidArgumentError } from "../errors/invalid-argument-error.js";

/**
 * The greatest limit: far beyond any sensible one (a slot is a holder doing work), and small
 * enough for every backend to count slots in a plain integer and scan them in one step.
 */
export const MAX_LIMIT = 1_000_000;

const LIMIT_MESSAGE = `must be a whole number from 1 to ${MAX_LIMIT}`;

/**
 * An adapter's check of the limit it is given (the provider checks it too, but an adapter may be
 * called directly): the limit is stored with the slot and compared by every later acquire, so
 * a fraction, NaN or an enormous one must never reach the store. `undefined` when it is good.
 */
export function badLimit(adapter: string, limit: number): InvalidArgumentError | undefined {
  if (Number.isSafeInteger(limit) && limit >= 1 && limit <= MAX_LIMIT) {
    return undefined;
  }
  return new InvalidArgumentError(
    `Invalid ${adapter} argument: limit: ${LIMIT_MESSAGE}, got ${String(limit)}`,
    [{ path: "limit", message: LIMIT_MESSAGE }],
  );
}
