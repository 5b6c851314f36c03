import {
  ANSWER_FALSE,
  ANSWER_TRUE,
  expiresAt,
  MemoryKeys,
  remainingTime,
} from "../../../backends/memory/memory-keys.js";
import type { KeyWaiters } from "../../../backends/memory/memory-waiters.js";
import type { TimeSpan } from "../../../time-span/time-span.js";
import type {
  ILockAdapter,
  LockAcquireResult,
  LockAdapterState,
  LockHandOff,
  LockWaitClaim,
} from "../../contracts/lock-adapter.js";

type Hold = { owner: string; expiresAt: number | null; fencingToken: number };

type LockWaiters = KeyWaiters<LockWaitClaim, LockHandOff>;

/**
 * Locks in this process's memory: the embedded default, and the adapter for tests of code that
 * uses hasp. Expiry is lazy (no timer per lock) on the monotonic clock; a release, or the
 * expiry of a hold with waiters, hands the key to the longest-waiting waiter that made a claim
 * (a blocking acquire), or wakes it when it made none, so waiters are served first come, first
 * served, keep their place while the holder refreshes, and never retry in vain; entries of free
 * keys are swept as the map is written, so nothing stays behind. Tokens come from one counter
 * for the whole adapter, so they increase per key without keeping state for free keys.
 */
export class MemoryLockAdapter implements ILockAdapter {
  readonly #keys: MemoryKeys<Hold, LockWaitClaim, LockHandOff>;
  readonly #holds: Map<string, Hold>;
  readonly #waiters: Map<string, LockWaiters>;

