/** One holder's slot in memory. */
export type Slot = {
  readonly id: string;
  /** The limit it was taken with. */
  readonly limit: number;
  /** performance.now() time it expires; `null`: never. */
  expiresAt: number | null;
  readonly fencingToken: number;
};

/**
 * The slots of one key. Most keys have one slot at a time (a semaphore taken once, or mostly
 * free), so the first is kept in a field and a Map is made only from the second on: a Map is
 * the costliest thing an uncontended acquire would otherwise allocate.
 */
export class SlotSet {
  #only: Slot | undefined;
  /** Every slot, once a second one joined (`#only` is unused from then on). */
  #byId: Map<string, Slot> | undefined;

  constructor(first: Slot) {
    this.#only = first;
  }

  get size(): number {
    if (this.#byId !== undefined) {
      return this.#byId.size;
    }
    return this.#only === undefined ? 0 : 1;
  }

  get(id: string): Slot | undefined {
    if (this.#byId !== undefined) {
      return this.#byId.get(id);
    }
    return this.#only?.id === id ? this.#only : undefined;
  }

  /** Adds `slot`, whose id has no slot here. */
  add(slot: Slot): void {
    if (this.#byId !== undefined) {
      this.#byId.set(slot.id, slot);
    } else if (this.#only === undefined) {
      this.#only = slot;
    } else {
      this.#byId = new Map([
        [this.#only.id, this.#only],
        [slot.id, slot],
      ]);
      this.#only = undefined;
    }
  }

  delete(id: string): boolean {
    if (this.#byId !== undefined) {
      return this.#byId.delete(id);
    }
    if (this.#only?.id !== id) {
      return false;
    }
    this.#only = undefined;
    return true;
  }

  clear(): void {
    this.#only = undefined;
    this.#byId = undefined;
  }

  /** Drops the slots expired at `now`; whether there were any. */
  dropExpired(now: number): boolean {
    if (this.#byId === undefined) {
      if (this.#only === undefined || !expired(this.#only, now)) {
        return false;
      }
      this.#only = undefined;
      return true;
    }
    let dropped = false;
    for (const slot of this.#byId.values()) {
      if (expired(slot, now)) {
        this.#byId.delete(slot.id);
        dropped = true;
      }
    }
    return dropped;
  }

  /** The limit in force: the smallest of the slots' limits (`Infinity` with none). */
  limit(): number {
    if (this.#byId === undefined) {
      return this.#only?.limit ?? Number.POSITIVE_INFINITY;
    }
    let limit = Number.POSITIVE_INFINITY;
    for (const slot of this.#byId.values()) {
      if (slot.limit < limit) {
        limit = slot.limit;
      }
    }
    return limit;
  }

  /** The performance.now() time the first slot expires (`Infinity`: none expires). */
  soonestExpiry(): number {
    if (this.#byId === undefined) {
      return this.#only?.expiresAt ?? Number.POSITIVE_INFINITY;
    }
    let soonest = Number.POSITIVE_INFINITY;
    for (const slot of this.#byId.values()) {
      if (slot.expiresAt !== null && slot.expiresAt < soonest) {
        soonest = slot.expiresAt;
      }
    }
    return soonest;
  }
}

function expired(slot: Slot, now: number): boolean {
  return slot.expiresAt !== null && slot.expiresAt <= now;
}
