// What the memory adapters (lock, semaphore) keep alike: per key, what is held (an entry of the
// primitive's own shape) and its queue of waits; one token counter for the adapter; the sweep
// of entries nobody touches again; the monotonic clock's arithmetic. Each adapter decides what
// an entry holds, when it has expired and who is served.

import { TimeSpan } from "../../time-span/time-span.js";
import { type KeyWaiters, queueOf, type SignalWatch, Waiter, watchOf } from "./memory-waiters.js";

const MIN_WRITES_BETWEEN_SWEEPS = 64;

/** Answers of a release or refresh: settled promises are safe to share, and cheaper than one per call. */
export const ANSWER_TRUE = Promise.resolve(true);
/** See {@link ANSWER_TRUE}. */
export const ANSWER_FALSE = Promise.resolve(false);

/**
 * The entries and waits of one memory adapter. Composition, not a base class: the adapters are
 * public classes, and their hot paths stay in one file each.
 */
export class MemoryKeys<TEntry, TClaim, THandOff> {
  /** What is held, by key: present while anything is (or was, until swept) held. */
  readonly entries = new Map<string, TEntry>();
  /** The waits of each key, oldest first; present while a key has any. */
  readonly waiters = new Map<string, KeyWaiters<TClaim, THandOff>>();
  readonly #watches = new Map<AbortSignal, SignalWatch<TClaim, THandOff>>();
  readonly #due: (queue: KeyWaiters<TClaim, THandOff>) => void;
  readonly #sweep: (key: string, entry: TEntry, now: number) => void;
  #lastToken = 0;
  #writesSinceSweep = 0;
  #writesBetweenSweeps = MIN_WRITES_BETWEEN_SWEEPS;

  /**
   * @param due A queue's timer fired: serve its key (an expiry), end the waits past their
   *   deadline, re-arm.
   * @param sweep Drops what has expired of `entry` (a key with no waits), at a sweep.
   */
  constructor(
    due: (queue: KeyWaiters<TClaim, THandOff>) => void,
    sweep: (key: string, entry: TEntry, now: number) => void,
  ) {
    this.#due = due;
    this.#sweep = sweep;
  }

  /**
   * The next fencing token. One counter for the whole adapter: tokens increase per key without
   * keeping anything of free keys.
   */
  nextToken(): number {
    this.#lastToken += 1;
    return this.#lastToken;
  }

  /**
   * A wait on `key` until a release serves it, `deadline` (performance.now()) passes, or
   * `signal` aborts; the key's queue is woken at `armAt` at the latest (an expiry, which is
   * served as a release would be).
   */
  wait(
    key: string,
    signal: AbortSignal,
    claim: TClaim | undefined,
    deadline: number,
    armAt: number,
  ): Promise<THandOff | undefined> {
    const queue = queueOf(this.waiters, key, this.#due);
    queue.armBy(armAt);
    const watch = watchOf(this.#watches, signal);
    return new Promise<THandOff | undefined>((resolve, reject) => {
      new Waiter(queue, watch, claim, deadline, resolve, reject);
    });
  }

  /**
   * Counts a new entry, and sweeps keys with no waits after about as many writes as there are
   * keys: O(1) amortised. A key with waits is left to its queue's timer, which serves it.
   */
  written(now: number): void {
    this.#writesSinceSweep += 1;
    if (this.#writesSinceSweep < this.#writesBetweenSweeps) {
      return;
    }
    this.#writesSinceSweep = 0;
    for (const [key, entry] of this.entries) {
      if (!this.waiters.has(key)) {
        this.#sweep(key, entry, now);
      }
    }
    // Fixed at the sweep, not compared with the live size: writes to new keys grow the map as
    // fast as the count, so a moving target would never be reached and expired entries of keys
    // nobody touches again would pile up.
    this.#writesBetweenSweeps = Math.max(MIN_WRITES_BETWEEN_SWEEPS, this.entries.size);
  }

  /** How many keys have an entry or waits: for tests of leaks. */
  get size(): number {
    let size = this.entries.size;
    for (const key of this.waiters.keys()) {
      if (!this.entries.has(key)) {
        size += 1;
      }
    }
    return size;
  }
}

/** When a hold of `ttl` taken at `now` expires (performance.now()); `null`: never. */
export function expiresAt(ttl: TimeSpan | null, now: number): number | null {
  return ttl === null ? null : now + ttl.toMilliseconds();
}

/** What is left at `now` of a hold expiring at `at`; `null`: it never expires. */
export function remainingTime(at: number | null, now: number): TimeSpan | null {
  return at === null ? null : TimeSpan.fromMilliseconds(at - now);
}
