import { describe, expect, test } from "vitest";
import { badLimit } from "../../src/primitive/slot-limit.js";
import { MemorySharedLockAdapter } from "../../src/shared-lock/adapters/memory/memory-shared-lock-adapter.js";
import type {
  ISharedLockAdapter,
  SharedLockAdapterState,
  SharedLockReaderAcquireResult,
  SharedLockWaitClaim,
  SharedLockWriterAcquireResult,
} from "../../src/shared-lock/contracts/shared-lock-adapter.js";
import { sharedLockAdapterTestSuite } from "../../src/shared-lock/test-suites/shared-lock-adapter-test-suite.js";
import { TimeSpan } from "../../src/time-span/time-span.js";

sharedLockAdapterTestSuite({
  createAdapter: () => new MemorySharedLockAdapter(),
  instancesShareBackend: false,
});

const LONG_TTL = TimeSpan.fromMinutes(1);
const never = () => new AbortController().signal;

describe("MemorySharedLockAdapter", () => {
  test("nothing stays once the last holder and the last waiter leave", async () => {
    const adapter = new MemorySharedLockAdapter();
    await adapter.acquireReader("a", "r1", 2, LONG_TTL);
    await adapter.acquireReader("a", "r2", 2, null);
    await adapter.acquireWriter("b", "w", null, null);
    expect(adapter.size).toBe(2);
    const controller = new AbortController();
    const aborted = adapter.waitForRelease("a", LONG_TTL, controller.signal, {
      side: "writer",
      lockId: "w2",
      ttl: LONG_TTL,
    });
    const handedOver = adapter.waitForRelease("a", LONG_TTL, never(), {
      side: "writer",
      lockId: "w3",
      ttl: LONG_TTL,
    });
    controller.abort(new Error("gave up"));
    await expect(aborted).rejects.toThrow("gave up");
    await adapter.releaseReader("a", "r1");
    expect(adapter.size).toBe(2);
    await adapter.releaseReader("a", "r2");
    await expect(handedOver).resolves.toMatchObject({ acquired: true });
    await adapter.releaseWriter("a", "w3");
    await adapter.forceRelease("b");
    expect(adapter.size).toBe(0);
  });

  test("expired holds of keys nobody touches again are swept as other keys are written", async () => {
    const adapter = new MemorySharedLockAdapter();
    for (let i = 0; i < 200; i += 1) {
      const ttl = TimeSpan.fromMilliseconds(20);
      await (i % 2 === 0
        ? adapter.acquireReader(`request:${i}`, "worker", 2, ttl)
        : adapter.acquireWriter(`request:${i}`, "worker", ttl, null));
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (let i = 0; i < 600; i += 1) {
      await adapter.acquireWriter(`job:${i}`, "worker", LONG_TTL, null);
    }
    expect(adapter.size).toBeLessThan(800);
    for (let i = 0; i < 600; i += 1) {
      await adapter.releaseWriter(`job:${i}`, "worker");
    }
    expect(adapter.size).toBeLessThan(200);
  });
});

describe("MemorySharedLockAdapter under random interleavings", () => {
  // An attacker's schedule on one key: both sides' acquires with limits 1 to 3, releases,
  // refreshes, force releases, short TTLs running out, claimed waits of either side that time out
  // or are aborted. After every step: a writer is alone and is one that was granted the key;
  // readers never share the key beyond any one's limit; every new hold's token exceeds every
  // token issued before.
  test("2,000 random steps: exclusion, the limit rule and growing tokens hold throughout", async () => {
    const adapter = new MemorySharedLockAdapter();
    const ids = ["a", "b", "c", "d", "e", "f"];
    /** Each id's hold, as learnt from grants. */
    const holds = new Map<string, { side: "writer" | "reader"; limit: number; token: number }>();
    let lastToken = 0;
    let seed = 21;
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return Math.floor((seed / 2_147_483_648) * n);
    };
    const granted = (id: string, side: "writer" | "reader", limit: number, token: number) => {
      const known = holds.get(id);
      if (known?.token === token && known.side === side) {
        return;
      }
      expect(token, `a new hold of ${id} gets a greater token`).toBeGreaterThan(lastToken);
      lastToken = token;
      holds.set(id, { side, limit, token });
    };
    const pending: Promise<unknown>[] = [];
    for (let step = 0; step < 2_000; step += 1) {
      const id = ids[random(ids.length)] as string;
      const limit = 1 + random(3);
      const ttl = random(4) === 0 ? null : TimeSpan.fromMilliseconds(5 + random(40));
      switch (random(9)) {
        case 0: {
          const result = await adapter.acquireWriter("k", id, ttl, null);
          if (result.acquired) {
            granted(id, "writer", 0, result.fencingToken);
          }
          break;
        }
        case 1:
        case 2: {
          const result = await adapter.acquireReader("k", id, limit, ttl);
          if (result.acquired) {
            granted(id, "reader", limit, result.fencingToken);
          }
          break;
        }
        case 3:
          await (random(2) === 0 ? adapter.releaseWriter("k", id) : adapter.releaseReader("k", id));
          break;
        case 4: {
          const span = TimeSpan.fromMilliseconds(5 + random(40));
          await (random(2) === 0
            ? adapter.refreshWriter("k", id, span)
            : adapter.refreshReader("k", id, span));
          break;
        }
        case 5:
          if (random(10) === 0) {
            const force = random(3);
            await (force === 0
              ? adapter.forceRelease("k")
              : force === 1
                ? adapter.forceReleaseWriter("k")
                : adapter.forceReleaseAllReaders("k"));
          }
          break;
        default: {
          const controller = new AbortController();
          const claim: SharedLockWaitClaim =
            random(3) === 0
              ? { side: "writer", lockId: id, ttl }
              : { side: "reader", lockId: id, limit, ttl };
          const wait = adapter
            .waitForRelease("k", TimeSpan.fromMilliseconds(random(30)), controller.signal, claim)
            .then(
              (handOff) => {
                if (handOff !== undefined) {
                  granted(
                    id,
                    claim.side,
                    claim.side === "reader" ? claim.limit : 0,
                    handOff.fencingToken,
                  );
                }
              },
              () => undefined,
            );
          pending.push(wait);
          if (random(3) === 0) {
            setTimeout(() => controller.abort(new Error("gave up")), random(10));
          }
        }
      }
      if (random(5) === 0) {
        await new Promise((resolve) => setTimeout(resolve, random(8)));
      }
      for (const holder of ids) {
        const state = await adapter.getState("k", holder);
        if (state === null) {
          continue;
        }
        if (state.heldBy === "writer") {
          const known = holds.get(state.owner);
          expect(known, `${state.owner} was granted the key as its writer`).toMatchObject({
            side: "writer",
            token: state.fencingToken,
          });
          continue;
        }
        expect(state.acquiredSlotsCount).toBeLessThanOrEqual(state.limit);
        if (state.slot !== null) {
          const known = holds.get(holder);
          expect(known, `${holder}'s slot is one it was granted`).toMatchObject({
            side: "reader",
            token: state.slot.fencingToken,
          });
          expect(
            state.acquiredSlotsCount,
            `${holder} shares the key within its limit`,
          ).toBeLessThanOrEqual(known?.limit ?? 0);
        }
      }
    }
    await Promise.all(pending);
    await adapter.forceRelease("k");
    expect(adapter.size).toBe(0);
  });
});

