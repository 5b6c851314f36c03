import { describe, expect, test } from "vitest";
import { MemorySemaphoreAdapter } from "../../src/semaphore/adapters/memory/memory-semaphore-adapter.js";
import { semaphoreAdapterTestSuite } from "../../src/semaphore/test-suites/semaphore-adapter-test-suite.js";
import { TimeSpan } from "../../src/time-span/time-span.js";

semaphoreAdapterTestSuite({
  createAdapter: () => new MemorySemaphoreAdapter(),
  instancesShareBackend: false,
});

const LONG_TTL = TimeSpan.fromMinutes(1);
const never = () => new AbortController().signal;

describe("MemorySemaphoreAdapter", () => {
  test("a key whose slots were released leaves no entry behind", async () => {
    const adapter = new MemorySemaphoreAdapter();
    await adapter.acquire("a", "alice", 2, LONG_TTL);
    await adapter.acquire("a", "bob", 2, null);
    await adapter.acquire("b", "bob", 1, null);
    expect(adapter.size).toBe(2);
    await adapter.release("a", "alice");
    expect(adapter.size).toBe(2);
    await adapter.release("a", "bob");
    await adapter.forceReleaseAll("b");
    expect(adapter.size).toBe(0);
  });

  test("nothing stays once the last holder and the last waiter leave", async () => {
    const adapter = new MemorySemaphoreAdapter();
    await adapter.acquire("a", "alice", 1, LONG_TTL);
    const controller = new AbortController();
    const aborted = adapter.waitForRelease("a", LONG_TTL, controller.signal, {
      slotId: "carol",
      limit: 1,
      ttl: LONG_TTL,
    });
    const handedOver = adapter.waitForRelease("a", LONG_TTL, never(), {
      slotId: "bob",
      limit: 1,
      ttl: LONG_TTL,
    });
    controller.abort(new Error("gave up"));
    await expect(aborted).rejects.toThrow("gave up");
    await adapter.release("a", "alice");
    await expect(handedOver).resolves.toMatchObject({ acquired: true });
    expect(adapter.size).toBe(1);
    await adapter.release("a", "bob");
    expect(adapter.size).toBe(0);
  });

  test("expired slots of keys nobody touches again are swept as other keys are written", async () => {
    const adapter = new MemorySemaphoreAdapter();
    for (let i = 0; i < 200; i += 1) {
      await adapter.acquire(`request:${i}`, "worker", 2, TimeSpan.fromMilliseconds(20));
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (let i = 0; i < 600; i += 1) {
      await adapter.acquire(`job:${i}`, "worker", 2, LONG_TTL);
    }
    expect(adapter.size).toBeLessThan(800);
    for (let i = 0; i < 600; i += 1) {
      await adapter.release(`job:${i}`, "worker");
    }
    expect(adapter.size).toBeLessThan(200);
  });
});

describe("MemorySemaphoreAdapter under random interleavings", () => {
  // An attacker's schedule: acquires with limits 1 to 3, releases, refreshes, force releases,
  // short TTLs running out, claimed and unclaimed waits that time out or are aborted, all on one
  // key. After every step, no holder may share the key with more live slots than its own limit,
  // and every new slot's token must exceed every token issued before.
  test("2,000 random steps: never more live slots than any holder's limit, tokens only grow", async () => {
    const adapter = new MemorySemaphoreAdapter();
    const ids = ["a", "b", "c", "d", "e", "f"];
    /** The limit and token of each id's slot, as learnt from grants. */
    const slots = new Map<string, { limit: number; token: number }>();
    let lastToken = 0;
    let seed = 20;
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    const granted = (id: string, limit: number, token: number) => {
      const known = slots.get(id);
      if (known?.token === token) {
        return;
      }
      expect(token, `a new slot of ${id} gets a greater token`).toBeGreaterThan(lastToken);
      lastToken = token;
      slots.set(id, { limit, token });
    };
    const pending: Promise<unknown>[] = [];
    for (let step = 0; step < 2_000; step += 1) {
      const id = ids[random(ids.length)] as string;
      const limit = 1 + random(3);
      const ttl = random(4) === 0 ? null : TimeSpan.fromMilliseconds(5 + random(40));
      switch (random(7)) {
        case 0:
        case 1: {
          const result = await adapter.acquire("k", id, limit, ttl);
          if (result.acquired) {
            granted(id, limit, result.fencingToken);
          }
          break;
        }
        case 2:
          await adapter.release("k", id);
          break;
        case 3:
          await adapter.refresh("k", id, TimeSpan.fromMilliseconds(5 + random(40)));
          break;
        case 4:
          if (random(10) === 0) {
            await adapter.forceReleaseAll("k");
          }
          break;
        default: {
          const controller = new AbortController();
          const claim = random(3) === 0 ? undefined : { slotId: id, limit, ttl };
          const wait = adapter
            .waitForRelease("k", TimeSpan.fromMilliseconds(random(30)), controller.signal, claim)
            .then(
              (handOff) => {
                if (handOff !== undefined && claim !== undefined) {
                  granted(id, claim.limit, handOff.fencingToken);
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
        expect(state.acquiredSlotsCount).toBeLessThanOrEqual(state.limit);
        if (state.slot !== null) {
          const known = slots.get(holder);
          expect(known?.token, `${holder}'s slot is one it was granted`).toBe(
            state.slot.fencingToken,
          );
          expect(
            state.acquiredSlotsCount,
            `${holder} shares the key within its limit`,
          ).toBeLessThanOrEqual(known?.limit ?? 0);
        }
      }
    }
    await Promise.all(pending);
    await adapter.forceReleaseAll("k");
    expect(adapter.size).toBe(0);
  });
});

describe("MemorySemaphoreAdapter's queue", () => {
  test("a newcomer never passes a queued claim, even one its own smaller limit holds back", async () => {
    const adapter = new MemorySemaphoreAdapter();
    await adapter.acquire("k", "a", 3, LONG_TTL);
    await adapter.acquire("k", "b", 3, LONG_TTL);
    await adapter.acquire("k", "c", 3, LONG_TTL);
    // Held back by its limit of 2 while 3 (then 2) slots are live.
    const strict = adapter.waitForRelease("k", LONG_TTL, never(), {
      slotId: "strict",
      limit: 2,
      ttl: LONG_TTL,
    });
    await adapter.release("k", "a");
    expect(await adapter.acquire("k", "newcomer", 3, LONG_TTL)).toMatchObject({ acquired: false });
    const claimed = await Promise.race([
      adapter.waitForRelease("k", TimeSpan.fromMilliseconds(20), never(), {
        slotId: "late",
        limit: 3,
        ttl: LONG_TTL,
      }),
      strict.then(() => "strict served first"),
    ]);
    expect(claimed).toBeUndefined();
    await adapter.release("k", "b");
    await expect(strict).resolves.toMatchObject({ acquired: true });
    expect(await adapter.getState("k", "strict")).toMatchObject({
      limit: 2,
      acquiredSlotsCount: 2,
    });
    await adapter.forceReleaseAll("k");
    expect(adapter.size).toBe(0);
  });
});
