import { delay } from "../../../task/timers.js";
import { TimeSpan } from "../../../time-span/time-span.js";
import type {
  ILockAdapter,
  LockAcquireResult,
  LockAdapterState,
} from "../../contracts/lock-adapter.js";

const MIN_WRITES_BETWEEN_SWEEPS = 64;

type Hold = { owner: string; expiresAt: number | null; fencingToken: number };

/**
 * Locks in this process's memory: the embedded default, and the adapter for tests of code that
 * uses hasp. Expiry is lazy (no timer per lock) on the monotonic clock; a release wakes the
 * longest-waiting waiter of its key (the next release the next one); entries of free keys are swept as the map is written, so
 * nothing stays behind. Tokens come from one counter for the whole adapter, so they increase
 * per key without keeping state for free keys.
 */
export class MemoryLockAdapter implements ILockAdapter {
  readonly #holds = new Map<string, Hold>();
  readonly #waiters = new Map<string, Set<() => void>>();
  #lastToken = 0;
  #writesSinceSweep = 0;
  #writesBetweenSweeps = MIN_WRITES_BETWEEN_SWEEPS;

  async acquire(key: string, lockId: string, ttl: TimeSpan | null): Promise<LockAcquireResult> {
    const now = performance.now();
    const hold = this.#live(key, now);
    const expiresAt = ttl === null ? null : now + ttl.toMilliseconds();
    if (hold !== undefined) {
      if (hold.owner !== lockId) {
        return { acquired: false, owner: hold.owner, remainingTime: remaining(hold, now) };
      }
      hold.expiresAt = expiresAt;
      return { acquired: true, fencingToken: hold.fencingToken };
    }
    this.#lastToken += 1;
    this.#holds.set(key, { owner: lockId, expiresAt, fencingToken: this.#lastToken });
    this.#sweepNowAndThen(now);
    return { acquired: true, fencingToken: this.#lastToken };
  }

  async release(key: string, lockId: string): Promise<boolean> {
    const hold = this.#live(key, performance.now());
    if (hold?.owner !== lockId) {
      return false;
    }
    this.#free(key);
    return true;
  }

  async forceRelease(key: string): Promise<boolean> {
    if (this.#live(key, performance.now()) === undefined) {
      return false;
    }
    this.#free(key);
    return true;
  }

  async refresh(key: string, lockId: string, ttl: TimeSpan): Promise<boolean> {
    const now = performance.now();
    const hold = this.#live(key, now);
    if (hold?.owner !== lockId || hold.expiresAt === null) {
      return false;
    }
    hold.expiresAt = now + ttl.toMilliseconds();
    return true;
  }

  async getState(key: string): Promise<LockAdapterState | null> {
    const now = performance.now();
    const hold = this.#live(key, now);
    return hold === undefined
      ? null
      : { owner: hold.owner, remainingTime: remaining(hold, now), fencingToken: hold.fencingToken };
  }

  async waitForRelease(key: string, maxWait: TimeSpan, signal: AbortSignal): Promise<void> {
    if (signal.aborted) {
      throw signal.reason;
    }
    // Freed since the caller's last attempt: a release it would otherwise never hear about.
    if (this.#live(key, performance.now()) === undefined) {
      return;
    }
    let waiters = this.#waiters.get(key);
    if (waiters === undefined) {
      waiters = new Set();
      this.#waiters.set(key, waiters);
    }
    // One controller ended by a release or by the caller, rather than AbortSignal.any: on
    // Node 20 every `any` over a long-lived caller signal stays referenced by it (nodejs/node
    // #55351), so each wait would leave a trace behind.
    const wake = new AbortController();
    const onRelease = () => wake.abort();
    const onAbort = () => wake.abort(signal.reason);
    waiters.add(onRelease);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await delay(maxWait, wake.signal);
    } catch (error) {
      if (signal.aborted) {
        throw signal.reason;
      }
      if (!wake.signal.aborted) {
        throw error;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      waiters.delete(onRelease);
      if (waiters.size === 0 && this.#waiters.get(key) === waiters) {
        this.#waiters.delete(key);
      }
    }
  }

  /** The key's hold if it is live; an expired one is dropped on the way. */
  #live(key: string, now: number): Hold | undefined {
    const hold = this.#holds.get(key);
    if (hold !== undefined && hold.expiresAt !== null && hold.expiresAt <= now) {
      this.#holds.delete(key);
      return undefined;
    }
    return hold;
  }

  #free(key: string): void {
    this.#holds.delete(key);
    // One release, one waiter (the longest waiting): only one can take the key, and waking
    // them all would cost an attempt each. A woken waiter that does not take it (aborted, or
    // beaten by a newcomer) leaves the next release to wake the next one.
    const waiters = this.#waiters.get(key);
    const first = waiters?.values().next();
    if (waiters !== undefined && first !== undefined && first.done !== true) {
      // Out of the queue at once, so a second release right after wakes the next waiter.
      waiters.delete(first.value);
      first.value();
    }
  }

  /** Drops expired holds after about as many writes as there are holds: O(1) amortised. */
  #sweepNowAndThen(now: number): void {
    this.#writesSinceSweep += 1;
    if (this.#writesSinceSweep < this.#writesBetweenSweeps) {
      return;
    }
    this.#writesSinceSweep = 0;
    for (const [key, hold] of this.#holds) {
      if (hold.expiresAt !== null && hold.expiresAt <= now) {
        this.#holds.delete(key);
      }
    }
    // Fixed at the sweep, not compared with the live size: writes to new keys grow the map as
    // fast as the count, so a moving target would never be reached and expired entries of keys
    // nobody touches again would pile up.
    this.#writesBetweenSweeps = Math.max(MIN_WRITES_BETWEEN_SWEEPS, this.#holds.size);
  }

  /** How many keys have an entry (live or not yet swept): for tests of leaks. */
  get size(): number {
    return this.#holds.size;
  }
}

function remaining(hold: Hold, now: number): TimeSpan | null {
  return hold.expiresAt === null ? null : TimeSpan.fromMilliseconds(hold.expiresAt - now);
}