// The suite's intent tests (writer preference on polling backends) run on the reference below,
// so that they are checked here too, not only against the database adapters.
describe("a polling reference (writers record intents)", () => {
  sharedLockAdapterTestSuite({
    createAdapter: () => new PollingSharedLockReference(),
    instancesShareBackend: false,
  });
});

/**
 * A polling shared lock in memory, for this file only: no `waitForRelease`, so writers record
 * their intent (the plan's rules for MariaDB, SQLite, MongoDB and PostgreSQL without a
 * listener), and the suite's intent tests run here, not only on the database adapters.
 */
class PollingSharedLockReference implements ISharedLockAdapter {
  readonly #keys = new Map<string, PollingEntry>();
  #lastToken = 0;

  async acquireWriter(
    key: string,
    lockId: string,
    ttl: TimeSpan | null,
    intent: TimeSpan | null,
  ): Promise<SharedLockWriterAcquireResult> {
    const now = performance.now();
    const entry = this.#live(key, now);
    const refused = (refusal: SharedLockWriterAcquireResult): SharedLockWriterAcquireResult => {
      if (intent !== null && (entry.intent === null || entry.intent.owner === lockId)) {
        entry.intent = { owner: lockId, until: now + intent.toMilliseconds() };
      }
      this.#keep(key, entry);
      return refusal;
    };
    if (entry.writer !== null) {
      if (entry.writer.owner === lockId) {
        entry.writer.expiresAt = expiry(ttl, now);
        return { acquired: true, fencingToken: entry.writer.token };
      }
      return refused({
        acquired: false,
        blockedBy: "writer",
        owner: entry.writer.owner,
        remainingTime: left(entry.writer.expiresAt, now),
      });
    }
    if (entry.readers.size > 0) {
      return refused({
        acquired: false,
        blockedBy: "readers",
        acquiredSlotsCount: entry.readers.size,
        remainingTime: left(soonest(entry.readers), now),
      });
    }
    if (entry.intent !== null && entry.intent.owner !== lockId) {
      return {
        acquired: false,
        blockedBy: "waiters",
        remainingTime: left(entry.intent.until, now),
      };
    }
    this.#lastToken += 1;
    entry.writer = { owner: lockId, expiresAt: expiry(ttl, now), token: this.#lastToken };
    entry.intent = null;
    this.#keep(key, entry);
    return { acquired: true, fencingToken: this.#lastToken };
  }

  async releaseWriter(key: string, lockId: string): Promise<boolean> {
    const entry = this.#live(key, performance.now());
    if (entry.writer?.owner !== lockId) {
      return false;
    }
    entry.writer = null;
    this.#keep(key, entry);
    return true;
  }

  async forceReleaseWriter(key: string): Promise<boolean> {
    const entry = this.#live(key, performance.now());
    const held = entry.writer !== null;
    entry.writer = null;
    this.#keep(key, entry);
    return held;
  }

  async refreshWriter(key: string, lockId: string, ttl: TimeSpan): Promise<boolean> {
    const now = performance.now();
    const writer = this.#live(key, now).writer;
    if (writer?.owner !== lockId || writer.expiresAt === null) {
      return false;
    }
    writer.expiresAt = now + ttl.toMilliseconds();
    return true;
  }

  async acquireReader(
    key: string,
    lockId: string,
    limit: number,
    ttl: TimeSpan | null,
  ): Promise<SharedLockReaderAcquireResult> {
    const bad = badLimit("PollingSharedLockReference", limit);
    if (bad !== undefined) {
      throw bad;
    }
    const now = performance.now();
    const entry = this.#live(key, now);
    if (entry.writer !== null) {
      return {
        acquired: false,
        blockedBy: "writer",
        owner: entry.writer.owner,
        remainingTime: left(entry.writer.expiresAt, now),
      };
    }
    const own = entry.readers.get(lockId);
    if (own !== undefined) {
      own.expiresAt = expiry(ttl, now);
      return { acquired: true, fencingToken: own.token };
    }
    const count = entry.readers.size;
    if (entry.intent !== null) {
      return {
        acquired: false,
        blockedBy: "waiters",
        acquiredSlotsCount: count,
        remainingTime: left(Math.min(entry.intent.until, soonest(entry.readers)), now),
      };
    }
    const inForce = Math.min(limit, ...[...entry.readers.values()].map((slot) => slot.limit));
    if (count >= inForce) {
      return {
        acquired: false,
        blockedBy: "limit",
        limit: inForce,
        acquiredSlotsCount: count,
        remainingTime: left(soonest(entry.readers), now),
      };
    }
    this.#lastToken += 1;
    entry.readers.set(lockId, { limit, expiresAt: expiry(ttl, now), token: this.#lastToken });
    this.#keep(key, entry);
    return { acquired: true, fencingToken: this.#lastToken };
  }

  async releaseReader(key: string, lockId: string): Promise<boolean> {
    const entry = this.#live(key, performance.now());
    const held = entry.readers.delete(lockId);
    this.#keep(key, entry);
    return held;
  }

  async forceReleaseAllReaders(key: string): Promise<boolean> {
    const entry = this.#live(key, performance.now());
    const held = entry.readers.size > 0;
    entry.readers.clear();
    this.#keep(key, entry);
    return held;
  }

  async refreshReader(key: string, lockId: string, ttl: TimeSpan): Promise<boolean> {
    const now = performance.now();
    const slot = this.#live(key, now).readers.get(lockId);
    if (slot === undefined || slot.expiresAt === null) {
      return false;
    }
    slot.expiresAt = now + ttl.toMilliseconds();
    return true;
  }

  async forceRelease(key: string): Promise<boolean> {
    const entry = this.#live(key, performance.now());
    const held = entry.writer !== null || entry.readers.size > 0;
    entry.writer = null;
    entry.readers.clear();
    this.#keep(key, entry);
    return held;
  }

  async getState(key: string, lockId: string): Promise<SharedLockAdapterState | null> {
    const now = performance.now();
    const entry = this.#live(key, now);
    if (entry.writer !== null) {
      return {
        heldBy: "writer",
        owner: entry.writer.owner,
        remainingTime: left(entry.writer.expiresAt, now),
        fencingToken: entry.writer.token,
      };
    }
    if (entry.readers.size === 0) {
      return null;
    }
    const own = entry.readers.get(lockId);
    return {
      heldBy: "readers",
      limit: Math.min(...[...entry.readers.values()].map((slot) => slot.limit)),
      acquiredSlotsCount: entry.readers.size,
      slot:
        own === undefined
          ? null
          : { remainingTime: left(own.expiresAt, now), fencingToken: own.token },
      writerWaiting: entry.intent !== null,
    };
  }

  /** The key's entry with its expired holds and lapsed intent dropped (a new one if none). */
  #live(key: string, now: number): PollingEntry {
    const entry = this.#keys.get(key) ?? { writer: null, readers: new Map(), intent: null };
    if (entry.writer?.expiresAt != null && entry.writer.expiresAt <= now) {
      entry.writer = null;
    }
    for (const [id, slot] of entry.readers) {
      if (slot.expiresAt !== null && slot.expiresAt <= now) {
        entry.readers.delete(id);
      }
    }
    if (entry.intent !== null && entry.intent.until <= now) {
      entry.intent = null;
    }
    this.#keep(key, entry);
    return entry;
  }

  /** Stores the entry, or drops it when nothing of it is left. */
  #keep(key: string, entry: PollingEntry): void {
    if (entry.writer === null && entry.readers.size === 0 && entry.intent === null) {
      this.#keys.delete(key);
    } else {
      this.#keys.set(key, entry);
    }
  }
}

type PollingEntry = {
  writer: { owner: string; expiresAt: number | null; token: number } | null;
  readers: Map<string, { limit: number; expiresAt: number | null; token: number }>;
  intent: { owner: string; until: number } | null;
};

function expiry(ttl: TimeSpan | null, now: number): number | null {
  return ttl === null ? null : now + ttl.toMilliseconds();
}

function left(at: number | null, now: number): TimeSpan | null {
  return at === null || at === Number.POSITIVE_INFINITY
    ? null
    : TimeSpan.fromMilliseconds(at - now);
}

function soonest(readers: PollingEntry["readers"]): number {
  let at = Number.POSITIVE_INFINITY;
  for (const slot of readers.values()) {
    if (slot.expiresAt !== null && slot.expiresAt < at) {
      at = slot.expiresAt;
    }
  }
  return at;
}
