import { randomFillSync } from "node:crypto";

/**
 * A lock's owner credential when it has a proof: its public id, a dot, and its secret proof (32
 * lowercase hex digits). The id is 32 hex digits when hasp generated it, whatever
 * `createLockId` returned otherwise (it may hold dots: the proof follows the last one).
 */
const OWNER_WITH_PROOF = /^([\s\S]+)\.[0-9a-f]{32}$/;

/**
 * The part of a stored owner that may be shown (in `getState`, events, errors): a lock's public
 * id without its proof, or an explicit lock id as it is (it has no proof). The store holds
 * credentials, so an owner read from it goes through here before it leaves the lock.
 */
export function publicOwner(owner: string): string {
  return OWNER_WITH_PROOF.exec(owner)?.[1] ?? owner;
}

const OWNER_BYTES = 16;
const randomPool = Buffer.alloc(OWNER_BYTES * 2 * 128);
let randomPoolUsed = randomPool.length;

/**
 * 64 random hex digits: a fresh owner's public id (the first 32) and secret proof (the last 32),
 * 128 bits each from the system's CSPRNG, drawn 4 KiB at a time. Made for every lock and
 * semaphore, so made cheaply: `randomUUID()` builds its string from ~20 concatenated pieces,
 * about 600 bytes of garbage per id, a tenth of an in-process hold's cost.
 */
export function randomOwnerHex(): string {
  if (randomPoolUsed === randomPool.length) {
    randomFillSync(randomPool);
    randomPoolUsed = 0;
  }
  const hex = randomPool.toString("hex", randomPoolUsed, randomPoolUsed + OWNER_BYTES * 2);
  randomPoolUsed += OWNER_BYTES * 2;
  return hex;
}

/** Where a generated owner's id ends and its proof begins, in {@link randomOwnerHex}. */
export const OWNER_ID_LENGTH = OWNER_BYTES * 2;
