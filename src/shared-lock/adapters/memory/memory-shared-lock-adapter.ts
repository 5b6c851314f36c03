import {
  ANSWER_FALSE,
  ANSWER_TRUE,
  expiresAt,
  MemoryKeys,
  remainingTime,
} from "../../../backends/memory/memory-keys.js";
import type { KeyWaiters } from "../../../backends/memory/memory-waiters.js";
import { type Slot, SlotSet } from "../../../backends/memory/slot-set.js";
import { badLimit } from "../../../primitive/slot-limit.js";
import { TimeSpan } from "../../../time-span/time-span.js";
import type {
  ISharedLockAdapter,
  SharedLockAdapterState,
  SharedLockHandOff,
  SharedLockReaderAcquireResult,
  SharedLockWaitClaim,
  SharedLockWriterAcquireResult,
} from "../../contracts/shared-lock-adapter.js";

const ADAPTER = "MemorySharedLockAdapter";

type Writer = { readonly owner: string; expiresAt: number | null; readonly fencingToken: number };

/** What one key holds: its writer or its reader slots (never both live), either may be absent. */
type SharedEntry = { writer: Writer | null; readers: SlotSet | null };

type SharedWaiters = KeyWaiters<SharedLockWaitClaim, SharedLockHandOff>;

/**
 * Shared (reader-writer) locks in this process's memory. Per key, its writer, its reader slots
 * (by lock id, each with the limit it was taken with) and one FIFO of waits, writers' and
 * readers' claims together in arrival order. Expiry is lazy (no timer per hold) on the
 * monotonic clock: the key's expired writer and reader slots are dropped as each operation on
 * it begins, so a crashed reader keeps a writer out no longer than its TTL, whoever calls next.
 *
 * A release, a force release, or an expiry found with waits queued serves the queue in the same
 * step, oldest first: a reader's claim is handed a slot while no writer holds and the limit rule
 * admits it; a writer's claim is handed the key when nobody holds it; the first claim that
 * cannot be served stops the serving, so nothing passes it. The last reader out thus hands the
 * key to the writer at the head, and a writer's release admits together the readers queued
 * before the next writer. While any wait is queued, a newcomer (writer or reader) is refused,
 * so a waiting writer holds new readers back. A claim whose lock id already holds that side (two
 * waits of one owner) is answered with that hold. A key's entry goes once its last holder and
 * waiter leave; expired holds of keys nobody touches again are swept as the map is written.
 * Tokens come from one counter for the whole adapter, for both sides, so they increase per key.
 */
export class MemorySharedLockAdapter implements ISharedLockAdapter {
  readonly #keys: MemoryKeys<SharedEntry, SharedLockWaitClaim, SharedLockHandOff>;
  readonly #entries: Map<string, SharedEntry>;
  readonly #waiters: Map<string, SharedWaiters>;

