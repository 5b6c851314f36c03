import {
  type KeyWaiters,
  queueOf,
  type SignalWatch,
  Waiter,
  watchOf,
} from "../../../backends/memory/memory-waiters.js";
import { TimeSpan } from "../../../time-span/time-span.js";
import type {
  ISemaphoreAdapter,
  SemaphoreAcquireResult,
  SemaphoreAdapterState,
  SemaphoreHandOff,
  SemaphoreWaitClaim,
} from "../../contracts/semaphore-adapter.js";

const MIN_WRITES_BETWEEN_SWEEPS = 64;

type Slot = { limit: number; expiresAt: number | null; fencingToken: number };

/** The slots of one key, by slot id. */
type Slots = Map<string, Slot>;

type SlotWaiters = KeyWaiters<SemaphoreWaitClaim, SemaphoreHandOff>;

/**
 * Semaphores in this process's memory. Per key, its live slots (by slot id) and a FIFO of
 * waiters; expiry is lazy (no timer per slot) on the monotonic clock: expired slots are dropped
 * as each operation on the key begins. A release, a force release or the expiry of a slot with
 * waiters queued serves the queue in the same step: the oldest waiters are handed the free
 * slots (or woken, when they made no claim) while the limit rule admits them, so no newcomer
 * slips in and a waiter keeps its place while holders refresh. A key's entry goes once its last
 * slot and waiter leave; expired slots of keys nobody touches again are swept as the map is
 * written. Tokens come from one counter for the whole adapter, so they increase per key.
 */
export class MemorySemaphoreAdapter implements ISemaphoreAdapter {
  readonly #keys = new Map<string, Slots>();
  readonly #waiters = new Map<string, SlotWaiters>();
  readonly #watches = new Map<AbortSignal, SignalWatch<SemaphoreWaitClaim, SemaphoreHandOff>>();
  #lastToken = 0;
  #writesSinceSweep = 0;
  #writesBetweenSweeps = MIN_WRITES_BETWEEN_SWEEPS;
  readonly #queueDue = (queue: SlotWaiters) => this.#serve(queue);

  /** `true`: a wait keeps its place while holders refresh, and is served at a slot's expiry. */
  readonly waitsPastExpiry = true;

  /** `true`: a claimed wait takes a free slot (or re-takes its own) at once. */
  readonly waitAcquires = true;

