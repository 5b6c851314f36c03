import { setTimeout as sleep } from "node:timers/promises";
import {
  afterEach,
  beforeEach,
  describe,
  expect,
  onTestFinished,
  type TestContext,
  test,
  vi,
} from "vitest";
import { InvalidArgumentError } from "../../errors/invalid-argument-error.js";
import { SuiteKeys, untilQueued as untilQueuedBy } from "../../primitive/test-suites/suite-keys.js";
import {
  endOf,
  neverAborted as never,
  observe,
} from "../../primitive/test-suites/suite-promises.js";
import {
  ELAPSED,
  EXTENSION,
  LONG_TTL,
  MIDPOINT,
  milliseconds as millisecondsOf,
  PAST_SHORT_TTL,
  PATIENCE_MS,
  PROMPTLY,
  RESTART_TTL,
  SHORT_TTL,
  SUBSCRIBE_GRACE,
  unlessStalled,
  within,
} from "../../primitive/test-suites/suite-timing.js";
import { TimeSpan } from "../../time-span/time-span.js";
import type {
  ISemaphoreAdapter,
  SemaphoreAcquireResult,
  SemaphoreAdapterState,
  SemaphoreWaitClaim,
  SemaphoreWaitResult,
} from "../contracts/semaphore-adapter.js";

/** Settings of {@link semaphoreAdapterTestSuite}: how to get the adapter under test. */
export type SemaphoreAdapterTestSuiteSettings = {
  /** A fresh adapter (or one shared by the suite) for each test. */
  createAdapter: () => ISemaphoreAdapter | Promise<ISemaphoreAdapter>;
  /** Called after each test, once the test's keys are force-released. */
  destroyAdapter?: (adapter: ISemaphoreAdapter) => void | Promise<void>;
  /**
   * Whether two adapters from `createAdapter` see the same slots (two clients of one server),
   * so the suite can contend from several instances as several processes would. `false` for
   * an in-process store, where each instance is its own world.
   * @default true
   */
  instancesShareBackend?: boolean;
  /**
   * Put in front of every key the suite uses. A random part per call of the suite always
   * follows it, so runs sharing a server never meet, even with the same prefix.
   * @default "hasp-suite:"
   */
  keyPrefix?: string;
  /**
   * How many waits the backend has queued on `key`, for an adapter whose `waitForRelease`
   * queues a wait asynchronously (after a subscription, or a round trip). The `waitForRelease`
   * tests then release only once their waits are queued. Without it they give the waits
   * 100 ms, which is enough for an adapter that queues a wait in the call itself.
   */
  queuedWaits?: (key: string) => Promise<number>;
};

type Wait = Promise<SemaphoreWaitResult>;

/**
 * The TTL of a claim whose hand-off is checked: the claim's own (below `LONG_TTL`), and long
 * enough that the checks after the hand-off need no answer within it.
 */
const CLAIM_TTL = TimeSpan.fromSeconds(10);

/**
 * The behaviour every `ISemaphoreAdapter` must have, specified once; run it in a vitest file
 * against each implementation. It uses real time with TTLs of 100 ms to a few seconds, so it
 * suits any backend, remote ones included. The `waitForRelease` tests are skipped for adapters
 * without it, and the hand-off tests for adapters that only wake their waiters.
 *
 * @example
 * semaphoreAdapterTestSuite({ createAdapter: () => new MemorySemaphoreAdapter() });
 *
 * @example
 * semaphoreAdapterTestSuite({
 *   createAdapter: () => new RedisSemaphoreAdapter(client),
 *   keyPrefix: "my-app-tests:",
 * });
 */
