/**
 * A generated lock's owner credential: its public id, a dot, and its secret proof (32 lowercase
 * hex digits each).
 */
const GENERATED_OWNER = /^([0-9a-f]{32})\.[0-9a-f]{32}$/;

/**
 * The part of a stored owner that may be shown (in `getState`, events, errors): a generated
 * lock's public id without its proof, or an explicit lock id as it is (it has no proof). The
 * store holds credentials, so an owner read from it goes through here before it leaves the lock.
 */
export function publicOwner(owner: string): string {
  return GENERATED_OWNER.exec(owner)?.[1] ?? owner;
}