  async acquire(
    key: string,
    slotId: string,
    limit: number,
    ttl: TimeSpan | null,
  ): Promise<SemaphoreAcquireResult> {
    const now = performance.now();
    const slots = this.#live(key, now);
    const own = slots?.get(slotId);
    if (own !== undefined) {
      own.expiresAt = expiresAt(ttl, now);
      return { acquired: true, fencingToken: own.fencingToken };
    }
    if (slots === undefined || admits(slots, limit)) {
      return { acquired: true, fencingToken: this.#take(key, slots, slotId, limit, ttl, now) };
    }
    return {
      acquired: false,
      limit: Math.min(limit, limitOf(slots)),
      acquiredSlotsCount: slots.size,
      remainingTime: soonestRemaining(slots, now),
    };
  }

  async release(key: string, slotId: string): Promise<boolean> {
    const now = performance.now();
    const slots = this.#live(key, now);
    if (slots === undefined || !slots.delete(slotId)) {
      return false;
    }
    this.#freed(key, slots, now);
    return true;
  }

  async forceReleaseAll(key: string): Promise<boolean> {
    const now = performance.now();
    const slots = this.#live(key, now);
    if (slots === undefined) {
      return false;
    }
    slots.clear();
    this.#freed(key, slots, now);
    return true;
  }

  async refresh(key: string, slotId: string, ttl: TimeSpan): Promise<boolean> {
    const now = performance.now();
    const slot = this.#live(key, now)?.get(slotId);
    if (slot === undefined || slot.expiresAt === null) {
      return false;
    }
    slot.expiresAt = now + ttl.toMilliseconds();
    return true;
  }

  async getState(key: string, slotId: string): Promise<SemaphoreAdapterState | null> {
    const now = performance.now();
    const slots = this.#live(key, now);
    if (slots === undefined) {
      return null;
    }
    const own = slots.get(slotId);
    return {
      limit: limitOf(slots),
      acquiredSlotsCount: slots.size,
      slot:
        own === undefined
          ? null
          : { remainingTime: remaining(own.expiresAt, now), fencingToken: own.fencingToken },
    };
  }

  waitForRelease(
    key: string,
    maxWait: TimeSpan,
    signal: AbortSignal,
    claim?: SemaphoreWaitClaim,
  ): Promise<SemaphoreHandOff | undefined> {
    if (signal.aborted) {
      return Promise.reject(signal.reason);
    }
    const now = performance.now();
    const slots = this.#live(key, now);
    if (claim !== undefined) {
      const own = slots?.get(claim.slotId);
      if (own !== undefined) {
        own.expiresAt = expiresAt(claim.ttl, now);
        return Promise.resolve({ acquired: true, fencingToken: own.fencingToken });
      }
      // A claimed wait acquires (waitAcquires); the caller counts the TTL from its request.
      if (slots === undefined || admits(slots, claim.limit)) {
        const fencingToken = this.#take(key, slots, claim.slotId, claim.limit, claim.ttl, now);
        return Promise.resolve({ acquired: true, fencingToken });
      }
    } else if (slots === undefined || slots.size < limitOf(slots)) {
      // Freed since the caller's last attempt: a release it would otherwise never hear about.
      return Promise.resolve(undefined);
    }
    const queue = queueOf(this.#waiters, key, this.#queueDue);
    queue.armBy(soonestExpiry(slots as Slots));
    const watch = watchOf(this.#watches, signal);
    const deadline = now + maxWait.toMilliseconds();
    return new Promise<SemaphoreHandOff | undefined>((resolve, reject) => {
      new Waiter(queue, watch, claim, deadline, resolve, reject);
    });
  }

  /**
   * The key's live slots, `undefined` when it has none. Expired slots are dropped on the way
   * and, with waiters queued, their places handed over as a release would.
   */
  #live(key: string, now: number): Slots | undefined {
    const slots = this.#keys.get(key);
    if (slots === undefined) {
      return undefined;
    }
    let dropped = false;
    for (const [slotId, slot] of slots) {
      if (slot.expiresAt !== null && slot.expiresAt <= now) {
        slots.delete(slotId);
        dropped = true;
      }
    }
    if (dropped) {
      this.#freed(key, slots, now);
    }
    return slots.size === 0 ? undefined : slots;
  }

  /** Slots of the key were freed: its queue is served, and an empty key's entry goes. */
  #freed(key: string, slots: Slots, now: number): void {
    const queue = this.#waiters.get(key);
    if (queue !== undefined) {
      this.#handOut(queue, slots, now);
    }
    if (slots.size === 0) {
      this.#keys.delete(key);
    } else if (queue !== undefined && this.#waiters.get(key) === queue) {
      // The next waiters are served at the soonest expiry, if it comes first.
      queue.armBy(soonestExpiry(slots));
    }
  }

  /**
   * Serves the queue, oldest first, while the limit rule admits its head: a claim is handed a
   * slot in this very step (no newcomer can take it in between), a waiter without a claim is
   * woken and a slot kept in reckoning for it (only that many can take one). A claim whose
   * holder already has a live slot (two waits of one owner) is answered with that slot. A head
   * the rule does not admit keeps the ones behind it waiting.
   */
  #handOut(queue: SlotWaiters, slots: Slots, now: number): void {
    let woken = 0;
    let waiter = queue.head;
    while (waiter !== undefined) {
      const claim = waiter.claim;
      const own = claim === undefined ? undefined : slots.get(claim.slotId);
      const count = slots.size + woken;
      if (own === undefined && (count >= limitOf(slots) || count >= (claim?.limit ?? count + 1))) {
        return;
      }
      waiter.leave();
      if (claim === undefined) {
        woken += 1;
        waiter.resolve(undefined);
      } else if (own !== undefined) {
        waiter.resolve({ acquired: true, fencingToken: own.fencingToken });
      } else {
        this.#lastToken += 1;
        slots.set(claim.slotId, {
          limit: claim.limit,
          expiresAt: expiresAt(claim.ttl, now),
          fencingToken: this.#lastToken,
        });
        waiter.resolve(
          claim.ttl === null
            ? { acquired: true, fencingToken: this.#lastToken }
            : { acquired: true, fencingToken: this.#lastToken, remainingTime: claim.ttl },
        );
      }
      waiter = queue.head;
    }
  }

  /** The queue's timer: slots may have expired (their places are then handed over), or waits ended. */
  #serve(queue: SlotWaiters): void {
    const now = performance.now();
    // Waits past their deadline leave first: none of them may be handed a slot.
    const next = queue.timeOut(now);
    const slots = this.#live(queue.key, now);
    if (this.#waiters.get(queue.key) !== queue) {
      return;
    }
    // Refreshed slots: wake again at the new soonest expiry.
    queue.armBy(Math.min(next, slots === undefined ? next : soonestExpiry(slots)));
  }

  /** A new slot of `slotId` under `key`, which the limit rule admits: its token. */
  #take(
    key: string,
    slots: Slots | undefined,
    slotId: string,
    limit: number,
    ttl: TimeSpan | null,
    now: number,
  ): number {
    this.#lastToken += 1;
    const slot = { limit, expiresAt: expiresAt(ttl, now), fencingToken: this.#lastToken };
    if (slots === undefined) {
      this.#keys.set(key, new Map([[slotId, slot]]));
    } else {
      slots.set(slotId, slot);
    }
    this.#sweepNowAndThen(now);
    return this.#lastToken;
  }

  /** Drops expired slots after about as many writes as there are keys: O(1) amortised. */
  #sweepNowAndThen(now: number): void {
    this.#writesSinceSweep += 1;
    if (this.#writesSinceSweep < this.#writesBetweenSweeps) {
      return;
    }
    this.#writesSinceSweep = 0;
    for (const key of this.#keys.keys()) {
      // A key with waiters is left to its queue's timer, which hands its slots over.
      if (!this.#waiters.has(key)) {
        this.#live(key, now);
      }
    }
    // Fixed at the sweep (see MemoryLockAdapter: a moving target would never be reached).
    this.#writesBetweenSweeps = Math.max(MIN_WRITES_BETWEEN_SWEEPS, this.#keys.size);
  }

