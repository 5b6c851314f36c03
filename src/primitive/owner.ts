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
