import {
  ANSWER_FALSE,
  ANSWER_TRUE,
  expiresAt,
  MemoryKeys,
  remainingTime,
} from "../../../backends/memory/memory-keys.js";
import type { KeyWaiters } from "../../../backends/memory/memory-waiters.js";
import { SlotSet } from "../../../backends/memory/slot-set.js";
import { badLimit } from "../../../primitive/slot-limit.js";
import { TimeSpan } from "../../../time-span/time-span.js";
import type {
  ISemaphoreAdapter,
  SemaphoreAcquireResult,
  SemaphoreAdapterState,
  SemaphoreHandOff,
  SemaphoreWaitClaim,
} from "../../contracts/semaphore-adapter.js";

const ADAPTER = "MemorySemaphoreAdapter";

type SlotWaiters = KeyWaiters<SemaphoreWaitClaim, SemaphoreHandOff>;

/**
 * Semaphores in this process's memory. Per key, its live slots (by slot id) and a FIFO of
 * waiters; expiry is lazy (no timer per slot) on the monotonic clock: expired slots are dropped
 * as each operation on the key begins. A release, a force release or the expiry of a slot with
 * waiters queued serves the queue in the same step: the oldest waiters are handed the free
 * slots (or woken, when they made no claim) while the limit rule admits them, so no newcomer
 * slips in and a waiter keeps its place while holders refresh. While waiters are queued, a free
 * slot is theirs: a newcomer is refused even where the rule would admit it (the oldest waiter
 * may be held back by its own smaller limit, and must not be passed forever). A key's entry
 * goes once its last slot and waiter leave; expired slots of keys nobody touches again are
 * swept as the map is written. Tokens come from one counter for the whole adapter, so they
 * increase per key.
 */
export class MemorySemaphoreAdapter implements ISemaphoreAdapter {
  readonly #keys: MemoryKeys<SlotSet, SemaphoreWaitClaim, SemaphoreHandOff>;
  readonly #slots: Map<string, SlotSet>;
  readonly #waiters: Map<string, SlotWaiters>;