export function semaphoreAdapterTestSuite(settings: SemaphoreAdapterTestSuiteSettings): void {
  const {
    createAdapter,
    destroyAdapter,
    instancesShareBackend = true,
    keyPrefix = "hasp-suite:",
    queuedWaits,
  } = settings;
  const keys = new SuiteKeys(keyPrefix);
  const milliseconds = (remainingTime: TimeSpan | null | undefined) =>
    millisecondsOf(remainingTime, "a slot");

  describe("semaphore adapter conformance", () => {
    let adapter: ISemaphoreAdapter;
    /** A key no other test (or run) has used; force-released after the test. */
    const freshKey = (label?: string) => keys.fresh(label);
    const track = (key: string) => keys.track(key);

    /** Acquires and returns the fencing token, failing the test when no slot was taken. */
    async function acquire(
      key: string,
      slotId: string,
      limit: number,
      ttl: TimeSpan | null,
    ): Promise<number> {
      const result = await adapter.acquire(key, slotId, limit, ttl);
      expect(result, `${slotId} acquires a slot of ${key}`).toMatchObject({ acquired: true });
      return result.acquired ? result.fencingToken : Number.NaN;
    }

    /** Acquires, expecting a refusal, and returns it. */
    async function refused(
      key: string,
      slotId: string,
      limit: number,
      ttl: TimeSpan | null = LONG_TTL,
    ): Promise<Extract<SemaphoreAcquireResult, { acquired: false }>> {
      const result = await adapter.acquire(key, slotId, limit, ttl);
      expect(result, `${slotId} is refused a slot of ${key}`).toMatchObject({ acquired: false });
      if (result.acquired) {
        return {
          acquired: false,
          limit: Number.NaN,
          acquiredSlotsCount: Number.NaN,
          remainingTime: null,
        };
      }
      return result;
    }

    /** The key's state as `slotId` sees it, failing the test when no slot is live. */
    async function live(key: string, slotId = "observer"): Promise<SemaphoreAdapterState> {
      const state = await adapter.getState(key, slotId);
      expect(state, `${key} has live slots`).not.toBeNull();
      return state ?? { limit: Number.NaN, acquiredSlotsCount: Number.NaN, slot: null };
    }

    /** `slotId`'s own slot, failing the test when it holds none. */
    async function slotOf(key: string, slotId: string) {
      const { slot } = await live(key, slotId);
      expect(slot, `${slotId} holds a slot of ${key}`).not.toBeNull();
      return slot ?? { remainingTime: null, fencingToken: Number.NaN };
    }

    /** Resolves once `count` waits are queued on `key` (see `queuedWaits`). */
    const untilQueued = (key: string, count: number) => untilQueuedBy(queuedWaits, key, count);

    function waitForReleaseOf(
      context: TestContext,
    ): NonNullable<ISemaphoreAdapter["waitForRelease"]> {
      const waitForRelease = adapter.waitForRelease;
      if (waitForRelease === undefined) {
        return context.skip("the adapter has no waitForRelease");
      }
      return waitForRelease.bind(adapter);
    }

    /** A claimed wait of `maxWait` ms with a signal nothing aborts. */
    function claimed(
      context: TestContext,
      key: string,
      claim: SemaphoreWaitClaim,
      maxWait = 10_000,
      signal = never(),
    ): Wait {
      return waitForReleaseOf(context)(key, TimeSpan.fromMilliseconds(maxWait), signal, claim);
    }

    /** A claimed wait of `maxWait` ms, watched, that the test ends with `abort`. */
    function abortableClaim(
      context: TestContext,
      key: string,
      claim: SemaphoreWaitClaim,
      maxWait = 10_000,
    ): { waiting: ReturnType<typeof observe>; abort: (reason?: unknown) => void } {
      const controller = new AbortController();
      return {
        waiting: observe(claimed(context, key, claim, maxWait, controller.signal)),
        abort: (reason) => controller.abort(reason),
      };
    }

    /**
     * Skips the test unless a release hands the freed slot to the oldest claimed wait (memory,
     * Redis, PostgreSQL with a listener) rather than only waking it: probed on a key of its own.
     */
    async function handsOffOrSkip(context: TestContext): Promise<void> {
      const key = freshKey("probe");
      await acquire(key, "probe-holder", 1, LONG_TTL);
      const waiting = claimed(context, key, { slotId: "probe-waiter", limit: 1, ttl: LONG_TTL });
      await untilQueued(key, 1);
      expect(await adapter.release(key, "probe-holder")).toBe(true);
      const end = await endOf(waiting, PROMPTLY);
      expect(end, "the wait ends soon after the release").not.toBe("pending");
      if (end === undefined) {
        context.skip("the adapter wakes its waiters without handing slots over");
      }
    }

    /**
     * More instances of the adapter, as other processes would have (destroyed after the test),
     * or the test's own one `count` times when instances do not share a backend.
     */
    async function otherInstances(count: number): Promise<ISemaphoreAdapter[]> {
      if (!instancesShareBackend) {
        return Array.from({ length: count }, () => adapter);
      }
      const instances = await Promise.all(Array.from({ length: count }, () => createAdapter()));
      onTestFinished(async () => {
        await Promise.all(instances.map((instance) => destroyAdapter?.(instance)));
      });
      return instances;
    }

    beforeEach(async () => {
      adapter = await createAdapter();
    });

    afterEach(async () => {
      // Slots without expiry would otherwise stay on a shared server.
      await Promise.all(keys.takeUsed().map((key) => adapter.forceReleaseAll(key)));
      await destroyAdapter?.(adapter);
    });

    describe("acquire", () => {
      test("a free key: a slot is taken; getState shows the limit, the count, the token and the TTL", async () => {
        const key = freshKey();
        const ttl = TimeSpan.fromSeconds(10);
        const result = await adapter.acquire(key, "alice", 3, ttl);
        expect(result).toEqual({ acquired: true, fencingToken: expect.any(Number) });
        const state = await live(key, "alice");
        expect(state).toMatchObject({ limit: 3, acquiredSlotsCount: 1 });
        expect(state.slot?.fencingToken).toBe(result.acquired && result.fencingToken);
        const remaining = milliseconds(state.slot?.remainingTime);
        expect(remaining).toBeGreaterThan(ttl.toMilliseconds() / 2);
        expect(remaining).toBeLessThanOrEqual(ttl.toMilliseconds());
        expect(await live(key, "bob")).toEqual({ limit: 3, acquiredSlotsCount: 1, slot: null });
      });

      test("`limit` ids take a slot each; the next is refused with the limit, the count and the soonest expiry", async () => {
        const key = freshKey();
        const tokens = new Set<number>();
        tokens.add(await acquire(key, "a", 3, TimeSpan.fromSeconds(5)));
        tokens.add(await acquire(key, "b", 3, TimeSpan.fromSeconds(20)));
        tokens.add(await acquire(key, "c", 3, null));
        expect(tokens.size).toBe(3);
        const refusal = await refused(key, "d", 3);
        expect(refusal.limit).toBe(3);
        expect(refusal.acquiredSlotsCount).toBe(3);
        const soonest = milliseconds(refusal.remainingTime);
        expect(soonest).toBeGreaterThan(0);
        expect(soonest).toBeLessThanOrEqual(5_000);
        expect(await live(key, "d")).toEqual({ limit: 3, acquiredSlotsCount: 3, slot: null });
      });

      test("a full key whose slots never expire: the refusal's remaining time is null", async () => {
        const key = freshKey();
        await acquire(key, "a", 2, null);
        await acquire(key, "b", 2, null);
        expect(await adapter.acquire(key, "c", 2, SHORT_TTL)).toEqual({
          acquired: false,
          limit: 2,
          acquiredSlotsCount: 2,
          remainingTime: null,
        });
      });

      test("50 ids acquire a key of limit 3 at once: exactly 3 win, with distinct tokens", async () => {
        const key = freshKey();
        const ids = Array.from({ length: 50 }, (_, i) => `contender-${i}`);
        const results = await Promise.all(ids.map((id) => adapter.acquire(key, id, 3, LONG_TTL)));
        const winners = results.flatMap((result) => (result.acquired ? [result.fencingToken] : []));
        expect(winners).toHaveLength(3);
        expect(new Set(winners).size).toBe(3);
        for (const result of results) {
          if (!result.acquired) {
            expect(result).toMatchObject({ limit: 3, acquiredSlotsCount: 3 });
          }
        }
        expect((await live(key)).acquiredSlotsCount).toBe(3);
      });

      test("50 ids take over the expired slots of a full key at once: exactly `limit` win, with greater tokens", async () => {
        const key = freshKey();
        const old = [
          await acquire(key, "gone-1", 2, SHORT_TTL),
          await acquire(key, "gone-2", 2, SHORT_TTL),
        ];
        await sleep(PAST_SHORT_TTL);
        const ids = Array.from({ length: 50 }, (_, i) => `contender-${i}`);
        const results = await Promise.all(ids.map((id) => adapter.acquire(key, id, 2, LONG_TTL)));
        const winners = results.flatMap((result) => (result.acquired ? [result.fencingToken] : []));
        expect(winners).toHaveLength(2);
        for (const token of winners) {
          expect(token).toBeGreaterThan(Math.max(...old));
        }
        expect((await live(key)).acquiredSlotsCount).toBe(2);
      });

      test("a holder acquires its live slot again, even on a full key: same token, TTL restarted, count unchanged", async () => {
        await unlessStalled(async () => {
          const key = freshKey();
          const acquiredAt = performance.now();
          const token = await acquire(key, "alice", 2, RESTART_TTL);
          await acquire(key, "bob", 2, LONG_TTL);
          await sleep(ELAPSED);
          const again = await adapter.acquire(key, "alice", 2, RESTART_TTL);
          const againAt = performance.now();
          const state = await adapter.getState(key, "alice");
          // Seen only if the database answered in time: else this says so, and tries again.
          within(
            acquiredAt,
            RESTART_TTL.toMilliseconds() - 100,
            "acquire, pause and acquire again",
          );
          within(againAt, RESTART_TTL.toMilliseconds() - MIDPOINT, "getState");
          expect(again).toEqual({ acquired: true, fencingToken: token });
          expect(state?.acquiredSlotsCount).toBe(2);
          expect(state?.slot?.fencingToken).toBe(token);
          expect(milliseconds(state?.slot?.remainingTime)).toBeGreaterThan(MIDPOINT);
        });
      });

      test("a holder acquires again after its slot expired: a new, greater token", async () => {
        const key = freshKey();
        const first = await acquire(key, "alice", 2, SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        const second = await acquire(key, "alice", 2, LONG_TTL);
        expect(second).toBeGreaterThan(first);
        expect((await slotOf(key, "alice")).fencingToken).toBe(second);
        expect((await live(key)).acquiredSlotsCount).toBe(1);
      });

      test("ttl null: the slot never expires and cannot be refreshed", async () => {
        const key = freshKey();
        const token = await acquire(key, "alice", 2, null);
        await sleep(PAST_SHORT_TTL);
        expect(await slotOf(key, "alice")).toEqual({ remainingTime: null, fencingToken: token });
        expect(await adapter.refresh(key, "alice", SHORT_TTL)).toBe(false);
        await sleep(PAST_SHORT_TTL);
        expect(await slotOf(key, "alice")).toEqual({ remainingTime: null, fencingToken: token });
      });

      test("a refused acquire leaves the holders' TTLs alone", async () => {
        await unlessStalled(async () => {
          const key = freshKey();
          const acquiredAt = performance.now();
          const token = await acquire(key, "alice", 1, RESTART_TTL);
          await sleep(ELAPSED);
          const bob = await adapter.acquire(key, "bob", 1, EXTENSION);
          const carol = await adapter.acquire(key, "carol", 5, null);
          const state = await adapter.getState(key, "alice");
          // alice's slot is live throughout only if the database answered within its TTL.
          within(acquiredAt, RESTART_TTL.toMilliseconds() - 100, "acquire, pause, 3 calls");
          expect(bob).toMatchObject({ acquired: false });
          expect(carol).toMatchObject({ acquired: false });
          expect(state?.slot?.fencingToken).toBe(token);
          expect(milliseconds(state?.slot?.remainingTime)).toBeLessThan(MIDPOINT);
        });
      });
    });

    describe("the limit rule", () => {
      test("a smaller limit while slots are live: no new slot until the count is below it, and none is taken away", async () => {
        const key = freshKey();
        for (const id of ["a", "b", "c"]) {
          await acquire(key, id, 3, LONG_TTL);
        }
        const refusal = await refused(key, "small", 2);
        expect(refusal).toMatchObject({ limit: 2, acquiredSlotsCount: 3 });
        // The three stay: a smaller limit never takes slots away.
        expect((await live(key)).acquiredSlotsCount).toBe(3);
        expect(await adapter.release(key, "a")).toBe(true);
        await refused(key, "small", 2);
        expect(await adapter.release(key, "b")).toBe(true);
        await acquire(key, "small", 2, LONG_TTL);
        // Now a slot of limit 2 is live: the limit in force is 2 for everyone.
        expect(await live(key)).toMatchObject({ limit: 2, acquiredSlotsCount: 2 });
        expect(await refused(key, "big", 3)).toMatchObject({ limit: 2, acquiredSlotsCount: 2 });
      });

      test("a greater limit while slots are live: the live slots' smaller limit still holds", async () => {
        const key = freshKey();
        await acquire(key, "a", 2, LONG_TTL);
        await acquire(key, "b", 2, LONG_TTL);
        expect(await refused(key, "big", 5)).toMatchObject({ limit: 2, acquiredSlotsCount: 2 });
        expect(await adapter.release(key, "a")).toBe(true);
        await acquire(key, "big", 5, LONG_TTL);
        expect(await live(key)).toMatchObject({ limit: 2, acquiredSlotsCount: 2 });
      });

      test("once the slots of the smaller limit are gone, the greater limit applies", async () => {
        const key = freshKey();
        await acquire(key, "small", 1, SHORT_TTL);
        await refused(key, "big-1", 3);
        await sleep(PAST_SHORT_TTL);
        for (const id of ["big-1", "big-2", "big-3"]) {
          await acquire(key, id, 3, LONG_TTL);
        }
        expect(await live(key)).toMatchObject({ limit: 3, acquiredSlotsCount: 3 });
      });

      test("a holder acquiring again with another limit keeps its slot's limit", async () => {
        const key = freshKey();
        const token = await acquire(key, "alice", 1, LONG_TTL);
        expect(await acquire(key, "alice", 5, LONG_TTL)).toBe(token);
        expect(await live(key)).toMatchObject({ limit: 1, acquiredSlotsCount: 1 });
        await refused(key, "bob", 5);
      });

      test("a limit that is not a whole number from 1 to 1,000,000 is refused with InvalidArgumentError, and nothing is stored", async () => {
        const key = freshKey();
        const bad = [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 1_000_001];
        for (const limit of bad) {
          await expect(
            adapter.acquire(key, "alice", limit, LONG_TTL),
            String(limit),
          ).rejects.toThrow(InvalidArgumentError);
          if (adapter.waitForRelease !== undefined) {
            const claim = { slotId: "alice", limit, ttl: LONG_TTL };
            await expect(
              adapter.waitForRelease(key, LONG_TTL, new AbortController().signal, claim),
              `a claim's ${limit}`,
            ).rejects.toThrow(InvalidArgumentError);
          }
        }
        expect(await adapter.getState(key, "alice")).toBeNull();
        await acquire(key, "alice", 1_000_000, LONG_TTL);
      });

      test("200 acquirers with limits 2 and 4 at once: never more live slots than any holder's limit", async () => {
        const key = freshKey();
        const results = await Promise.all(
          Array.from({ length: 200 }, (_, i) => {
            const limit = i % 2 === 0 ? 2 : 4;
            return adapter
              .acquire(key, `c${i}`, limit, LONG_TTL)
              .then((result) => ({ limit, acquired: result.acquired }));
          }),
        );
        const winners = results.filter((result) => result.acquired);
        const state = await live(key);
        expect(state.acquiredSlotsCount).toBe(winners.length);
        for (const winner of winners) {
          expect(winners.length).toBeLessThanOrEqual(winner.limit);
        }
        expect(state.acquiredSlotsCount).toBeLessThanOrEqual(state.limit);
      });
    });

    describe("release", () => {
      test("by a holder: true, its slot is free for anyone, the others stay", async () => {
        const key = freshKey();
        await acquire(key, "alice", 2, LONG_TTL);
        const bobs = await acquire(key, "bob", 2, LONG_TTL);
        expect(await adapter.release(key, "alice")).toBe(true);
        expect(await live(key, "alice")).toEqual({ limit: 2, acquiredSlotsCount: 1, slot: null });
        expect((await slotOf(key, "bob")).fencingToken).toBe(bobs);
        await acquire(key, "carol", 2, LONG_TTL);
      });

      test("of the last slot: the key is free (getState null)", async () => {
        const key = freshKey();
        await acquire(key, "alice", 2, LONG_TTL);
        expect(await adapter.release(key, "alice")).toBe(true);
        expect(await adapter.getState(key, "alice")).toBeNull();
      });

      test("by a stranger: false, and the slots are untouched", async () => {
        const key = freshKey();
        const token = await acquire(key, "alice", 1, LONG_TTL);
        expect(await adapter.release(key, "bob")).toBe(false);
        expect(await adapter.release(key, "alic")).toBe(false);
        expect(await adapter.release(key, "alice ")).toBe(false);
        expect((await slotOf(key, "alice")).fencingToken).toBe(token);
      });

      test("twice: the second answers false", async () => {
        const key = freshKey();
        await acquire(key, "alice", 2, LONG_TTL);
        expect(await adapter.release(key, "alice")).toBe(true);
        expect(await adapter.release(key, "alice")).toBe(false);
      });

      test("of a free key: false", async () => {
        expect(await adapter.release(freshKey(), "alice")).toBe(false);
      });

      test("of the holder's expired slot: false, and the slot stays free", async () => {
        const key = freshKey();
        await acquire(key, "alice", 1, SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        expect(await adapter.release(key, "alice")).toBe(false);
        expect(await adapter.getState(key, "alice")).toBeNull();
      });
    });

    describe("refresh", () => {
      test("by a holder: true, and its TTL restarts with the given span; the others' stay", async () => {
        await unlessStalled(async () => {
          const key = freshKey();
          const acquiredAt = performance.now();
          await acquire(key, "alice", 2, RESTART_TTL);
          await acquire(key, "bob", 2, RESTART_TTL);
          await sleep(ELAPSED);
          const refreshedAt = performance.now();
          const refreshed = await adapter.refresh(key, "alice", RESTART_TTL);
          const alice = await adapter.getState(key, "alice");
          const bob = await adapter.getState(key, "bob");
          // Seen only if the database answered in time: else this says so, and tries again.
          within(acquiredAt, RESTART_TTL.toMilliseconds() - 100, "2 acquires, pause, 3 calls");
          within(refreshedAt, RESTART_TTL.toMilliseconds() - MIDPOINT, "refresh and getState");
          expect(refreshed).toBe(true);
          expect(milliseconds(alice?.slot?.remainingTime)).toBeGreaterThan(MIDPOINT);
          expect(milliseconds(bob?.slot?.remainingTime)).toBeLessThan(MIDPOINT);
        });
      });

      test("by a stranger: false, and nothing is extended", async () => {
        await unlessStalled(async () => {
          const key = freshKey();
          const acquiredAt = performance.now();
          await acquire(key, "alice", 2, RESTART_TTL);
          await sleep(ELAPSED);
          const refreshed = await adapter.refresh(key, "bob", EXTENSION);
          const bob = await adapter.getState(key, "bob");
          const alice = await adapter.getState(key, "alice");
          // alice's slot is live throughout only if the database answered within its TTL.
          within(acquiredAt, RESTART_TTL.toMilliseconds() - 100, "acquire, pause, 3 calls");
          expect(refreshed).toBe(false);
          expect(bob).toMatchObject({ acquiredSlotsCount: 1, slot: null });
          expect(milliseconds(alice?.slot?.remainingTime)).toBeLessThan(MIDPOINT);
        });
      });

      test("after the slot expired: false, and the key stays free", async () => {
        const key = freshKey();
        await acquire(key, "alice", 2, SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        expect(await adapter.refresh(key, "alice", LONG_TTL)).toBe(false);
        expect(await adapter.getState(key, "alice")).toBeNull();
      });

      test("of a free key: false, and it stays free", async () => {
        const key = freshKey();
        expect(await adapter.refresh(key, "alice", LONG_TTL)).toBe(false);
        expect(await adapter.getState(key, "alice")).toBeNull();
      });
    });

    describe("forceReleaseAll", () => {
      test("of a key with slots: true, and every slot is free", async () => {
        const key = freshKey();
        await acquire(key, "a", 2, LONG_TTL);
        await acquire(key, "b", 2, null);
        expect(await adapter.forceReleaseAll(key)).toBe(true);
        expect(await adapter.getState(key, "a")).toBeNull();
        expect(await adapter.release(key, "a")).toBe(false);
        expect(await adapter.refresh(key, "a", LONG_TTL)).toBe(false);
        await acquire(key, "c", 2, LONG_TTL);
        await acquire(key, "d", 2, LONG_TTL);
      });

      test("of a free key: false", async () => {
        expect(await adapter.forceReleaseAll(freshKey())).toBe(false);
      });

      test("of a key whose slots all expired: false", async () => {
        const key = freshKey();
        await acquire(key, "a", 2, SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        expect(await adapter.forceReleaseAll(key)).toBe(false);
      });
    });

    describe("expiry", () => {
      test("expired slots never count: a full key whose slots expired admits `limit` newcomers", async () => {
        const key = freshKey();
        await acquire(key, "a", 2, SHORT_TTL);
        await acquire(key, "b", 2, LONG_TTL);
        await refused(key, "c", 2);
        await sleep(PAST_SHORT_TTL);
        expect(await live(key)).toMatchObject({ acquiredSlotsCount: 1 });
        await acquire(key, "c", 2, LONG_TTL);
        await refused(key, "d", 2);
      });

      test("getState of a key whose slots all expired: null", async () => {
        const key = freshKey();
        await acquire(key, "a", 2, SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        expect(await adapter.getState(key, "a")).toBeNull();
      });

      test("a stale holder can neither release nor refresh a slot taken after its expiry", async () => {
        const key = freshKey();
        await acquire(key, "alice", 1, SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        const bobs = await acquire(key, "bob", 1, LONG_TTL);
        expect(await adapter.release(key, "alice")).toBe(false);
        expect(await adapter.refresh(key, "alice", LONG_TTL)).toBe(false);
        expect((await slotOf(key, "bob")).fencingToken).toBe(bobs);
      });
    });

    describe("fencing tokens", () => {
      test("are safe integers that increase across release, forceReleaseAll, expiry and holders", async () => {
        const key = freshKey();
        const tokens = [await acquire(key, "a", 2, LONG_TTL)];
        tokens.push(await acquire(key, "b", 2, LONG_TTL));
        await adapter.release(key, "a");
        tokens.push(await acquire(key, "a", 2, LONG_TTL));
        await adapter.forceReleaseAll(key);
        tokens.push(await acquire(key, "c", 2, SHORT_TTL));
        await sleep(PAST_SHORT_TTL);
        tokens.push(await acquire(key, "c", 2, LONG_TTL));
        await adapter.release(key, "c");
        tokens.push(await acquire(key, "b", 2, LONG_TTL));
        for (const [index, token] of tokens.entries()) {
          expect(Number.isSafeInteger(token)).toBe(true);
          if (index > 0) {
            expect(token).toBeGreaterThan(tokens[index - 1] ?? Number.NaN);
          }
        }
      });
    });

    describe("keys", () => {
      test("the slots of one key do not count for another, even one it is a prefix of", async () => {
        const parent = freshKey("order");
        const child = track(`${parent}:1`);
        await acquire(parent, "alice", 1, LONG_TTL);
        await acquire(child, "alice", 1, LONG_TTL);
        await refused(child, "bob", 2);
        expect(await live(parent)).toMatchObject({ limit: 1, acquiredSlotsCount: 1 });
        expect(await adapter.release(child, "alice")).toBe(true);
        expect((await slotOf(parent, "alice")).fencingToken).toEqual(expect.any(Number));
      });

      test("one slot id under two keys is two slots", async () => {
        const first = freshKey("first");
        const second = freshKey("second");
        const a = await acquire(first, "worker-1", 1, LONG_TTL);
        const b = await acquire(second, "worker-1", 1, LONG_TTL);
        // Tokens are per key: two keys' first tokens may be equal (both from the server's clock
        // in one millisecond), so the slots are told apart by their keys, not their tokens.
        expect((await slotOf(first, "worker-1")).fencingToken).toBe(a);
        expect(await adapter.release(first, "worker-1")).toBe(true);
        expect(await adapter.getState(first, "worker-1")).toBeNull();
        expect((await slotOf(second, "worker-1")).fencingToken).toBe(b);
      });
    });

    describe("storms", () => {
      test("10 storms of 40 acquirers over 4 instances on limit 3: 3 winners each, no error, tokens grow", async () => {
        const key = freshKey();
        const instances = await otherInstances(4);
        let lastToken = 0;
        for (let round = 0; round < 10; round++) {
          const outcomes = await Promise.allSettled(
            Array.from({ length: 40 }, (_, i) =>
              (instances[i % 4] as ISemaphoreAdapter).acquire(key, `r${round}-c${i}`, 3, LONG_TTL),
            ),
          );
          const errors = outcomes.filter((outcome) => outcome.status === "rejected");
          expect(errors, `round ${round}: ${String(errors[0]?.reason)}`).toEqual([]);
          const winners = outcomes.flatMap((outcome, i) =>
            outcome.status === "fulfilled" && outcome.value.acquired
              ? [{ id: `r${round}-c${i}`, token: outcome.value.fencingToken }]
              : [],
          );
          expect(winners, `round ${round}`).toHaveLength(3);
          for (const winner of winners) {
            expect(winner.token).toBeGreaterThan(lastToken);
          }
          lastToken = Math.max(...winners.map((winner) => winner.token));
          expect(await adapter.forceReleaseAll(key)).toBe(true);
        }
      });

      test("12 workers over 3 instances taking and releasing a key of limit 3: never more than 3 inside", async () => {
        const key = freshKey();
        const instances = await otherInstances(3);
        const inside = new Set<string>();
        let most = 0;
        let sections = 0;
        const worker = async (w: number) => {
          const instance = instances[w % 3] as ISemaphoreAdapter;
          for (let attempt = 0; attempt < 20; attempt++) {
            const id = `w${w}-${attempt}`;
            const result = await instance.acquire(key, id, 3, LONG_TTL);
            if (!result.acquired) {
              expect(result.acquiredSlotsCount).toBeLessThanOrEqual(3);
              await sleep(1);
              continue;
            }
            inside.add(id);
            most = Math.max(most, inside.size);
            expect(inside.size, `${id} entered with ${[...inside]}`).toBeLessThanOrEqual(3);
            const state = await instance.getState(key, id);
            expect(state?.acquiredSlotsCount).toBeLessThanOrEqual(3);
            expect(state?.slot?.fencingToken).toBe(result.fencingToken);
            inside.delete(id);
            sections += 1;
            expect(await instance.release(key, id)).toBe(true);
          }
        };
        await Promise.all(Array.from({ length: 12 }, (_, w) => worker(w)));
        expect(sections).toBeGreaterThan(12);
        expect(most).toBeGreaterThan(1);
      });

      test("every refused or failed operation leaves the slots exactly as they were", async () => {
        const key = freshKey();
        const token = await acquire(key, "alice", 1, LONG_TTL);
        let before = await slotOf(key, "alice");
        const failures: Array<[string, () => Promise<unknown>]> = [
          ["bob acquires", () => adapter.acquire(key, "bob", 1, EXTENSION)],
          ["bob acquires with a greater limit", () => adapter.acquire(key, "bob", 9, null)],
          ["bob releases", () => adapter.release(key, "bob")],
          ["bob refreshes", () => adapter.refresh(key, "bob", EXTENSION)],
          ["alice releases another key", () => adapter.release(freshKey("free"), "alice")],
          ["alice's id with a suffix", () => adapter.refresh(key, "alice ", EXTENSION)],
        ];
        for (const [name, failure] of failures) {
          const answer = await failure();
          expect(
            answer === false || (answer as { acquired?: boolean }).acquired === false,
            name,
          ).toBe(true);
          const after = await live(key, "alice");
          expect(after.acquiredSlotsCount, name).toBe(1);
          expect(after.limit, name).toBe(1);
          expect(after.slot?.fencingToken, name).toBe(token);
          expect(milliseconds(after.slot?.remainingTime), name).toBeLessThanOrEqual(
            milliseconds(before.remainingTime),
          );
          before = after.slot ?? before;
        }
      });
    });

    describe("waitForRelease", () => {
      test("resolves soon after a release, and waiting without a claim does not acquire", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const key = freshKey();
        await acquire(key, "alice", 1, LONG_TTL);
        const waiting = observe(waitForRelease(key, TimeSpan.fromSeconds(5), never()));
        await untilQueued(key, 1);
        expect(waiting.isSettled(), "no wake-up before the release").toBe(false);
        const releasedAt = performance.now();
        expect(await adapter.release(key, "alice")).toBe(true);
        const outcome = await waiting.outcome;
        expect(outcome).toMatchObject({ resolved: true, value: undefined });
        expect(outcome.at - releasedAt).toBeLessThan(PROMPTLY);
        expect(await adapter.getState(key, "alice")).toBeNull();
      });

      test("resolves at once when a slot is free: a free key, a key below its limit, expired slots", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const free = freshKey("free");
        const roomy = freshKey("roomy");
        const expired = freshKey("expired");
        await acquire(roomy, "alice", 2, LONG_TTL);
        await acquire(expired, "alice", 1, SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        for (const key of [free, roomy, expired]) {
          const startedAt = performance.now();
          const outcome = await observe(waitForRelease(key, TimeSpan.fromSeconds(10), never()))
            .outcome;
          expect(outcome.resolved, key).toBe(true);
          expect(outcome.at - startedAt).toBeLessThan(PROMPTLY);
        }
        expect((await live(roomy)).acquiredSlotsCount).toBe(1);
      });

      test("a release right after the call is not missed, subscribed or not", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const key = freshKey();
        await acquire(key, "alice", 1, LONG_TTL);
        const waiting = observe(waitForRelease(key, TimeSpan.fromSeconds(10), never()));
        const releasedAt = performance.now();
        expect(await adapter.release(key, "alice")).toBe(true);
        const outcome = await waiting.outcome;
        expect(outcome.resolved).toBe(true);
        expect(outcome.at - releasedAt).toBeLessThan(PROMPTLY);
      });

      test("resolves soon after a forceReleaseAll", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const key = freshKey();
        await acquire(key, "alice", 2, null);
        await acquire(key, "bob", 2, null);
        const waiting = observe(waitForRelease(key, TimeSpan.fromSeconds(5), never()));
        await untilQueued(key, 1);
        expect(waiting.isSettled()).toBe(false);
        const releasedAt = performance.now();
        expect(await adapter.forceReleaseAll(key)).toBe(true);
        const outcome = await waiting.outcome;
        expect(outcome.resolved).toBe(true);
        expect(outcome.at - releasedAt).toBeLessThan(PROMPTLY);
      });

      test("resolves after maxWait when nothing is freed, leaving the slots alone", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const key = freshKey();
        const token = await acquire(key, "alice", 1, LONG_TTL);
        const maxWait = 300;
        const startedAt = performance.now();
        const outcome = await observe(
          waitForRelease(key, TimeSpan.fromMilliseconds(maxWait), never(), {
            slotId: "bob",
            limit: 1,
            ttl: LONG_TTL,
          }),
        ).outcome;
        expect(outcome).toMatchObject({ resolved: true, value: undefined });
        expect(outcome.at - startedAt).toBeGreaterThanOrEqual(maxWait - 20);
        expect((await slotOf(key, "alice")).fencingToken).toBe(token);
        expect(await live(key, "bob")).toMatchObject({ acquiredSlotsCount: 1, slot: null });
      });

      test("rejects with the signal's reason soon after an abort, leaving the slots alone", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const key = freshKey();
        const token = await acquire(key, "alice", 1, LONG_TTL);
        const controller = new AbortController();
        const waiting = observe(
          waitForRelease(key, TimeSpan.fromSeconds(10), controller.signal, {
            slotId: "bob",
            limit: 1,
            ttl: LONG_TTL,
          }),
        );
        await untilQueued(key, 1);
        const reason = new Error("the caller gave up");
        const abortedAt = performance.now();
        controller.abort(reason);
        const outcome = await waiting.outcome;
        expect(outcome).toMatchObject({ resolved: false, reason });
        expect(outcome.at - abortedAt).toBeLessThan(PROMPTLY);
        expect((await slotOf(key, "alice")).fencingToken).toBe(token);
        // A release after the waiter left must not hand it anything.
        expect(await adapter.release(key, "alice")).toBe(true);
        await sleep(SUBSCRIBE_GRACE);
        expect(await adapter.getState(key, "bob")).toBeNull();
      });

      test("rejects at once with the reason of a signal aborted beforehand", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const key = freshKey();
        await acquire(key, "alice", 1, LONG_TTL);
        const reason = new Error("aborted before the call");
        const outcome = await observe(
          waitForRelease(key, TimeSpan.fromSeconds(10), AbortSignal.abort(reason)),
        ).outcome;
        expect(outcome).toMatchObject({ resolved: false, reason });
      });

      test("each release wakes at least one waiter, and every waiter is woken in turn", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const key = freshKey();
        await acquire(key, "alice", 1, LONG_TTL);
        const waiters = Array.from({ length: 5 }, () =>
          observe(waitForRelease(key, TimeSpan.fromSeconds(5), never())),
        );
        await untilQueued(key, waiters.length);
        let holder = "alice";
        for (let round = 0; round < waiters.length; round++) {
          const before = waiters.filter((waiter) => waiter.isSettled()).length;
          if (before === waiters.length) {
            break;
          }
          expect(await adapter.release(key, holder)).toBe(true);
          await vi.waitFor(
            () =>
              expect(waiters.filter((waiter) => waiter.isSettled()).length).toBeGreaterThan(before),
            { timeout: PROMPTLY },
          );
          holder = `holder-${round}`;
          await acquire(key, holder, 1, LONG_TTL);
        }
        for (const outcome of await Promise.all(waiters.map((waiter) => waiter.outcome))) {
          expect(outcome.resolved).toBe(true);
        }
      });

      test("a release of another key, even one it is a prefix of, wakes no one", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const parent = freshKey("order");
        const child = track(`${parent}:1`);
        await acquire(parent, "alice", 1, LONG_TTL);
        await acquire(child, "bob", 1, LONG_TTL);
        const maxWait = 600;
        const startedAt = performance.now();
        const parentWaiter = observe(
          waitForRelease(parent, TimeSpan.fromMilliseconds(maxWait), never()),
        );
        const childWaiter = observe(waitForRelease(child, TimeSpan.fromSeconds(5), never()));
        await untilQueued(child, 1);
        expect(await adapter.release(child, "bob")).toBe(true);
        expect((await childWaiter.outcome).resolved).toBe(true);
        const parentOutcome = await parentWaiter.outcome;
        expect(parentOutcome.at - startedAt).toBeGreaterThanOrEqual(maxWait - 20);
        expect(await live(parent)).toMatchObject({ acquiredSlotsCount: 1 });
      });

      test("with a claim, a release or forceReleaseAll hands the slot to the waiter, or leaves it free", async (context) => {
        for (const release of ["release", "forceReleaseAll"] as const) {
          const key = freshKey(release);
          const aliceToken = await acquire(key, "alice", 1, LONG_TTL);
          const waiting = claimed(context, key, { slotId: "bob", limit: 1, ttl: CLAIM_TTL });
          await untilQueued(key, 1);
          expect(
            release === "release"
              ? await adapter.release(key, "alice")
              : await adapter.forceReleaseAll(key),
          ).toBe(true);
          const end = await endOf(waiting, PROMPTLY);
          if (end === "pending") {
            expect.fail("the wait did not end soon after the release");
          }
          if (end === undefined) {
            expect(await adapter.getState(key, "bob")).toBeNull();
            continue;
          }
          expect(end).toMatchObject({ acquired: true, fencingToken: expect.any(Number) });
          if (end.remainingTime !== undefined) {
            expect(end.remainingTime.toMilliseconds()).toBeLessThanOrEqual(
              CLAIM_TTL.toMilliseconds(),
            );
          }
          const state = await live(key, "bob");
          expect(state).toMatchObject({ limit: 1, acquiredSlotsCount: 1 });
          expect(state.slot?.fencingToken).toBe(end.fencingToken);
          expect(end.fencingToken).toBeGreaterThan(aliceToken);
          expect(milliseconds(state.slot?.remainingTime)).toBeLessThanOrEqual(
            CLAIM_TTL.toMilliseconds(),
          );
          // The handed-over slot is bob's like any other: a stranger cannot take or free it.
          await refused(key, "carol", 1);
          expect(await adapter.release(key, "carol")).toBe(false);
          expect(await adapter.release(key, "bob")).toBe(true);
        }
      });

      test("freed slots go to the claims in arrival order, never to a newcomer, never past the limit", async (context) => {
        const key = freshKey();
        const tokens = [await acquire(key, "a", 2, LONG_TTL), await acquire(key, "b", 2, LONG_TTL)];
        const names = ["w0", "w1", "w2", "w3"];
        const waits = names.map((slotId) =>
          claimed(context, key, { slotId, limit: 2, ttl: LONG_TTL }),
        );
        await untilQueued(key, names.length);
        const holders = ["a", "b"];
        for (const [index, name] of names.entries()) {
          const leaving = holders.shift() ?? "";
          expect(await adapter.release(key, leaving)).toBe(true);
          // A newcomer right at the release: it must not get a slot that was handed over.
          const newcomer = await adapter.acquire(key, `newcomer-${index}`, 2, LONG_TTL);
          const end = await endOf(waits[index] ?? Promise.resolve(undefined), PROMPTLY);
          if (index === 0 && end === undefined) {
            await Promise.all(waits.slice(1).map((wait) => endOf(wait, 10)));
            return context.skip("the adapter wakes its waiters without handing slots over");
          }
          expect(end, `${name} is handed a slot`).toMatchObject({ acquired: true });
          expect(newcomer, `newcomer-${index} is refused`).toMatchObject({ acquired: false });
          const state = await live(key, name);
          expect(state.acquiredSlotsCount).toBe(2);
          const token = state.slot?.fencingToken ?? Number.NaN;
          expect(token).toBeGreaterThan(Math.max(...tokens));
          tokens.push(token);
          holders.push(name);
          for (const later of waits.slice(index + 1)) {
            expect(await endOf(later, 0), "the later claims still wait").toBe("pending");
          }
        }
      });

      test("a claim the limit rule does not admit yet keeps the claims behind it waiting", async (context) => {
        const key = freshKey();
        await acquire(key, "a", 2, LONG_TTL);
        await acquire(key, "b", 2, LONG_TTL);
        const strict = claimed(context, key, { slotId: "strict", limit: 1, ttl: LONG_TTL });
        await untilQueued(key, 1);
        const behind = claimed(context, key, { slotId: "behind", limit: 2, ttl: LONG_TTL });
        await untilQueued(key, 2);
        expect(await adapter.release(key, "a")).toBe(true);
        const first = await endOf(strict, SUBSCRIBE_GRACE);
        if (first === undefined) {
          await endOf(behind, 10);
          return context.skip("the adapter wakes its waiters without handing slots over");
        }
        // One slot live: not below strict's limit of 1, and behind may not pass it.
        expect(first).toBe("pending");
        expect(await endOf(behind, SUBSCRIBE_GRACE)).toBe("pending");
        expect(await adapter.release(key, "b")).toBe(true);
        expect(await endOf(strict, PROMPTLY)).toMatchObject({ acquired: true });
        // strict's limit of 1 is in force now: behind still waits.
        expect(await endOf(behind, SUBSCRIBE_GRACE)).toBe("pending");
        expect(await live(key)).toMatchObject({ limit: 1, acquiredSlotsCount: 1 });
        expect(await adapter.release(key, "strict")).toBe(true);
        expect(await endOf(behind, PROMPTLY)).toMatchObject({ acquired: true });
        expect(await live(key)).toMatchObject({ limit: 2, acquiredSlotsCount: 1 });
      });

      test("a claim whose wait ended (timed out or aborted) is never handed a slot", async (context) => {
        const key = freshKey();
        await acquire(key, "alice", 1, LONG_TTL);
        const timedOut = claimed(
          context,
          key,
          { slotId: "bob", limit: 1, ttl: LONG_TTL },
          SUBSCRIBE_GRACE,
        );
        const carol = abortableClaim(context, key, { slotId: "carol", limit: 1, ttl: LONG_TTL });
        expect(await endOf(timedOut, PROMPTLY)).toBeUndefined();
        carol.abort(new Error("carol gave up"));
        expect((await carol.waiting.outcome).resolved).toBe(false);
        expect(await adapter.release(key, "alice")).toBe(true);
        await sleep(SUBSCRIBE_GRACE);
        expect(await adapter.getState(key, "bob")).toBeNull();
      });

      test("an abort in the same tick as the release: either the slot is handed over and kept, or the wait rejects and holds nothing", async (context) => {
        for (let round = 0; round < 5; round++) {
          const key = freshKey();
          await acquire(key, "alice", 1, LONG_TTL);
          const bob = abortableClaim(context, key, { slotId: "bob", limit: 1, ttl: LONG_TTL });
          await untilQueued(key, 1);
          const releasing = adapter.release(key, "alice");
          bob.abort(new Error("gave up"));
          expect(await releasing).toBe(true);
          const outcome = await bob.waiting.outcome;
          if (outcome.resolved && outcome.value !== undefined) {
            const handOff = outcome.value as { fencingToken: number };
            expect((await slotOf(key, "bob")).fencingToken, "the handed-over slot is bob's").toBe(
              handOff.fencingToken,
            );
          } else {
            // An adapter that granted at the release gives the slot back once the wait is gone.
            await vi.waitFor(
              async () =>
                expect(
                  (await adapter.getState(key, "bob"))?.slot ?? null,
                  "bob holds no slot it was not told about",
                ).toBeNull(),
              { timeout: PATIENCE_MS, interval: 5 },
            );
          }
          const state = await adapter.getState(key, "bob");
          expect(state?.acquiredSlotsCount ?? 0).toBeLessThanOrEqual(1);
        }
      });

      test("a claim without a TTL is handed a slot that never expires", async (context) => {
        const key = freshKey();
        await acquire(key, "alice", 1, LONG_TTL);
        const waiting = claimed(context, key, { slotId: "bob", limit: 1, ttl: null });
        await untilQueued(key, 1);
        expect(await adapter.release(key, "alice")).toBe(true);
        const end = await endOf(waiting, PROMPTLY);
        expect(end).not.toBe("pending");
        if (end === undefined) {
          return context.skip("the adapter wakes its waiters without handing slots over");
        }
        expect((await slotOf(key, "bob")).remainingTime).toBeNull();
        expect(await adapter.refresh(key, "bob", LONG_TTL)).toBe(false);
      });

      test("two claims of one owner: one slot for both, and the second's abort leaves it alone", async (context) => {
        const key = freshKey();
        await acquire(key, "alice", 2, LONG_TTL);
        await acquire(key, "carol", 2, LONG_TTL);
        const claim: SemaphoreWaitClaim = { slotId: "bob", limit: 2, ttl: LONG_TTL };
        const first = claimed(context, key, claim);
        const second = abortableClaim(context, key, claim);
        await untilQueued(key, 2);
        expect(await adapter.release(key, "alice")).toBe(true);
        const end = await endOf(first, PROMPTLY);
        if (end === undefined) {
          second.abort();
          await second.waiting.outcome;
          return context.skip("the adapter wakes its waiters without handing slots over");
        }
        expect(end).toMatchObject({ acquired: true });
        const token = end === "pending" ? Number.NaN : end.fencingToken;
        // bob holds one slot whatever became of its second wait, and the key is full.
        expect(await live(key, "bob")).toMatchObject({ acquiredSlotsCount: 2 });
        expect((await slotOf(key, "bob")).fencingToken).toBe(token);
        second.abort(new Error("the second wait gave up"));
        const outcome = await second.waiting.outcome;
        if (outcome.resolved && outcome.value !== undefined) {
          expect(outcome.value).toMatchObject({ acquired: true, fencingToken: token });
        }
        expect((await slotOf(key, "bob")).fencingToken).toBe(token);
        expect(await live(key)).toMatchObject({ acquiredSlotsCount: 2 });
        expect(await adapter.release(key, "carol")).toBe(true);
        // The freed slot is free: the second wait, gone, took nothing.
        expect(await live(key)).toMatchObject({ acquiredSlotsCount: 1 });
        expect(await adapter.release(key, "bob")).toBe(true);
      });

      test("two claims of one owner: the second's abort in the grant's tick leaves the first's slot held", async (context) => {
        const key = freshKey();
        await acquire(key, "alice", 2, LONG_TTL);
        await acquire(key, "carol", 2, LONG_TTL);
        const claim: SemaphoreWaitClaim = { slotId: "bob", limit: 2, ttl: LONG_TTL };
        const first = claimed(context, key, claim);
        const second = abortableClaim(context, key, claim);
        await untilQueued(key, 2);
        expect(await adapter.release(key, "alice")).toBe(true);
        // Right after the release returns: before the grant's message is heard.
        second.abort(new Error("the second wait gave up"));
        const handed = await endOf(first, PROMPTLY);
        await second.waiting.outcome;
        if (handed === undefined) {
          return context.skip("the adapter wakes its waiters without handing slots over");
        }
        expect(handed, "the first wait is handed the slot").toMatchObject({ acquired: true });
        // bob was told it holds a slot: the key must still count it.
        const state = await live(key, "bob");
        expect(state.slot?.fencingToken).toBe(
          handed === "pending" ? Number.NaN : handed.fencingToken,
        );
        expect(state.acquiredSlotsCount).toBe(2);
      });

      test("a newcomer does not pass a queued claim that its own smaller limit holds back", async (context) => {
        await handsOffOrSkip(context);
        const key = freshKey();
        await acquire(key, "alice", 3, LONG_TTL);
        await acquire(key, "bob", 3, LONG_TTL);
        // Two slots live: carol's limit of 2 is reached, dave's of 3 is not. First come, first
        // served: else greater-limit newcomers keeping the count up pass her for ever.
        const carol = abortableClaim(context, key, { slotId: "carol", limit: 2, ttl: LONG_TTL });
        await untilQueued(key, 1);
        const dave = await adapter.acquire(key, "dave", 3, LONG_TTL);
        carol.abort(new Error("done"));
        await carol.waiting.outcome;
        expect(dave, "dave is refused while carol waits ahead").toMatchObject({ acquired: false });
      });

      test("claims keep their order while holders refresh past their former expiries", async (context) => {
        waitForReleaseOf(context);
        let waits: Wait[] = [];
        let key = "";
        await unlessStalled(async () => {
          key = freshKey();
          const ttl = RESTART_TTL;
          // A stalled attempt's waits give up, so that they take nothing of the next one's.
          const attempt = new AbortController();
          let sentAt = performance.now();
          await acquire(key, "alice", 1, ttl);
          waits = ["w0", "w1"].map((slotId) =>
            claimed(context, key, { slotId, limit: 1, ttl: LONG_TTL }, 20_000, attempt.signal),
          );
          for (const wait of waits) {
            wait.catch(() => {});
          }
          try {
            await untilQueued(key, waits.length);
            const refreshUntil = performance.now() + 3 * ttl.toMilliseconds();
            while (performance.now() < refreshUntil) {
              const refreshedSince = sentAt;
              sentAt = performance.now();
              const refreshed = await adapter.refresh(key, "alice", ttl);
              // alice keeps her slot only if each refresh came within the TTL of the one before.
              within(refreshedSince, ttl.toMilliseconds() - 100, "the refresh after the last");
              expect(refreshed, "alice keeps her slot").toBe(true);
              await sleep(100);
            }
          } catch (error) {
            attempt.abort(error);
            throw error;
          }
        });
        for (const wait of waits) {
          expect(await endOf(wait, 0), "a refresh ends no wait").toBe("pending");
        }
        expect(await adapter.release(key, "alice")).toBe(true);
        const end = await endOf(waits[0] as Wait, PROMPTLY);
        if (end === undefined) {
          await endOf(waits[1] as Wait, 10);
          return context.skip("the adapter wakes its waiters without handing slots over");
        }
        expect(end).toMatchObject({ acquired: true });
        expect(await endOf(waits[1] as Wait, 0)).toBe("pending");
        expect(await adapter.release(key, "w0")).toBe(true);
        expect(await endOf(waits[1] as Wait, PROMPTLY)).toMatchObject({ acquired: true });
      });

      test("waitsPastExpiry: a slot's expiry hands it to the oldest claim, the next one waits on", async (context) => {
        waitForReleaseOf(context);
        if (adapter.waitsPastExpiry !== true) {
          return context.skip("the adapter's waits end at the soonest expiry (waitsPastExpiry)");
        }
        let key = "";
        let aliceToken = Number.NaN;
        let first: Wait = Promise.resolve(undefined);
        let second: Wait = Promise.resolve(undefined);
        await unlessStalled(async () => {
          key = freshKey();
          // A stalled attempt's waits give up, so that they take nothing of the next one's.
          const attempt = new AbortController();
          const acquiredAt = performance.now();
          aliceToken = await acquire(key, "alice", 1, RESTART_TTL);
          first = claimed(
            context,
            key,
            { slotId: "bob", limit: 1, ttl: LONG_TTL },
            20_000,
            attempt.signal,
          );
          first.catch(() => {});
          await untilQueued(key, 1);
          second = claimed(
            context,
            key,
            { slotId: "carol", limit: 1, ttl: LONG_TTL },
            20_000,
            attempt.signal,
          );
          second.catch(() => {});
          try {
            // bob waits past alice's expiry only if his wait was queued before it.
            within(acquiredAt, RESTART_TTL.toMilliseconds() - 100, "acquire and queue a wait");
          } catch (error) {
            attempt.abort(error);
            throw error;
          }
        });
        const end = await endOf(first, PROMPTLY + RESTART_TTL.toMilliseconds());
        expect(end, "bob is handed the slot when alice's expires").toMatchObject({
          acquired: true,
        });
        expect((await slotOf(key, "bob")).fencingToken).toBeGreaterThan(aliceToken);
        expect(await endOf(second, 0), "carol waits on").toBe("pending");
        expect(await adapter.release(key, "bob")).toBe(true);
        expect(await endOf(second, PROMPTLY)).toMatchObject({ acquired: true });
      });

      /** A claimed wait, when the adapter says its claimed waits acquire (`waitAcquires`). */
      function acquiringWaitOf(context: TestContext) {
        waitForReleaseOf(context);
        if (adapter.waitAcquires !== true) {
          return context.skip("the adapter's waits do not acquire (waitAcquires)");
        }
        return (key: string, slotId: string, limit: number, ttl: TimeSpan | null) =>
          claimed(context, key, { slotId, limit, ttl }, 5_000);
      }

      test("waitAcquires: a claimed wait takes a free slot at once, as acquire would", async (context) => {
        const wait = acquiringWaitOf(context);
        const key = freshKey();
        await acquire(key, "alice", 2, LONG_TTL);
        const taken = await wait(key, "bob", 2, LONG_TTL);
        expect(taken).toMatchObject({ acquired: true });
        expect((await slotOf(key, "bob")).fencingToken).toBe(taken?.fencingToken);
        expect((await live(key)).acquiredSlotsCount).toBe(2);

        const expired = freshKey();
        const first = await acquire(expired, "carol", 1, SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        const takenOver = await wait(expired, "dave", 1, null);
        expect(takenOver?.fencingToken).toBeGreaterThan(first);
        expect((await slotOf(expired, "dave")).remainingTime).toBeNull();
      });

      test("waitAcquires: a claimed wait on its own live slot re-takes it: same token, TTL restarted", async (context) => {
        const wait = acquiringWaitOf(context);
        await unlessStalled(async () => {
          const key = freshKey();
          const acquiredAt = performance.now();
          const ttl = TimeSpan.fromSeconds(2);
          const token = await acquire(key, "alice", 1, ttl);
          const taken = await wait(key, "alice", 1, LONG_TTL);
          // The same slot is re-taken only if it was still live when the wait came.
          within(acquiredAt, ttl.toMilliseconds() - 100, "acquire and a wait");
          expect(taken).toEqual({ acquired: true, fencingToken: token });
          expect(milliseconds((await slotOf(key, "alice")).remainingTime)).toBeGreaterThan(50_000);
          expect((await live(key)).acquiredSlotsCount).toBe(1);
        });
      });

      test("waitAcquires: a claimed wait never outlasts the soonest expiry, and the next one takes the slot", async (context) => {
        const wait = acquiringWaitOf(context);
        await unlessStalled(async () => {
          const key = freshKey();
          const acquiredAt = performance.now();
          const first = await acquire(key, "alice", 1, TimeSpan.fromMilliseconds(400));
          const startedAt = performance.now();
          // The slot's expiry is 300 ms away or more only if the acquire answered within 100 ms.
          within(acquiredAt, 100, "acquire");
          const end = await endOf(wait(key, "bob", 1, LONG_TTL), 5_000);
          expect(end, "the wait ended with the slot, long before its time").not.toBe("pending");
          expect(performance.now() - startedAt).toBeGreaterThanOrEqual(300);
          if (end === undefined) {
            expect(await wait(key, "bob", 1, LONG_TTL)).toMatchObject({ acquired: true });
          }
          expect((await slotOf(key, "bob")).fencingToken).toBeGreaterThan(first);
        });
      });
    });
  });
}