  /** How many keys have an entry (slots, live or not yet swept, or waiters): for tests of leaks. */
  get size(): number {
    let size = this.#keys.size;
    for (const key of this.#waiters.keys()) {
      if (!this.#keys.has(key)) {
        size += 1;
      }
    }
    return size;
  }
}

/** Whether a new slot of limit `limit` may join `slots` (the contract's limit rule). */
function admits(slots: Slots, limit: number): boolean {
  return slots.size < limit && slots.size < limitOf(slots);
}

/** The limit in force: the smallest of the live slots' limits (`Infinity` with none). */
function limitOf(slots: Slots): number {
  let limit = Number.POSITIVE_INFINITY;
  for (const slot of slots.values()) {
    if (slot.limit < limit) {
      limit = slot.limit;
    }
  }
  return limit;
}

/** The performance.now() time the first of `slots` expires (`Infinity`: none expires). */
function soonestExpiry(slots: Slots): number {
  let soonest = Number.POSITIVE_INFINITY;
  for (const slot of slots.values()) {
    if (slot.expiresAt !== null && slot.expiresAt < soonest) {
      soonest = slot.expiresAt;
    }
  }
  return soonest;
}

function soonestRemaining(slots: Slots, now: number): TimeSpan | null {
  const soonest = soonestExpiry(slots);
  return soonest === Number.POSITIVE_INFINITY ? null : TimeSpan.fromMilliseconds(soonest - now);
}

function expiresAt(ttl: TimeSpan | null, now: number): number | null {
  return ttl === null ? null : now + ttl.toMilliseconds();
}

function remaining(at: number | null, now: number): TimeSpan | null {
  return at === null ? null : TimeSpan.fromMilliseconds(at - now);
}