  constructor() {
    this.#keys = new MemoryKeys<SharedEntry, SharedLockWaitClaim, SharedLockHandOff>(
      (queue) => this.#serve(queue),
      (key, entry, now) => {
        dropExpired(entry, now);
        if (isEmpty(entry)) {
          this.#entries.delete(key);
        }
      },
    );
    this.#entries = this.#keys.entries;
    this.#waiters = this.#keys.waiters;
  }

  /** `true`: a wait keeps its place while holders refresh, and is served at their expiry. */
  readonly waitsPastExpiry = true;

  /** `true`: a claimed wait takes what it claims at once when an acquire would (or re-takes its own). */
  readonly waitAcquires = true;

  /** Records no intent: the queued writer claims hold newcomers back. */
  async acquireWriter(
    key: string,
    lockId: string,
    ttl: TimeSpan | null,
    _intent: TimeSpan | null,
  ): Promise<SharedLockWriterAcquireResult> {
    const now = performance.now();
    const entry = this.#live(key, now);
    const writer = entry?.writer;
    if (writer != null) {
      if (writer.owner === lockId) {
        writer.expiresAt = expiresAt(ttl, now);
        return { acquired: true, fencingToken: writer.fencingToken };
      }
      return {
        acquired: false,
        blockedBy: "writer",
        owner: writer.owner,
        remainingTime: remainingTime(writer.expiresAt, now),
      };
    }
    const readers = entry?.readers;
    if (readers != null && readers.size > 0) {
      return {
        acquired: false,
        blockedBy: "readers",
        acquiredSlotsCount: readers.size,
        remainingTime: soonestRemaining(readers, now),
      };
    }
    if (this.#waiters.has(key)) {
      return { acquired: false, blockedBy: "waiters", remainingTime: null };
    }
    return { acquired: true, fencingToken: this.#takeWriter(key, entry, lockId, ttl, now) };
  }

  releaseWriter(key: string, lockId: string): Promise<boolean> {
    const now = performance.now();
    const entry = this.#live(key, now);
    if (entry?.writer?.owner !== lockId) {
      return ANSWER_FALSE;
    }
    entry.writer = null;
    this.#freed(key, entry, now);
    return ANSWER_TRUE;
  }

  forceReleaseWriter(key: string): Promise<boolean> {
    const now = performance.now();
    const entry = this.#live(key, now);
    if (entry?.writer == null) {
      return ANSWER_FALSE;
    }
    entry.writer = null;
    this.#freed(key, entry, now);
    return ANSWER_TRUE;
  }

  refreshWriter(key: string, lockId: string, ttl: TimeSpan): Promise<boolean> {
    const now = performance.now();
    const writer = this.#live(key, now)?.writer;
    if (writer?.owner !== lockId || writer.expiresAt === null) {
      return ANSWER_FALSE;
    }
    writer.expiresAt = now + ttl.toMilliseconds();
    return ANSWER_TRUE;
  }

  async acquireReader(
    key: string,
    lockId: string,
    limit: number,
    ttl: TimeSpan | null,
  ): Promise<SharedLockReaderAcquireResult> {
    const bad = badLimit(ADAPTER, limit);
    if (bad !== undefined) {
      throw bad;
    }
    const now = performance.now();
    const entry = this.#live(key, now);
    const writer = entry?.writer;
    if (writer != null) {
      return {
        acquired: false,
        blockedBy: "writer",
        owner: writer.owner,
        remainingTime: remainingTime(writer.expiresAt, now),
      };
    }
    const readers = entry?.readers ?? null;
    const own = readers?.get(lockId);
    if (own !== undefined) {
      own.expiresAt = expiresAt(ttl, now);
      return { acquired: true, fencingToken: own.fencingToken };
    }
    const count = readers?.size ?? 0;
    if (this.#waiters.has(key)) {
      return {
        acquired: false,
        blockedBy: "waiters",
        acquiredSlotsCount: count,
        remainingTime: readers === null ? null : soonestRemaining(readers, now),
      };
    }
    if (readers !== null && !admits(readers, limit)) {
      return {
        acquired: false,
        blockedBy: "limit",
        limit: Math.min(limit, readers.limit()),
        acquiredSlotsCount: count,
        remainingTime: soonestRemaining(readers, now),
      };
    }
    return { acquired: true, fencingToken: this.#takeReader(key, entry, lockId, limit, ttl, now) };
  }

  releaseReader(key: string, lockId: string): Promise<boolean> {
    const now = performance.now();
    const entry = this.#live(key, now);
    if (entry?.readers == null || !entry.readers.delete(lockId)) {
      return ANSWER_FALSE;
    }
    this.#freed(key, entry, now);
    return ANSWER_TRUE;
  }

  forceReleaseAllReaders(key: string): Promise<boolean> {
    const now = performance.now();
    const entry = this.#live(key, now);
    if (entry?.readers == null || entry.readers.size === 0) {
      return ANSWER_FALSE;
    }
    entry.readers.clear();
    this.#freed(key, entry, now);
    return ANSWER_TRUE;
  }

  refreshReader(key: string, lockId: string, ttl: TimeSpan): Promise<boolean> {
    const now = performance.now();
    const slot = this.#live(key, now)?.readers?.get(lockId);
    if (slot === undefined || slot.expiresAt === null) {
      return ANSWER_FALSE;
    }
    slot.expiresAt = now + ttl.toMilliseconds();
    return ANSWER_TRUE;
  }

  forceRelease(key: string): Promise<boolean> {
    const now = performance.now();
    const entry = this.#live(key, now);
    if (entry === undefined) {
      return ANSWER_FALSE;
    }
    entry.writer = null;
    entry.readers?.clear();
    this.#freed(key, entry, now);
    return ANSWER_TRUE;
  }

  async getState(key: string, lockId: string): Promise<SharedLockAdapterState | null> {
    const now = performance.now();
    const entry = this.#live(key, now);
    if (entry === undefined) {
      return null;
    }
    const writer = entry.writer;
    if (writer !== null) {
      return {
        heldBy: "writer",
        owner: writer.owner,
        remainingTime: remainingTime(writer.expiresAt, now),
        fencingToken: writer.fencingToken,
      };
    }
    // A live entry without a writer has reader slots.
    const readers = entry.readers as SlotSet;
    const own = readers.get(lockId);
    return {
      heldBy: "readers",
      limit: readers.limit(),
      acquiredSlotsCount: readers.size,
      slot:
        own === undefined
          ? null
          : { remainingTime: remainingTime(own.expiresAt, now), fencingToken: own.fencingToken },
      writerWaiting: this.#writerWaiting(key, now),
    };
  }

  waitForRelease(
    key: string,
    maxWait: TimeSpan,
    signal: AbortSignal,
    claim: SharedLockWaitClaim,
  ): Promise<SharedLockHandOff | undefined> {
    if (signal.aborted) {
      return Promise.reject(signal.reason);
    }
    const bad = claim.side === "reader" ? badLimit(ADAPTER, claim.limit) : undefined;
    if (bad !== undefined) {
      return Promise.reject(bad);
    }
    const now = performance.now();
    const entry = this.#live(key, now);
    const own = entry === undefined ? undefined : ownHold(entry, claim);
    if (own !== undefined) {
      own.expiresAt = expiresAt(claim.ttl, now);
      return Promise.resolve({ acquired: true, fencingToken: own.fencingToken });
    }
    if (!this.#waiters.has(key)) {
      // A claimed wait acquires (waitAcquires); the caller counts the TTL from its request.
      const taken = entry ?? { writer: null, readers: null };
      const granted = this.#grant(claim, taken, now);
      if (granted !== undefined) {
        if (entry === undefined) {
          this.#entries.set(key, taken);
          this.#keys.written(now);
        }
        return Promise.resolve({ acquired: true, fencingToken: granted.fencingToken });
      }
    }
    const deadline = now + maxWait.toMilliseconds();
    const armAt = entry === undefined ? Number.POSITIVE_INFINITY : soonestExpiry(entry);
    return this.#keys.wait(key, signal, claim, deadline, armAt);
  }

  /** How many keys have an entry (holds, live or not yet swept, or waits): for tests of leaks. */
  get size(): number {
    return this.#keys.size;
  }

  /**
   * The key's entry while anything of it is live, `undefined` otherwise. Expired holds are
   * dropped on the way and, with waits queued, the queue is served as at a release.
   */
  #live(key: string, now: number): SharedEntry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) {
      return undefined;
    }
    if (dropExpired(entry, now)) {
      this.#freed(key, entry, now);
    }
    return isEmpty(entry) ? undefined : entry;
  }

  /** Holds of the key were freed: its queue is served, and an empty key's entry goes. */
  #freed(key: string, entry: SharedEntry, now: number): void {
    const queue = this.#waiters.get(key);
    if (queue !== undefined) {
      this.#handOut(queue, entry, now);
    }
    if (isEmpty(entry)) {
      this.#entries.delete(key);
    } else {
      this.#entries.set(key, entry);
      if (queue !== undefined && this.#waiters.get(key) === queue) {
        // The next waits are served at the soonest expiry, if it comes first.
        queue.armBy(soonestExpiry(entry));
      }
    }
  }

  /**
   * Serves the queue, oldest first, in this very step (no newcomer can come in between). The
   * first claim that cannot be served stops the serving, and keeps the ones behind it waiting.
   * Waits past their deadline are let go on the way.
   */
  #handOut(queue: SharedWaiters, entry: SharedEntry, now: number): void {
    let waiter = queue.head;
    while (waiter !== undefined) {
      const next = waiter.next;
      const granted =
        waiter.deadline <= now
          ? undefined
          : this.#grant(waiter.claim as SharedLockWaitClaim, entry, now);
      if (granted === undefined && waiter.deadline > now) {
        return;
      }
      waiter.leave();
      waiter.resolve(granted);
      waiter = next;
    }
  }

  /**
   * What `claim` is given now, if anything: its lock id's live hold of that side (two waits of
   * one owner), or a new hold: a reader slot while no writer holds and the limit rule admits
   * it, the key while nobody holds it.
   */
  #grant(
    claim: SharedLockWaitClaim,
    entry: SharedEntry,
    now: number,
  ): SharedLockHandOff | undefined {
    const own = ownHold(entry, claim);
    if (own !== undefined) {
      return { acquired: true, fencingToken: own.fencingToken };
    }
    const free =
      claim.side === "writer"
        ? isEmpty(entry)
        : entry.writer === null && (entry.readers === null || admits(entry.readers, claim.limit));
    if (!free) {
      return undefined;
    }
    const fencingToken = this.#keys.nextToken();
    const at = expiresAt(claim.ttl, now);
    if (claim.side === "writer") {
      entry.writer = { owner: claim.lockId, expiresAt: at, fencingToken };
    } else {
      addReader(entry, { id: claim.lockId, limit: claim.limit, expiresAt: at, fencingToken });
    }
    return claim.ttl === null
      ? { acquired: true, fencingToken }
      : { acquired: true, fencingToken, remainingTime: claim.ttl };
  }

  /**
   * The queue's timer: holds may have expired (the queue is then served), or waits ended (the
   * claim after them may be servable now).
   */
  #serve(queue: SharedWaiters): void {
    const now = performance.now();
    // Waits past their deadline leave first: none of them may be handed anything.
    const next = queue.timeOut(now);
    const key = queue.key;
    if (this.#waiters.get(key) !== queue) {
      return;
    }
    const entry = this.#live(key, now) ?? { writer: null, readers: null };
    this.#freed(key, entry, now);
    if (this.#waiters.get(key) !== queue) {
      return;
    }
    // Refreshed holds: wake again at the new soonest expiry.
    queue.armBy(Math.min(next, soonestExpiry(entry)));
  }

  /** Whether a writer's claim is queued on `key` whose wait has not ended. */
  #writerWaiting(key: string, now: number): boolean {
    let waiter = this.#waiters.get(key)?.head;
    while (waiter !== undefined) {
      if (waiter.claim?.side === "writer" && waiter.deadline > now) {
        return true;
      }
      waiter = waiter.next;
    }
    return false;
  }

  /** `lockId` becomes the writer of `key`, which nobody holds and nobody waits for: its token. */
  #takeWriter(
    key: string,
    entry: SharedEntry | undefined,
    lockId: string,
    ttl: TimeSpan | null,
    now: number,
  ): number {
    const fencingToken = this.#keys.nextToken();
    const writer = { owner: lockId, expiresAt: expiresAt(ttl, now), fencingToken };
    if (entry === undefined) {
      this.#entries.set(key, { writer, readers: null });
      this.#keys.written(now);
    } else {
      entry.writer = writer;
    }
    return fencingToken;
  }

  /** A new reader slot of `lockId` under `key`, which the rules admit: its token. */
  #takeReader(
    key: string,
    entry: SharedEntry | undefined,
    lockId: string,
    limit: number,
    ttl: TimeSpan | null,
    now: number,
  ): number {
    const fencingToken = this.#keys.nextToken();
    const slot = { id: lockId, limit, expiresAt: expiresAt(ttl, now), fencingToken };
    if (entry === undefined) {
      this.#entries.set(key, { writer: null, readers: new SlotSet(slot) });
      this.#keys.written(now);
    } else {
      addReader(entry, slot);
    }
    return fencingToken;
  }
}