  constructor() {
    this.#keys = new MemoryKeys<Hold, LockWaitClaim, LockHandOff>(
      (queue) => this.#serve(queue),
      (key, hold, now) => {
        if (hold.expiresAt !== null && hold.expiresAt <= now) {
          this.#holds.delete(key);
        }
      },
    );
    this.#holds = this.#keys.entries;
    this.#waiters = this.#keys.waiters;
  }

  /** `true`: a wait keeps its place while the holder refreshes, and is served at its expiry. */
  readonly waitsPastExpiry = true;

  /**
   * `true`: a claimed wait takes a free key (or re-takes the claim's own hold) at once, so a
   * blocking acquire is one call, not an acquire and then a wait.
   */
  readonly waitAcquires = true;

  async acquire(key: string, lockId: string, ttl: TimeSpan | null): Promise<LockAcquireResult> {
    const now = performance.now();
    const hold = this.#live(key, now);
    if (hold === undefined) {
      return { acquired: true, fencingToken: this.#take(key, lockId, ttl, now) };
    }
    if (hold.owner !== lockId) {
      return {
        acquired: false,
        owner: hold.owner,
        remainingTime: remainingTime(hold.expiresAt, now),
      };
    }
    hold.expiresAt = expiresAt(ttl, now);
    return { acquired: true, fencingToken: hold.fencingToken };
  }

  release(key: string, lockId: string): Promise<boolean> {
    const now = performance.now();
    const hold = this.#live(key, now);
    if (hold?.owner !== lockId) {
      return ANSWER_FALSE;
    }
    this.#free(key, hold, now);
    return ANSWER_TRUE;
  }

  forceRelease(key: string): Promise<boolean> {
    const now = performance.now();
    const hold = this.#live(key, now);
    if (hold === undefined) {
      return ANSWER_FALSE;
    }
    this.#free(key, hold, now);
    return ANSWER_TRUE;
  }

  refresh(key: string, lockId: string, ttl: TimeSpan): Promise<boolean> {
    const now = performance.now();
    const hold = this.#live(key, now);
    if (hold?.owner !== lockId || hold.expiresAt === null) {
      return ANSWER_FALSE;
    }
    hold.expiresAt = now + ttl.toMilliseconds();
    return ANSWER_TRUE;
  }

  async getState(key: string): Promise<LockAdapterState | null> {
    const now = performance.now();
    const hold = this.#live(key, now);
    return hold === undefined
      ? null
      : {
          owner: hold.owner,
          remainingTime: remainingTime(hold.expiresAt, now),
          fencingToken: hold.fencingToken,
        };
  }

  waitForRelease(
    key: string,
    maxWait: TimeSpan,
    signal: AbortSignal,
    claim?: LockWaitClaim,
  ): Promise<LockHandOff | undefined> {
    if (signal.aborted) {
      return Promise.reject(signal.reason);
    }
    const now = performance.now();
    const hold = this.#live(key, now);
    // A claimed wait acquires (waitAcquires), and the caller counts the hold's TTL from its
    // request: the answer needs no remainingTime. An unclaimed one was freed since the caller's
    // last attempt: a release it would otherwise never hear about.
    if (hold === undefined) {
      return Promise.resolve(
        claim === undefined
          ? undefined
          : { acquired: true, fencingToken: this.#take(key, claim.lockId, claim.ttl, now) },
      );
    }
    if (hold.owner === claim?.lockId) {
      hold.expiresAt = expiresAt(claim.ttl, now);
      return Promise.resolve({ acquired: true, fencingToken: hold.fencingToken });
    }
    const deadline = now + maxWait.toMilliseconds();
    return this.#keys.wait(
      key,
      signal,
      claim,
      deadline,
      hold.expiresAt ?? Number.POSITIVE_INFINITY,
    );
  }

  /**
   * The key's hold if it is live. An expired one is dropped on the way, or, with waiters
   * queued, handed over as a release would: the answer is then the new hold, if a claim got it.
   */
  #live(key: string, now: number): Hold | undefined {
    const hold = this.#holds.get(key);
    if (hold !== undefined && hold.expiresAt !== null && hold.expiresAt <= now) {
      this.#free(key, hold, now);
      return this.#holds.get(key);
    }
    return hold;
  }

  /** The queue's timer: the hold may have expired (its waiters are then served), or waits ended. */
  #serve(queue: LockWaiters): void {
    const now = performance.now();
    // Waits past their deadline leave first: none of them may be handed the key.
    const next = queue.timeOut(now);
    const hold = this.#live(queue.key, now);
    if (this.#waiters.get(queue.key) !== queue) {
      return;
    }
    // A refreshed hold: wake again at its new expiry.
    queue.armBy(Math.min(next, hold?.expiresAt ?? Number.POSITIVE_INFINITY));
  }

  /**
   * One release, one waiter (the longest waiting): only one can take the key. A waiter with a
   * claim is handed the key here, in the same step as the release, so no newcomer can take it
   * in between and the waiter needs no second attempt; one without a claim is woken to try,
   * and if it does not take the key (aborted, or beaten by a newcomer) the next release wakes
   * the next one.
   */
  #free(key: string, hold: Hold, now: number): void {
    const waiter = this.#waiters.get(key)?.head;
    if (waiter === undefined) {
      this.#holds.delete(key);
      return;
    }
    waiter.leave();
    const claim = waiter.claim;
    if (claim === undefined) {
      this.#holds.delete(key);
      waiter.resolve(undefined);
      return;
    }
    const fencingToken = this.#keys.nextToken();
    hold.owner = claim.lockId;
    hold.expiresAt = expiresAt(claim.ttl, now);
    hold.fencingToken = fencingToken;
    if (hold.expiresAt !== null) {
      // The next waiters are served at this hold's expiry, if it comes first.
      this.#waiters.get(key)?.armBy(hold.expiresAt);
    }
    waiter.resolve(
      claim.ttl === null
        ? { acquired: true, fencingToken }
        : { acquired: true, fencingToken, remainingTime: claim.ttl },
    );
  }

  /** A new hold of `lockId` on the free `key`: its token. */
  #take(key: string, lockId: string, ttl: TimeSpan | null, now: number): number {
    const fencingToken = this.#keys.nextToken();
    this.#holds.set(key, { owner: lockId, expiresAt: expiresAt(ttl, now), fencingToken });
    this.#keys.written(now);
    return fencingToken;
  }

  /** How many keys have an entry (live or not yet swept) or waits: for tests of leaks. */
  get size(): number {
    return this.#keys.size;
  }
}