  constructor() {
    this.#keys = new MemoryKeys<SlotSet, SemaphoreWaitClaim, SemaphoreHandOff>(
      (queue) => this.#serve(queue),
      (key, _slots, now) => this.#live(key, now),
    );
    this.#slots = this.#keys.entries;
    this.#waiters = this.#keys.waiters;
  }

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
    const bad = badLimit(ADAPTER, limit);
    if (bad !== undefined) {
      throw bad;
    }
    const now = performance.now();
    const slots = this.#live(key, now);
    const own = slots?.get(slotId);
    if (own !== undefined) {
      own.expiresAt = expiresAt(ttl, now);
      return { acquired: true, fencingToken: own.fencingToken };
    }
    if (slots === undefined || (admits(slots, limit) && !this.#waiters.has(key))) {
      return { acquired: true, fencingToken: this.#take(key, slots, slotId, limit, ttl, now) };
    }
    return {
      acquired: false,
      limit: Math.min(limit, slots.limit()),
      acquiredSlotsCount: slots.size,
      remainingTime: soonestRemaining(slots, now),
    };
  }

  release(key: string, slotId: string): Promise<boolean> {
    const now = performance.now();
    const slots = this.#live(key, now);
    if (slots === undefined || !slots.delete(slotId)) {
      return ANSWER_FALSE;
    }
    this.#freed(key, slots, now);
    return ANSWER_TRUE;
  }

  forceReleaseAll(key: string): Promise<boolean> {
    const now = performance.now();
    const slots = this.#live(key, now);
    if (slots === undefined) {
      return ANSWER_FALSE;
    }
    slots.clear();
    this.#freed(key, slots, now);
    return ANSWER_TRUE;
  }

  refresh(key: string, slotId: string, ttl: TimeSpan): Promise<boolean> {
    const now = performance.now();
    const slot = this.#live(key, now)?.get(slotId);
    if (slot === undefined || slot.expiresAt === null) {
      return ANSWER_FALSE;
    }
    slot.expiresAt = now + ttl.toMilliseconds();
    return ANSWER_TRUE;
  }

  async getState(key: string, slotId: string): Promise<SemaphoreAdapterState | null> {
    const now = performance.now();
    const slots = this.#live(key, now);
    if (slots === undefined) {
      return null;
    }
    const own = slots.get(slotId);
    return {
      limit: slots.limit(),
      acquiredSlotsCount: slots.size,
      slot:
        own === undefined
          ? null
          : { remainingTime: remainingTime(own.expiresAt, now), fencingToken: own.fencingToken },
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
    const bad = claim === undefined ? undefined : badLimit(ADAPTER, claim.limit);
    if (bad !== undefined) {
      return Promise.reject(bad);
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
      if (slots === undefined || (admits(slots, claim.limit) && !this.#waiters.has(key))) {
        const fencingToken = this.#take(key, slots, claim.slotId, claim.limit, claim.ttl, now);
        return Promise.resolve({ acquired: true, fencingToken });
      }
    } else if (slots === undefined || slots.size < slots.limit()) {
      // Freed since the caller's last attempt: a release it would otherwise never hear about.
      return Promise.resolve(undefined);
    }
    const deadline = now + maxWait.toMilliseconds();
    return this.#keys.wait(key, signal, claim, deadline, (slots as SlotSet).soonestExpiry());
  }

  /**
   * The key's live slots, `undefined` when it has none. Expired slots are dropped on the way
   * and, with waiters queued, their places handed over as a release would.
   */
  #live(key: string, now: number): SlotSet | undefined {
    const slots = this.#slots.get(key);
    if (slots === undefined) {
      return undefined;
    }
    if (slots.dropExpired(now)) {
      this.#freed(key, slots, now);
    }
    return slots.size === 0 ? undefined : slots;
  }

  /** Slots of the key were freed: its queue is served, and an empty key's entry goes. */
  #freed(key: string, slots: SlotSet, now: number): void {
    const queue = this.#waiters.get(key);
    if (queue !== undefined) {
      this.#handOut(queue, slots, now);
    }
    if (slots.size === 0) {
      this.#slots.delete(key);
    } else if (queue !== undefined && this.#waiters.get(key) === queue) {
      // The next waiters are served at the soonest expiry, if it comes first.
      queue.armBy(slots.soonestExpiry());
    }
  }

  /**
   * Serves the queue, oldest first, while the limit rule admits its head: a claim is handed a
   * slot in this very step (no newcomer can take it in between), a waiter without a claim is
   * woken and a slot kept in reckoning for it (only that many can take one). A claim whose
   * holder already has a live slot (two waits of one owner) is answered with that slot. A head
   * the rule does not admit keeps the ones behind it waiting.
   */
  #handOut(queue: SlotWaiters, slots: SlotSet, now: number): void {
    let woken = 0;
    let waiter = queue.head;
    while (waiter !== undefined) {
      const claim = waiter.claim;
      const own = claim === undefined ? undefined : slots.get(claim.slotId);
      const count = slots.size + woken;
      const admitted =
        own !== undefined ||
        (count < slots.limit() && (claim === undefined || count < claim.limit));
      if (!admitted) {
        return;
      }
      waiter.leave();
      if (claim === undefined) {
        woken += 1;
        waiter.resolve(undefined);
      } else if (own !== undefined) {
        waiter.resolve({ acquired: true, fencingToken: own.fencingToken });
      } else {
        const fencingToken = this.#keys.nextToken();
        slots.add({
          id: claim.slotId,
          limit: claim.limit,
          expiresAt: expiresAt(claim.ttl, now),
          fencingToken,
        });
        waiter.resolve(
          claim.ttl === null
            ? { acquired: true, fencingToken }
            : { acquired: true, fencingToken, remainingTime: claim.ttl },
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
    queue.armBy(Math.min(next, slots === undefined ? next : slots.soonestExpiry()));
  }

  /** A new slot of `slotId` under `key`, which the limit rule admits: its token. */
  #take(
    key: string,
    slots: SlotSet | undefined,
    slotId: string,
    limit: number,
    ttl: TimeSpan | null,
    now: number,
  ): number {
    const fencingToken = this.#keys.nextToken();
    const slot = { id: slotId, limit, expiresAt: expiresAt(ttl, now), fencingToken };
    if (slots === undefined) {
      this.#slots.set(key, new SlotSet(slot));
    } else {
      slots.add(slot);
    }
    this.#keys.written(now);
    return fencingToken;
  }

  /** How many keys have an entry (slots, live or not yet swept, or waiters): for tests of leaks. */
  get size(): number {
    return this.#keys.size;
  }
}

/** Whether a new slot of limit `limit` may join `slots` (the contract's limit rule). */
function admits(slots: SlotSet, limit: number): boolean {
  return slots.size < limit && slots.size < slots.limit();
}

function soonestRemaining(slots: SlotSet, now: number): TimeSpan | null {
  const soonest = slots.soonestExpiry();
  return soonest === Number.POSITIVE_INFINITY ? null : TimeSpan.fromMilliseconds(soonest - now);
}