/** `claim`'s lock id's live hold of the side it claims, if any. */
function ownHold(entry: SharedEntry, claim: SharedLockWaitClaim): Writer | Slot | undefined {
  if (claim.side === "reader") {
    return entry.readers?.get(claim.lockId);
  }
  return entry.writer?.owner === claim.lockId ? entry.writer : undefined;
}

function addReader(entry: SharedEntry, slot: Slot): void {
  if (entry.readers === null) {
    entry.readers = new SlotSet(slot);
  } else {
    entry.readers.add(slot);
  }
}

/** Drops the entry's expired writer and reader slots at `now`; whether there were any. */
function dropExpired(entry: SharedEntry, now: number): boolean {
  let dropped = false;
  const writer = entry.writer;
  if (writer !== null && writer.expiresAt !== null && writer.expiresAt <= now) {
    entry.writer = null;
    dropped = true;
  }
  if (entry.readers?.dropExpired(now) === true) {
    dropped = true;
  }
  return dropped;
}

function isEmpty(entry: SharedEntry): boolean {
  return entry.writer === null && (entry.readers === null || entry.readers.size === 0);
}

/** Whether a new slot of limit `limit` may join `readers` (the semaphore's limit rule). */
function admits(readers: SlotSet, limit: number): boolean {
  return readers.size < limit && readers.size < readers.limit();
}

/** The performance.now() time the entry's first hold expires (`Infinity`: none does). */
function soonestExpiry(entry: SharedEntry): number {
  const readers = entry.readers?.soonestExpiry() ?? Number.POSITIVE_INFINITY;
  return Math.min(entry.writer?.expiresAt ?? Number.POSITIVE_INFINITY, readers);
}

function soonestRemaining(readers: SlotSet, now: number): TimeSpan | null {
  const soonest = readers.soonestExpiry();
  return soonest === Number.POSITIVE_INFINITY ? null : TimeSpan.fromMilliseconds(soonest - now);
}
