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
  PROMPTLY,
  RESTART_TTL,
  SHORT_TTL,
  SUBSCRIBE_GRACE,
  unlessStalled,
  within,
} from "../../primitive/test-suites/suite-timing.js";
import { TimeSpan } from "../../time-span/time-span.js";
import type {
  ISharedLockAdapter,
  SharedLockAdapterReadersState,
  SharedLockAdapterWriterState,
  SharedLockReaderAcquireResult,
  SharedLockWaitClaim,
  SharedLockWaitResult,
  SharedLockWriterAcquireResult,
} from "../contracts/shared-lock-adapter.js";

/** Settings of {@link sharedLockAdapterTestSuite}: how to get the adapter under test. */
export type SharedLockAdapterTestSuiteSettings = {
  /** A fresh adapter (or one shared by the suite) for each test. */
  createAdapter: () => ISharedLockAdapter | Promise<ISharedLockAdapter>;
  /** Called after each test, once the test's keys are force-released. */
  destroyAdapter?: (adapter: ISharedLockAdapter) => void | Promise<void>;
  /**
   * Whether two adapters from `createAdapter` see the same keys (two clients of one server),
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
   * queues a wait asynchronously (after a subscription, or a round trip). The queue tests then
   * act only once their waits are queued. Without it they give the waits 100 ms, which is
   * enough for an adapter that queues a wait in the call itself.
   */
  queuedWaits?: (key: string) => Promise<number>;
};

type WriterRefusal = Extract<SharedLockWriterAcquireResult, { acquired: false }>;
type ReaderRefusal = Extract<SharedLockReaderAcquireResult, { acquired: false }>;
type Wait = Promise<SharedLockWaitResult>;

/** An intent that outlasts any test: a writer that keeps waiting. */
const LASTING_INTENT = TimeSpan.fromSeconds(30);
/** An intent that lapses during the test: a waiting writer that crashed. */
const LAPSING_INTENT = TimeSpan.fromMilliseconds(200);

/**
 * The behaviour every `ISharedLockAdapter` must have, specified once; run it in a vitest file
 * against each implementation. It uses real time with TTLs of 100 ms to a few seconds, so it
 * suits any backend, remote ones included. The queue tests are skipped for adapters without
 * `waitForRelease`, the intent tests for adapters with it.
 *
 * @example
 * sharedLockAdapterTestSuite({ createAdapter: () => new MemorySharedLockAdapter() });
 *
 * @example
 * sharedLockAdapterTestSuite({
 *   createAdapter: () => new RedisSharedLockAdapter(client),
 *   keyPrefix: "my-app-tests:",
 * });
 */
export function sharedLockAdapterTestSuite(settings: SharedLockAdapterTestSuiteSettings): void {
  const {
    createAdapter,
    destroyAdapter,
    instancesShareBackend = true,
    keyPrefix = "hasp-suite:",
    queuedWaits,
  } = settings;
  const keys = new SuiteKeys(keyPrefix);
  const milliseconds = (remainingTime: TimeSpan | null | undefined) =>
    millisecondsOf(remainingTime, "a hold");

  describe("shared lock adapter conformance", () => {
    let adapter: ISharedLockAdapter;
    /** A key no other test (or run) has used; force-released after the test. */
    const freshKey = (label?: string) => keys.fresh(label);
    const track = (key: string) => keys.track(key);

    /** Takes the key as `lockId`'s writer and returns the token, failing the test when refused. */
    async function writer(
      key: string,
      lockId: string,
      ttl: TimeSpan | null = LONG_TTL,
      on: ISharedLockAdapter = adapter,
    ): Promise<number> {
      const result = await on.acquireWriter(key, lockId, ttl, null);
      expect(result, `${lockId} takes ${key} as its writer`).toMatchObject({ acquired: true });
      return result.acquired ? result.fencingToken : Number.NaN;
    }

    /** Takes a reader slot and returns the token, failing the test when refused. */
    async function reader(
      key: string,
      lockId: string,
      limit = 3,
      ttl: TimeSpan | null = LONG_TTL,
      on: ISharedLockAdapter = adapter,
    ): Promise<number> {
      const result = await on.acquireReader(key, lockId, limit, ttl);
      expect(result, `${lockId} takes a reader slot of ${key}`).toMatchObject({ acquired: true });
      return result.acquired ? result.fencingToken : Number.NaN;
    }

    /** A writer's acquire that must be refused: the refusal. */
    async function writerRefused(
      key: string,
      lockId: string,
      intent: TimeSpan | null = null,
      ttl: TimeSpan | null = LONG_TTL,
    ): Promise<WriterRefusal> {
      const result = await adapter.acquireWriter(key, lockId, ttl, intent);
      if (result.acquired) {
        return expect.fail(`${lockId} must be refused ${key} as its writer`);
      }
      return result;
    }

    /** A reader's acquire that must be refused: the refusal. */
    async function readerRefused(
      key: string,
      lockId: string,
      limit = 3,
      ttl: TimeSpan | null = LONG_TTL,
    ): Promise<ReaderRefusal> {
      const result = await adapter.acquireReader(key, lockId, limit, ttl);
      if (result.acquired) {
        return expect.fail(`${lockId} must be refused a reader slot of ${key}`);
      }
      return result;
    }

    /** The key's writer state as `lockId` sees it, failing the test when no writer is live. */
    async function writerState(
      key: string,
      lockId = "observer",
    ): Promise<SharedLockAdapterWriterState> {
      const state = await adapter.getState(key, lockId);
      if (state?.heldBy !== "writer") {
        return expect.fail(`${key} has a live writer, not ${JSON.stringify(state)}`);
      }
      return state;
    }

    /** The key's readers state as `lockId` sees it, failing the test when no reader is live. */
    async function readersState(
      key: string,
      lockId = "observer",
    ): Promise<SharedLockAdapterReadersState> {
      const state = await adapter.getState(key, lockId);
      if (state?.heldBy !== "readers") {
        return expect.fail(`${key} has live readers, not ${JSON.stringify(state)}`);
      }
      return state;
    }

    /** Resolves once `count` waits are queued on `key` (see `queuedWaits`). */
    const untilQueued = (key: string, count: number) => untilQueuedBy(queuedWaits, key, count);

    function waitForReleaseOf(
      context: TestContext,
    ): NonNullable<ISharedLockAdapter["waitForRelease"]> {
      const waitForRelease = adapter.waitForRelease;
      if (waitForRelease === undefined) {
        return context.skip("the adapter has no waitForRelease (it polls, and records intents)");
      }
      return waitForRelease.bind(adapter);
    }

    /** Skips a test of intents on an adapter that queues its writers' claims instead. */
    function pollingOrSkip(context: TestContext): void {
      if (adapter.waitForRelease !== undefined) {
        context.skip("the adapter has waitForRelease (it queues claims, and records no intent)");
      }
    }

    /** A claimed wait of `maxWait` ms with a signal nothing aborts. */
    function claimed(
      context: TestContext,
      key: string,
      claim: SharedLockWaitClaim,
      maxWait = 10_000,
      signal = never(),
    ): Wait {
      return waitForReleaseOf(context)(key, TimeSpan.fromMilliseconds(maxWait), signal, claim);
    }

    /** A claimed wait, watched, that the test may end with `abort` (aborted after the test). */
    function abortableClaim(
      context: TestContext,
      key: string,
      claim: SharedLockWaitClaim,
      maxWait = 10_000,
    ): { waiting: ReturnType<typeof observe>; abort: (reason?: unknown) => void } {
      const controller = new AbortController();
      const waiting = observe(claimed(context, key, claim, maxWait, controller.signal));
      onTestFinished(() => controller.abort(new Error("the test ended")));
      return { waiting, abort: (reason) => controller.abort(reason) };
    }

    const writerClaim = (lockId: string, ttl: TimeSpan | null = LONG_TTL): SharedLockWaitClaim => ({
      side: "writer",
      lockId,
      ttl,
    });
    const readerClaim = (
      lockId: string,
      limit = 3,
      ttl: TimeSpan | null = LONG_TTL,
    ): SharedLockWaitClaim => ({ side: "reader", lockId, limit, ttl });

    /** The token of a wait's hand-off, failing the test when it ended without one. */
    async function handedOver(waiting: Wait, what: string): Promise<number> {
      const end = await endOf(waiting, PATIENCE);
      expect(end, `${what} is handed its hold`).toMatchObject({ acquired: true });
      return end !== "pending" && end !== undefined ? end.fencingToken : Number.NaN;
    }

    /**
     * Skips the test unless a release hands the key to the oldest claimed wait (memory, Redis,
     * PostgreSQL with a listener) rather than only waking it: probed on a key of its own.
     */
    async function handsOffOrSkip(context: TestContext): Promise<void> {
      const key = freshKey("probe");
      await writer(key, "probe-holder");
      const waiting = claimed(context, key, writerClaim("probe-waiter"));
      await untilQueued(key, 1);
      expect(await adapter.releaseWriter(key, "probe-holder")).toBe(true);
      const end = await endOf(waiting, PROMPTLY);
      expect(end, "the wait ends soon after the release").not.toBe("pending");
      if (end === undefined) {
        context.skip("the adapter wakes its waiters without handing the key over");
      }
    }

    /**
     * More instances of the adapter, as other processes would have (destroyed after the test),
     * or the test's own one `count` times when instances do not share a backend.
     */
    async function otherInstances(count: number): Promise<ISharedLockAdapter[]> {
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
      // Holds without expiry would otherwise stay on a shared server.
      await Promise.all(keys.takeUsed().map((key) => adapter.forceRelease(key)));
      await destroyAdapter?.(adapter);
    });

    describe("acquireWriter", () => {
      test("a free key: the writer takes it; getState shows the owner, the TTL and the token", async () => {
        const key = freshKey();
        const ttl = TimeSpan.fromSeconds(10);
        const result = await adapter.acquireWriter(key, "alice", ttl, null);
        expect(result).toEqual({ acquired: true, fencingToken: expect.any(Number) });
        const state = await writerState(key, "bob");
        expect(state).toMatchObject({ heldBy: "writer", owner: "alice" });
        expect(state.fencingToken).toBe(result.acquired && result.fencingToken);
        const remaining = milliseconds(state.remainingTime);
        expect(remaining).toBeGreaterThan(ttl.toMilliseconds() / 2);
        expect(remaining).toBeLessThanOrEqual(ttl.toMilliseconds());
      });

      test("another live writer: refused with blockedBy writer, its owner and remaining time", async () => {
        const key = freshKey();
        await writer(key, "alice", TimeSpan.fromSeconds(10));
        const refusal = await writerRefused(key, "bob");
        expect(refusal).toMatchObject({ blockedBy: "writer", owner: "alice" });
        const remaining = milliseconds(refusal.remainingTime);
        expect(remaining).toBeGreaterThan(0);
        expect(remaining).toBeLessThanOrEqual(10_000);
        const endless = freshKey("endless");
        await writer(endless, "carol", null);
        expect(await writerRefused(endless, "bob")).toEqual({
          acquired: false,
          blockedBy: "writer",
          owner: "carol",
          remainingTime: null,
        });
      });

      test("live readers: refused with blockedBy readers, the count and the soonest expiry", async () => {
        const key = freshKey();
        await reader(key, "r1", 3, TimeSpan.fromSeconds(5));
        await reader(key, "r2", 3, TimeSpan.fromSeconds(20));
        const refusal = await writerRefused(key, "w");
        expect(refusal).toMatchObject({ blockedBy: "readers", acquiredSlotsCount: 2 });
        const soonest = milliseconds(refusal.remainingTime);
        expect(soonest).toBeGreaterThan(0);
        expect(soonest).toBeLessThanOrEqual(5_000);
        const endless = freshKey("endless");
        await reader(endless, "r1", 3, null);
        expect(await writerRefused(endless, "w")).toEqual({
          acquired: false,
          blockedBy: "readers",
          acquiredSlotsCount: 1,
          remainingTime: null,
        });
      });

      test("the caller's own reader slot counts as readers: a reader is never made a writer", async () => {
        const key = freshKey();
        const token = await reader(key, "alice");
        expect(await writerRefused(key, "alice")).toMatchObject({
          blockedBy: "readers",
          acquiredSlotsCount: 1,
        });
        const state = await readersState(key, "alice");
        expect(state.slot?.fencingToken).toBe(token);
        expect(state.acquiredSlotsCount).toBe(1);
      });

      test("re-acquire of the own live writer hold: same token, TTL restarted", async () => {
        await unlessStalled(async () => {
          const key = freshKey();
          const acquiredAt = performance.now();
          const token = await writer(key, "alice", RESTART_TTL);
          await sleep(ELAPSED);
          const again = await adapter.acquireWriter(key, "alice", RESTART_TTL, null);
          const againAt = performance.now();
          const state = await adapter.getState(key, "alice");
          within(
            acquiredAt,
            RESTART_TTL.toMilliseconds() - 100,
            "acquire, pause and acquire again",
          );
          within(againAt, RESTART_TTL.toMilliseconds() - MIDPOINT, "getState");
          expect(again).toEqual({ acquired: true, fencingToken: token });
          expect(state).toMatchObject({ heldBy: "writer", owner: "alice", fencingToken: token });
          expect(
            milliseconds(state?.heldBy === "writer" ? state.remainingTime : undefined),
          ).toBeGreaterThan(MIDPOINT);
        });
      });

      test("after its own hold expired: a new, greater token", async () => {
        const key = freshKey();
        const first = await writer(key, "alice", SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        expect(await writer(key, "alice")).toBeGreaterThan(first);
      });

      test("ttl null: the hold never expires and cannot be refreshed", async () => {
        const key = freshKey();
        const token = await writer(key, "alice", null);
        expect(await writerState(key)).toEqual({
          heldBy: "writer",
          owner: "alice",
          remainingTime: null,
          fencingToken: token,
        });
        expect(await adapter.refreshWriter(key, "alice", EXTENSION)).toBe(false);
        expect((await writerState(key)).remainingTime).toBeNull();
      });

      test("a refusal leaves the holders' TTLs alone", async () => {
        const key = freshKey();
        await writer(key, "alice", TimeSpan.fromSeconds(10));
        await writerRefused(key, "bob", null, EXTENSION);
        await readerRefused(key, "bob", 3, EXTENSION);
        expect(milliseconds((await writerState(key)).remainingTime)).toBeLessThanOrEqual(10_000);
        const readKey = freshKey("read");
        await reader(readKey, "carol", 3, TimeSpan.fromSeconds(10));
        await writerRefused(readKey, "bob", null, EXTENSION);
        const slot = (await readersState(readKey, "carol")).slot;
        expect(milliseconds(slot?.remainingTime)).toBeLessThanOrEqual(10_000);
      });

      test("50 writers at once on a free key: exactly one wins, the others see it as the writer", async () => {
        const key = freshKey();
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => adapter.acquireWriter(key, `w${i}`, LONG_TTL, null)),
        );
        const winners = results.flatMap((result, i) => (result.acquired ? [`w${i}`] : []));
        expect(winners).toHaveLength(1);
        for (const result of results) {
          if (!result.acquired) {
            expect(result).toMatchObject({ blockedBy: "writer", owner: winners[0] });
          }
        }
      });
    });

    describe("acquireReader", () => {
      test("a free key: a slot is taken; getState shows the limit, the count and the slot", async () => {
        const key = freshKey();
        const ttl = TimeSpan.fromSeconds(10);
        const result = await adapter.acquireReader(key, "alice", 3, ttl);
        expect(result).toEqual({ acquired: true, fencingToken: expect.any(Number) });
        const state = await readersState(key, "alice");
        expect(state).toMatchObject({
          heldBy: "readers",
          limit: 3,
          acquiredSlotsCount: 1,
          writerWaiting: false,
        });
        expect(state.slot?.fencingToken).toBe(result.acquired && result.fencingToken);
        const remaining = milliseconds(state.slot?.remainingTime);
        expect(remaining).toBeGreaterThan(ttl.toMilliseconds() / 2);
        expect(remaining).toBeLessThanOrEqual(ttl.toMilliseconds());
        expect(await readersState(key, "bob")).toEqual({
          heldBy: "readers",
          limit: 3,
          acquiredSlotsCount: 1,
          slot: null,
          writerWaiting: false,
        });
      });

      test("a live writer (the caller itself included): refused with blockedBy writer, its owner and remaining time", async () => {
        const key = freshKey();
        await writer(key, "alice", TimeSpan.fromSeconds(10));
        for (const lockId of ["bob", "alice"]) {
          const refusal = await readerRefused(key, lockId);
          expect(refusal).toMatchObject({ blockedBy: "writer", owner: "alice" });
          const remaining = milliseconds(refusal.remainingTime);
          expect(remaining).toBeGreaterThan(0);
          expect(remaining).toBeLessThanOrEqual(10_000);
        }
        expect((await writerState(key)).owner).toBe("alice");
      });

      test("`limit` readers hold; the next is refused with blockedBy limit, the count and the soonest expiry", async () => {
        const key = freshKey();
        const tokens = new Set<number>();
        tokens.add(await reader(key, "a", 3, TimeSpan.fromSeconds(5)));
        tokens.add(await reader(key, "b", 3, TimeSpan.fromSeconds(20)));
        tokens.add(await reader(key, "c", 3, null));
        expect(tokens.size).toBe(3);
        const refusal = await readerRefused(key, "d", 3);
        expect(refusal).toMatchObject({ blockedBy: "limit", limit: 3, acquiredSlotsCount: 3 });
        const soonest = milliseconds(refusal.remainingTime);
        expect(soonest).toBeGreaterThan(0);
        expect(soonest).toBeLessThanOrEqual(5_000);
      });

      test("re-acquire of the own live slot, even at the limit: same token, limit kept, TTL restarted", async () => {
        await unlessStalled(async () => {
          const key = freshKey();
          const acquiredAt = performance.now();
          const token = await reader(key, "alice", 2, RESTART_TTL);
          await reader(key, "bob", 2);
          await sleep(ELAPSED);
          const again = await adapter.acquireReader(key, "alice", 5, RESTART_TTL);
          const againAt = performance.now();
          const state = await adapter.getState(key, "alice");
          within(
            acquiredAt,
            RESTART_TTL.toMilliseconds() - 100,
            "acquire, pause and acquire again",
          );
          within(againAt, RESTART_TTL.toMilliseconds() - MIDPOINT, "getState");
          expect(again).toEqual({ acquired: true, fencingToken: token });
          expect(state).toMatchObject({ heldBy: "readers", limit: 2, acquiredSlotsCount: 2 });
          const slot = state?.heldBy === "readers" ? state.slot : null;
          expect(slot?.fencingToken).toBe(token);
          expect(milliseconds(slot?.remainingTime)).toBeGreaterThan(MIDPOINT);
        });
      });

      test("after its own slot expired: a new, greater token, and a free slot is needed like anyone's", async () => {
        const key = freshKey();
        const first = await reader(key, "alice", 1, SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        await reader(key, "bob", 1);
        expect(await readerRefused(key, "alice", 1)).toMatchObject({ blockedBy: "limit" });
        expect(await adapter.releaseReader(key, "bob")).toBe(true);
        expect(await reader(key, "alice", 1)).toBeGreaterThan(first);
      });

      test("ttl null: the slot never expires and cannot be refreshed", async () => {
        const key = freshKey();
        const token = await reader(key, "alice", 2, null);
        expect((await readersState(key, "alice")).slot).toEqual({
          remainingTime: null,
          fencingToken: token,
        });
        expect(await adapter.refreshReader(key, "alice", EXTENSION)).toBe(false);
        expect((await readersState(key, "alice")).slot?.remainingTime).toBeNull();
      });

      test("differing limits: a slot keeps its limit, and the smallest live limit holds", async () => {
        const key = freshKey();
        await reader(key, "a", 3);
        await reader(key, "b", 3);
        // A smaller limit than the count: refused, and nobody loses a slot.
        expect(await readerRefused(key, "c", 2)).toMatchObject({
          blockedBy: "limit",
          limit: 2,
          acquiredSlotsCount: 2,
        });
        // A greater limit: the live slots' 3 still holds.
        await reader(key, "d", 5);
        expect(await readerRefused(key, "e", 5)).toMatchObject({
          blockedBy: "limit",
          limit: 3,
          acquiredSlotsCount: 3,
        });
        // Re-acquiring with another limit keeps the slot's.
        await reader(key, "a", 10);
        expect(await readersState(key)).toMatchObject({ limit: 3, acquiredSlotsCount: 3 });
        // Once the slots of limit 3 are gone, the greater one applies.
        expect(await adapter.releaseReader(key, "a")).toBe(true);
        expect(await adapter.releaseReader(key, "b")).toBe(true);
        await reader(key, "e", 5);
        await reader(key, "f", 5);
        expect(await readersState(key)).toMatchObject({ limit: 5, acquiredSlotsCount: 3 });
      });

      test("a limit that is not a whole number from 1 to 1,000,000 is refused with InvalidArgumentError, and nothing is stored", async () => {
        const key = freshKey();
        for (const limit of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 1_000_001]) {
          await expect(
            adapter.acquireReader(key, "alice", limit, LONG_TTL),
            `limit ${limit}`,
          ).rejects.toBeInstanceOf(InvalidArgumentError);
          if (adapter.waitForRelease !== undefined) {
            await expect(
              adapter.waitForRelease(key, SHORT_TTL, never(), readerClaim("alice", limit)),
              `a wait's claim of limit ${limit}`,
            ).rejects.toBeInstanceOf(InvalidArgumentError);
          }
        }
        expect(await adapter.getState(key, "alice")).toBeNull();
      });

      test("50 readers at once on limit 3: exactly 3 win, with distinct tokens", async () => {
        const key = freshKey();
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => adapter.acquireReader(key, `r${i}`, 3, LONG_TTL)),
        );
        const winners = results.flatMap((result) => (result.acquired ? [result.fencingToken] : []));
        expect(winners).toHaveLength(3);
        expect(new Set(winners).size).toBe(3);
        expect((await readersState(key)).acquiredSlotsCount).toBe(3);
      });
    });

    describe("a crashed holder", () => {
      // The headline case: the writer needs no other call to see the reader gone.
      test("a crashed reader: acquireWriter succeeds once its TTL has passed, with no other call in between", async () => {
        await unlessStalled(async () => {
          const key = freshKey();
          const crashedAt = performance.now();
          const old = await reader(key, "crashed", 3, SHORT_TTL);
          const first = await adapter.acquireWriter(key, "writer", LONG_TTL, null);
          // Seen only if the backend answered within the reader's TTL: else this tries again.
          within(crashedAt, SHORT_TTL.toMilliseconds() - 20, "a reader's and a writer's acquire");
          expect(first).toMatchObject({ acquired: false, blockedBy: "readers" });
          const result = await vi.waitFor(
            async () => {
              const attempt = await adapter.acquireWriter(key, "writer", LONG_TTL, null);
              if (!attempt.acquired) {
                expect(attempt.blockedBy).toBe("readers");
                throw new Error(`refused: ${attempt.blockedBy}`);
              }
              return attempt;
            },
            { timeout: SHORT_TTL.toMilliseconds() + PROMPTLY, interval: 5 },
          );
          // Not before the reader's TTL: it was live until then (a little slack for clock steps).
          expect(performance.now() - crashedAt).toBeGreaterThanOrEqual(
            SHORT_TTL.toMilliseconds() - 10,
          );
          expect(result.fencingToken).toBeGreaterThan(old);
          expect((await writerState(key)).owner).toBe("writer");
        });
      });

      test("many crashed readers: acquireWriter succeeds once the last TTL has passed", async () => {
        const key = freshKey();
        const start = performance.now();
        await reader(key, "r1", 3, TimeSpan.fromMilliseconds(50));
        await reader(key, "r2", 3, SHORT_TTL);
        await reader(key, "r3", 3, TimeSpan.fromMilliseconds(150));
        await vi.waitFor(
          async () => {
            const attempt = await adapter.acquireWriter(key, "writer", LONG_TTL, null);
            if (!attempt.acquired) {
              throw new Error(`refused: ${attempt.blockedBy}`);
            }
          },
          { timeout: 150 + PROMPTLY, interval: 5 },
        );
        expect(performance.now() - start).toBeGreaterThanOrEqual(140);
      });

      test("a crashed writer: acquireReader succeeds once its TTL has passed, with no other call in between", async () => {
        const key = freshKey();
        const old = await writer(key, "crashed", SHORT_TTL);
        const result = await vi.waitFor(
          async () => {
            const attempt = await adapter.acquireReader(key, "reader", 3, LONG_TTL);
            if (!attempt.acquired) {
              expect(attempt.blockedBy).toBe("writer");
              throw new Error(`refused: ${attempt.blockedBy}`);
            }
            return attempt;
          },
          { timeout: SHORT_TTL.toMilliseconds() + PROMPTLY, interval: 5 },
        );
        expect(result.fencingToken).toBeGreaterThan(old);
      });

      test("a crashed writer: another writer takes the key once its TTL has passed", async () => {
        const key = freshKey();
        const old = await writer(key, "crashed", SHORT_TTL);
        const result = await vi.waitFor(
          async () => {
            const attempt = await adapter.acquireWriter(key, "next", LONG_TTL, null);
            if (!attempt.acquired) {
              throw new Error(`refused: ${attempt.blockedBy}`);
            }
            return attempt;
          },
          { timeout: SHORT_TTL.toMilliseconds() + PROMPTLY, interval: 5 },
        );
        expect(result.fencingToken).toBeGreaterThan(old);
      });
    });

    describe("fencing tokens", () => {
      test("one counter for both sides: every new hold's token is above every earlier one, across release, expiry and force releases", async () => {
        const key = freshKey();
        const tokens: Array<[string, number]> = [];
        const note = (what: string, token: number) => tokens.push([what, token]);
        note("r1", await reader(key, "r1"));
        note("r2", await reader(key, "r2", 3, SHORT_TTL));
        expect(await adapter.releaseReader(key, "r1")).toBe(true);
        await sleep(PAST_SHORT_TTL);
        note("w1 after a release and an expiry", await writer(key, "w1"));
        expect(await adapter.releaseWriter(key, "w1")).toBe(true);
        note("r3 after a writer's release", await reader(key, "r3"));
        note("r4", await reader(key, "r4"));
        expect(await adapter.forceReleaseAllReaders(key)).toBe(true);
        note("w2 after forceReleaseAllReaders", await writer(key, "w2"));
        expect(await adapter.forceReleaseWriter(key)).toBe(true);
        note("r5 after forceReleaseWriter", await reader(key, "r5"));
        expect(await adapter.forceRelease(key)).toBe(true);
        note("w3 after forceRelease", await writer(key, "w3", SHORT_TTL));
        await sleep(PAST_SHORT_TTL);
        note("r6 after a writer's expiry", await reader(key, "r6"));
        expect(await adapter.forceRelease(key)).toBe(true);
        note("w4 after forceRelease of readers", await writer(key, "w4"));
        for (let i = 1; i < tokens.length; i++) {
          const [what, token] = tokens[i] as [string, number];
          const [before, earlier] = tokens[i - 1] as [string, number];
          expect(Number.isSafeInteger(token), what).toBe(true);
          expect(token, `${what}: above ${before}'s`).toBeGreaterThan(earlier);
        }
      });

      test("a writer's token is above every live reader's before it, whatever their order", async () => {
        const key = freshKey();
        const readerTokens = [
          await reader(key, "r1", 5, TimeSpan.fromMilliseconds(50)),
          await reader(key, "r2", 5, TimeSpan.fromMilliseconds(80)),
          await reader(key, "r3", 5, SHORT_TTL),
        ];
        await sleep(PAST_SHORT_TTL);
        expect(await writer(key, "w")).toBeGreaterThan(Math.max(...readerTokens));
      });
    });

    describe("ownership", () => {
      test("a writer's hold: releaseWriter by a stranger and releaseReader by the writer answer false, nothing changes", async () => {
        const key = freshKey();
        const token = await writer(key, "alice", TimeSpan.fromSeconds(10));
        expect(await adapter.releaseWriter(key, "bob")).toBe(false);
        expect(await adapter.releaseReader(key, "alice")).toBe(false);
        expect(await adapter.releaseWriter(key, "alice ")).toBe(false);
        expect(await adapter.releaseWriter(freshKey("other"), "alice")).toBe(false);
        expect(await writerState(key)).toMatchObject({ owner: "alice", fencingToken: token });
        expect(await adapter.releaseWriter(key, "alice")).toBe(true);
        expect(await adapter.releaseWriter(key, "alice")).toBe(false);
        expect(await adapter.getState(key, "alice")).toBeNull();
      });

      test("a reader's slot: releaseReader by a stranger and releaseWriter by the reader answer false, nothing changes", async () => {
        const key = freshKey();
        const token = await reader(key, "alice");
        expect(await adapter.releaseReader(key, "bob")).toBe(false);
        expect(await adapter.releaseWriter(key, "alice")).toBe(false);
        const state = await readersState(key, "alice");
        expect(state.acquiredSlotsCount).toBe(1);
        expect(state.slot?.fencingToken).toBe(token);
        expect(await adapter.releaseReader(key, "alice")).toBe(true);
        expect(await adapter.releaseReader(key, "alice")).toBe(false);
        expect(await adapter.getState(key, "alice")).toBeNull();
      });

      test("refreshes by a stranger or on the other side answer false, and extend nothing", async () => {
        const writerKey = freshKey("writer");
        await writer(writerKey, "alice", TimeSpan.fromSeconds(10));
        expect(await adapter.refreshWriter(writerKey, "bob", EXTENSION)).toBe(false);
        expect(await adapter.refreshReader(writerKey, "alice", EXTENSION)).toBe(false);
        expect(milliseconds((await writerState(writerKey)).remainingTime)).toBeLessThanOrEqual(
          10_000,
        );
        const readerKey = freshKey("reader");
        await reader(readerKey, "carol", 3, TimeSpan.fromSeconds(10));
        expect(await adapter.refreshReader(readerKey, "bob", EXTENSION)).toBe(false);
        expect(await adapter.refreshWriter(readerKey, "carol", EXTENSION)).toBe(false);
        const slot = (await readersState(readerKey, "carol")).slot;
        expect(milliseconds(slot?.remainingTime)).toBeLessThanOrEqual(10_000);
        expect(await adapter.getState(readerKey, "bob")).toMatchObject({ slot: null });
      });

      test("an expired hold can neither release nor refresh, and the key stays free", async () => {
        const writerKey = freshKey("writer");
        const readerKey = freshKey("reader");
        await writer(writerKey, "alice", SHORT_TTL);
        await reader(readerKey, "alice", 3, SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        expect(await adapter.refreshWriter(writerKey, "alice", EXTENSION)).toBe(false);
        expect(await adapter.releaseWriter(writerKey, "alice")).toBe(false);
        expect(await adapter.refreshReader(readerKey, "alice", EXTENSION)).toBe(false);
        expect(await adapter.releaseReader(readerKey, "alice")).toBe(false);
        expect(await adapter.getState(writerKey, "alice")).toBeNull();
        expect(await adapter.getState(readerKey, "alice")).toBeNull();
      });

      test("a stale holder can neither release nor refresh a hold taken after its expiry", async () => {
        const key = freshKey();
        await writer(key, "alice", SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        await reader(key, "bob");
        expect(await adapter.releaseWriter(key, "alice")).toBe(false);
        expect(await adapter.refreshWriter(key, "alice", EXTENSION)).toBe(false);
        expect((await readersState(key)).acquiredSlotsCount).toBe(1);
      });

      test("refresh by the holder: true, and its TTL restarts with the given span", async () => {
        await unlessStalled(async () => {
          const writerKey = freshKey("writer");
          const readerKey = freshKey("reader");
          const acquiredAt = performance.now();
          await writer(writerKey, "alice", RESTART_TTL);
          await reader(readerKey, "alice", 3, RESTART_TTL);
          await reader(readerKey, "bob", 3, RESTART_TTL);
          await sleep(ELAPSED);
          expect(await adapter.refreshWriter(writerKey, "alice", RESTART_TTL)).toBe(true);
          expect(await adapter.refreshReader(readerKey, "alice", RESTART_TTL)).toBe(true);
          const refreshedAt = performance.now();
          const writerLeft = (await writerState(writerKey)).remainingTime;
          const aliceLeft = (await readersState(readerKey, "alice")).slot?.remainingTime;
          const bobLeft = (await readersState(readerKey, "bob")).slot?.remainingTime;
          within(acquiredAt, RESTART_TTL.toMilliseconds() - 100, "acquire, pause and refresh");
          within(refreshedAt, RESTART_TTL.toMilliseconds() - MIDPOINT, "getState");
          expect(milliseconds(writerLeft)).toBeGreaterThan(MIDPOINT);
          expect(milliseconds(aliceLeft)).toBeGreaterThan(MIDPOINT);
          expect(milliseconds(bobLeft), "bob's slot was not refreshed").toBeLessThan(MIDPOINT);
        });
      });
    });

    describe("force releases", () => {
      test("forceReleaseWriter frees the writer; with readers only it answers false and leaves them", async () => {
        const key = freshKey();
        await reader(key, "r1");
        await reader(key, "r2");
        expect(await adapter.forceReleaseWriter(key)).toBe(false);
        expect((await readersState(key)).acquiredSlotsCount).toBe(2);
        const writerKey = freshKey("writer");
        await writer(writerKey, "alice");
        expect(await adapter.forceReleaseWriter(writerKey)).toBe(true);
        expect(await adapter.getState(writerKey, "alice")).toBeNull();
        expect(await adapter.forceReleaseWriter(writerKey)).toBe(false);
        await writer(writerKey, "bob");
      });

      test("forceReleaseAllReaders frees every reader; with a writer only it answers false and leaves it", async () => {
        const key = freshKey();
        await writer(key, "alice");
        expect(await adapter.forceReleaseAllReaders(key)).toBe(false);
        expect((await writerState(key)).owner).toBe("alice");
        const readerKey = freshKey("reader");
        await reader(readerKey, "r1", 2);
        await reader(readerKey, "r2", 2, null);
        expect(await adapter.forceReleaseAllReaders(readerKey)).toBe(true);
        expect(await adapter.getState(readerKey, "r1")).toBeNull();
        expect(await adapter.forceReleaseAllReaders(readerKey)).toBe(false);
        await writer(readerKey, "bob");
      });

      test("forceRelease frees the writer or every reader; of a free or expired key it answers false", async () => {
        const writerKey = freshKey("writer");
        const readerKey = freshKey("reader");
        await writer(writerKey, "alice", null);
        await reader(readerKey, "r1", 2, null);
        await reader(readerKey, "r2", 2);
        expect(await adapter.forceRelease(writerKey)).toBe(true);
        expect(await adapter.forceRelease(readerKey)).toBe(true);
        expect(await adapter.getState(writerKey, "alice")).toBeNull();
        expect(await adapter.getState(readerKey, "r1")).toBeNull();
        expect(await adapter.forceRelease(writerKey)).toBe(false);
        const expiredKey = freshKey("expired");
        await reader(expiredKey, "r1", 2, SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        expect(await adapter.forceRelease(expiredKey)).toBe(false);
        expect(await adapter.forceRelease(freshKey("free"))).toBe(false);
      });
    });

    describe("getState", () => {
      test("null for a free key and for a key whose holders all expired", async () => {
        expect(await adapter.getState(freshKey("free"), "alice")).toBeNull();
        const writerKey = freshKey("writer");
        const readerKey = freshKey("reader");
        await writer(writerKey, "alice", SHORT_TTL);
        await reader(readerKey, "alice", 3, SHORT_TTL);
        await reader(readerKey, "bob", 3, SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        expect(await adapter.getState(writerKey, "alice")).toBeNull();
        expect(await adapter.getState(readerKey, "alice")).toBeNull();
      });

      test("the writer state: owner, remaining time and token, whoever asks", async () => {
        const key = freshKey();
        const token = await writer(key, "alice", TimeSpan.fromSeconds(10));
        for (const lockId of ["alice", "bob"]) {
          const state = await writerState(key, lockId);
          expect(state).toEqual({
            heldBy: "writer",
            owner: "alice",
            remainingTime: expect.any(TimeSpan),
            fencingToken: token,
          });
        }
      });

      test("the readers state: the asker's slot, and writerWaiting while a writer waits", async (context) => {
        const key = freshKey();
        const token = await reader(key, "alice", 4);
        await reader(key, "bob", 2);
        expect(await readersState(key, "alice")).toEqual({
          heldBy: "readers",
          limit: 2,
          acquiredSlotsCount: 2,
          slot: { remainingTime: expect.any(TimeSpan), fencingToken: token },
          writerWaiting: false,
        });
        if (adapter.waitForRelease === undefined) {
          await writerRefused(key, "writer", LASTING_INTENT);
          expect((await readersState(key, "alice")).writerWaiting).toBe(true);
          expect((await readersState(key, "carol")).writerWaiting).toBe(true);
        } else {
          const waiting = abortableClaim(context, key, writerClaim("writer"));
          await untilQueued(key, 1);
          expect((await readersState(key, "alice")).writerWaiting).toBe(true);
          waiting.abort(new Error("gave up"));
          expect((await waiting.waiting.outcome).resolved).toBe(false);
          expect((await readersState(key, "alice")).writerWaiting).toBe(false);
        }
      });
    });

    describe("writer preference, polling (adapters without waitForRelease)", () => {
      test("a refused writer records its intent: new readers are refused with waiters, getState shows writerWaiting", async (context) => {
        pollingOrSkip(context);
        const key = freshKey();
        await reader(key, "r1", 3, TimeSpan.fromSeconds(10));
        expect(await writerRefused(key, "w", LASTING_INTENT)).toMatchObject({
          blockedBy: "readers",
          acquiredSlotsCount: 1,
        });
        const refusal = await readerRefused(key, "r2");
        expect(refusal).toMatchObject({ blockedBy: "waiters", acquiredSlotsCount: 1 });
        const until = milliseconds(refusal.remainingTime);
        expect(until).toBeGreaterThan(0);
        expect(until).toBeLessThanOrEqual(LASTING_INTENT.toMilliseconds());
        expect(await readersState(key, "r1")).toMatchObject({
          acquiredSlotsCount: 1,
          writerWaiting: true,
        });
      });

      test("the holding reader still refreshes and re-acquires; a second writer waits behind the first", async (context) => {
        pollingOrSkip(context);
        const key = freshKey();
        const token = await reader(key, "r1");
        await writerRefused(key, "w", LASTING_INTENT);
        expect(await adapter.refreshReader(key, "r1", LONG_TTL)).toBe(true);
        expect(await adapter.acquireReader(key, "r1", 3, LONG_TTL)).toEqual({
          acquired: true,
          fencingToken: token,
        });
        expect(await writerRefused(key, "w2", LASTING_INTENT)).toMatchObject({
          blockedBy: "readers",
        });
        expect(await adapter.releaseReader(key, "r1")).toBe(true);
        // Nobody holds the key, but w's intent keeps it for w.
        const refusal = await writerRefused(key, "w2", LASTING_INTENT);
        expect(refusal.blockedBy).toBe("waiters");
        if (refusal.remainingTime !== null) {
          expect(refusal.remainingTime.toMilliseconds()).toBeLessThanOrEqual(
            LASTING_INTENT.toMilliseconds(),
          );
        }
        expect(await readerRefused(key, "r2")).toMatchObject({
          blockedBy: "waiters",
          acquiredSlotsCount: 0,
        });
        expect(await adapter.getState(key, "r2")).toBeNull();
      });

      test("the intent's writer acquires once the readers leave, which clears its intent; after it, readers enter", async (context) => {
        pollingOrSkip(context);
        const key = freshKey();
        const old = await reader(key, "r1");
        await writerRefused(key, "w", LASTING_INTENT);
        expect(await adapter.releaseReader(key, "r1")).toBe(true);
        const result = await adapter.acquireWriter(key, "w", LONG_TTL, LASTING_INTENT);
        expect(result).toMatchObject({ acquired: true });
        expect(result.acquired && result.fencingToken).toBeGreaterThan(old);
        expect(await adapter.releaseWriter(key, "w")).toBe(true);
        await reader(key, "r2");
        expect((await readersState(key, "r2")).writerWaiting).toBe(false);
      });

      test("an intent that is never renewed lapses (a crashed waiting writer), and new readers enter", async (context) => {
        pollingOrSkip(context);
        await unlessStalled(async () => {
          const key = freshKey();
          await reader(key, "r1");
          const recordedAt = performance.now();
          await writerRefused(key, "crashed", LAPSING_INTENT);
          const refusal = await readerRefused(key, "r2");
          within(recordedAt, LAPSING_INTENT.toMilliseconds() - 50, "record the intent and ask");
          expect(refusal.blockedBy).toBe("waiters");
          await vi.waitFor(
            async () => {
              const attempt = await adapter.acquireReader(key, "r2", 3, LONG_TTL);
              if (!attempt.acquired) {
                throw new Error(`refused: ${attempt.blockedBy}`);
              }
            },
            { timeout: LAPSING_INTENT.toMilliseconds() + PROMPTLY, interval: 5 },
          );
          expect(await readersState(key)).toMatchObject({
            acquiredSlotsCount: 2,
            writerWaiting: false,
          });
        });
      });

      test("an intent of null (a single attempt) records nothing", async (context) => {
        pollingOrSkip(context);
        const key = freshKey();
        await reader(key, "r1");
        expect(await writerRefused(key, "w", null)).toMatchObject({ blockedBy: "readers" });
        expect((await readersState(key)).writerWaiting).toBe(false);
        await reader(key, "r2");
        expect(await adapter.releaseReader(key, "r1")).toBe(true);
        expect(await adapter.releaseReader(key, "r2")).toBe(true);
        await writer(key, "w2");
      });
    });

    describe("writer preference, queue (adapters with waitForRelease)", () => {
      test("while a writer waits, a newcomer reader is refused with waiters; the holding reader still refreshes and re-acquires", async (context) => {
        const key = freshKey();
        const token = await reader(key, "r1");
        const waiting = abortableClaim(context, key, writerClaim("w"));
        await untilQueued(key, 1);
        expect(await readerRefused(key, "r2")).toMatchObject({
          blockedBy: "waiters",
          acquiredSlotsCount: 1,
        });
        expect(await writerRefused(key, "w2")).toMatchObject({ blockedBy: "readers" });
        expect(await adapter.refreshReader(key, "r1", LONG_TTL)).toBe(true);
        expect(await adapter.acquireReader(key, "r1", 3, LONG_TTL)).toEqual({
          acquired: true,
          fencingToken: token,
        });
        expect(await readersState(key, "r1")).toMatchObject({
          acquiredSlotsCount: 1,
          writerWaiting: true,
        });
        expect(waiting.waiting.isSettled()).toBe(false);
      });

      test("the last reader out hands the key to the waiting writer, with a greater token", async (context) => {
        await handsOffOrSkip(context);
        const key = freshKey();
        const tokens = [await reader(key, "r1"), await reader(key, "r2")];
        const waiting = claimed(context, key, writerClaim("w"));
        await untilQueued(key, 1);
        expect(await adapter.releaseReader(key, "r1")).toBe(true);
        expect(await endOf(waiting, SUBSCRIBE_GRACE), "one reader still holds").toBe("pending");
        expect(await adapter.releaseReader(key, "r2")).toBe(true);
        const token = await handedOver(waiting, "w");
        expect(token).toBeGreaterThan(Math.max(...tokens));
        expect(await writerState(key)).toMatchObject({ owner: "w", fencingToken: token });
      });

      test("a writer's release hands slots to the readers queued before the next writer, together; the next writer gets the key when they leave", async (context) => {
        await handsOffOrSkip(context);
        const key = freshKey();
        const first = await writer(key, "w1");
        const r2 = observe(claimed(context, key, readerClaim("r2")));
        await untilQueued(key, 1);
        const r3 = observe(claimed(context, key, readerClaim("r3")));
        await untilQueued(key, 2);
        const w2Wait = claimed(context, key, writerClaim("w2"));
        const w2 = observe(w2Wait);
        await untilQueued(key, 3);
        const r4Wait = claimed(context, key, readerClaim("r4"));
        const r4 = observe(r4Wait);
        await untilQueued(key, 4);
        expect(await adapter.releaseWriter(key, "w1")).toBe(true);
        const [r2End, r3End] = await Promise.all([r2.outcome, r3.outcome]);
        expect(r2End.value).toMatchObject({ acquired: true });
        expect(r3End.value).toMatchObject({ acquired: true });
        const readerTokens = [r2End, r3End].map(
          (end) => (end.value as { fencingToken: number }).fencingToken,
        );
        for (const token of readerTokens) {
          expect(token).toBeGreaterThan(first);
        }
        expect(await readersState(key)).toMatchObject({
          acquiredSlotsCount: 2,
          writerWaiting: true,
        });
        expect(w2.isSettled() || r4.isSettled(), "w2 and r4 wait on").toBe(false);
        expect(await adapter.releaseReader(key, "r2")).toBe(true);
        expect(await endOf(w2Wait, SUBSCRIBE_GRACE), "r3 still holds").toBe("pending");
        expect(await adapter.releaseReader(key, "r3")).toBe(true);
        const w2Token = await handedOver(w2Wait, "w2");
        expect(w2Token).toBeGreaterThan(Math.max(...readerTokens));
        expect(r4.isSettled(), "r4 waits behind w2").toBe(false);
        expect(await readerRefused(key, "r5")).toMatchObject({ blockedBy: "writer", owner: "w2" });
        expect(await adapter.releaseWriter(key, "w2")).toBe(true);
        expect(await handedOver(r4Wait, "r4")).toBeGreaterThan(w2Token);
      });

      test("readers are handed slots in arrival order up to the limit; the one the limit holds back keeps a writer behind it waiting", async (context) => {
        await handsOffOrSkip(context);
        const key = freshKey();
        await writer(key, "w1");
        const waits = ["r1", "r2", "r3"].map((lockId) =>
          observe(claimed(context, key, readerClaim(lockId, 2))),
        );
        await untilQueued(key, 3);
        const w2 = observe(claimed(context, key, writerClaim("w2")));
        await untilQueued(key, 4);
        expect(await adapter.releaseWriter(key, "w1")).toBe(true);
        const [r1, r2] = await Promise.all([waits[0]?.outcome, waits[1]?.outcome]);
        expect(r1?.value).toMatchObject({ acquired: true });
        expect(r2?.value).toMatchObject({ acquired: true });
        expect(await readersState(key)).toMatchObject({ limit: 2, acquiredSlotsCount: 2 });
        expect(waits[2]?.isSettled() || w2.isSettled()).toBe(false);
        expect(await adapter.releaseReader(key, "r1")).toBe(true);
        expect((await waits[2]?.outcome)?.value).toMatchObject({ acquired: true });
        expect(w2.isSettled(), "w2 waits for r2 and r3").toBe(false);
        expect(await adapter.releaseReader(key, "r2")).toBe(true);
        expect(await adapter.releaseReader(key, "r3")).toBe(true);
        expect((await w2.outcome).value).toMatchObject({ acquired: true });
      });

      test("a reader's claim its own smaller limit holds back keeps the claims behind it, and newcomers, waiting", async (context) => {
        await handsOffOrSkip(context);
        const key = freshKey();
        await reader(key, "r1", 3);
        await reader(key, "r2", 3);
        await reader(key, "r3", 3);
        const strictWait = claimed(context, key, readerClaim("strict", 2));
        await untilQueued(key, 1);
        const looseWait = claimed(context, key, readerClaim("loose", 3));
        await untilQueued(key, 2);
        // 2 slots live: below the loose claim's limit, not below the strict one's.
        expect(await adapter.releaseReader(key, "r3")).toBe(true);
        expect(await endOf(looseWait, SUBSCRIBE_GRACE), "loose waits behind strict").toBe(
          "pending",
        );
        expect(await readerRefused(key, "newcomer", 3)).toMatchObject({
          blockedBy: "waiters",
          acquiredSlotsCount: 2,
        });
        expect(await adapter.releaseReader(key, "r2")).toBe(true);
        await handedOver(strictWait, "strict");
        // Now the strict slot's limit of 2 holds the loose claim back.
        expect(await endOf(looseWait, SUBSCRIBE_GRACE), "the limit is 2 now").toBe("pending");
        expect(await adapter.releaseReader(key, "r1")).toBe(true);
        await handedOver(looseWait, "loose");
        expect(await readersState(key)).toMatchObject({ limit: 2, acquiredSlotsCount: 2 });
      });

      test("waitsPastExpiry: a crashed reader's expiry hands the key to the waiting writer, with no other call", async (context) => {
        if (adapter.waitsPastExpiry !== true) {
          context.skip("the adapter's waits do not outlast the holders' expiries");
        }
        await handsOffOrSkip(context);
        const key = freshKey();
        const start = performance.now();
        const old = await reader(key, "crashed", 3, SHORT_TTL);
        const waiting = claimed(context, key, writerClaim("w"));
        const end = await endOf(waiting, SHORT_TTL.toMilliseconds() + PROMPTLY);
        expect(end, "the writer is handed the key at the reader's expiry").toMatchObject({
          acquired: true,
        });
        expect(performance.now() - start).toBeGreaterThanOrEqual(SHORT_TTL.toMilliseconds() - 10);
        const token = end !== "pending" && end !== undefined ? end.fencingToken : Number.NaN;
        expect(token).toBeGreaterThan(old);
        expect(await writerState(key)).toMatchObject({ owner: "w", fencingToken: token });
      });

      test("waitsPastExpiry: a crashed writer's expiry hands slots to the waiting readers", async (context) => {
        if (adapter.waitsPastExpiry !== true) {
          context.skip("the adapter's waits do not outlast the holders' expiries");
        }
        await handsOffOrSkip(context);
        const key = freshKey();
        await writer(key, "crashed", SHORT_TTL);
        const waits = [
          claimed(context, key, readerClaim("r1")),
          claimed(context, key, readerClaim("r2")),
        ];
        const ends = await Promise.all(
          waits.map((waiting) => endOf(waiting, SHORT_TTL.toMilliseconds() + PROMPTLY)),
        );
        for (const end of ends) {
          expect(end).toMatchObject({ acquired: true });
        }
        expect((await readersState(key)).acquiredSlotsCount).toBe(2);
      });

      test("force releases keep the waits queued, and serve them", async (context) => {
        await handsOffOrSkip(context);
        const key = freshKey();
        await writer(key, "w1");
        const readerWait = claimed(context, key, readerClaim("r1"));
        await untilQueued(key, 1);
        const writerWait = claimed(context, key, writerClaim("w2"));
        await untilQueued(key, 2);
        expect(await adapter.forceReleaseWriter(key)).toBe(true);
        await handedOver(readerWait, "r1");
        expect(await endOf(writerWait, SUBSCRIBE_GRACE), "w2 waits for r1").toBe("pending");
        expect(await adapter.forceReleaseAllReaders(key)).toBe(true);
        const token = await handedOver(writerWait, "w2");
        const last = claimed(context, key, readerClaim("r2"));
        await untilQueued(key, 1);
        expect(await adapter.forceRelease(key)).toBe(true);
        expect(await handedOver(last, "r2")).toBeGreaterThan(token);
      });

      test("two claims of one owner: one hold for both, and the second's abort leaves it alone", async (context) => {
        await handsOffOrSkip(context);
        for (const side of ["writer", "reader"] as const) {
          const key = freshKey(side);
          await writer(key, "holder");
          const claim = side === "writer" ? writerClaim("twice") : readerClaim("twice");
          const first = claimed(context, key, claim);
          await untilQueued(key, 1);
          const second = abortableClaim(context, key, claim);
          await untilQueued(key, 2);
          expect(await adapter.releaseWriter(key, "holder")).toBe(true);
          const token = await handedOver(first, `${side} twice`);
          second.abort(new Error("gave up"));
          const end = await second.waiting.outcome;
          if (end.resolved) {
            expect(end.value, "the second wait is answered with the same hold").toMatchObject({
              fencingToken: token,
            });
          }
          const state = await adapter.getState(key, "twice");
          if (side === "writer") {
            expect(state).toMatchObject({ heldBy: "writer", owner: "twice", fencingToken: token });
          } else {
            expect(state).toMatchObject({ heldBy: "readers", acquiredSlotsCount: 1 });
            expect(state?.heldBy === "readers" && state.slot?.fencingToken).toBe(token);
          }
        }
      });

      test("a wait that timed out or aborted is never handed anything later", async (context) => {
        const key = freshKey();
        await reader(key, "r1");
        const timedOut = claimed(context, key, writerClaim("late"), SUBSCRIBE_GRACE);
        const aborted = abortableClaim(context, key, writerClaim("gone"));
        const abortedReader = abortableClaim(context, key, readerClaim("gone-reader"));
        await untilQueued(key, 2);
        expect(await endOf(timedOut, PROMPTLY)).toBeUndefined();
        aborted.abort(new Error("gave up"));
        abortedReader.abort(new Error("gave up"));
        expect((await aborted.waiting.outcome).resolved).toBe(false);
        expect((await abortedReader.waiting.outcome).resolved).toBe(false);
        expect(await adapter.releaseReader(key, "r1")).toBe(true);
        await sleep(SUBSCRIBE_GRACE);
        expect(await adapter.getState(key, "gone-reader")).toBeNull();
        await writer(key, "newcomer");
      });

      test("maxWait ends a wait with undefined, leaving the holders alone", async (context) => {
        const key = freshKey();
        const token = await reader(key, "r1");
        const start = performance.now();
        expect(await endOf(claimed(context, key, writerClaim("w"), 200), PROMPTLY)).toBeUndefined();
        expect(performance.now() - start).toBeGreaterThanOrEqual(190);
        expect((await readersState(key, "r1")).slot?.fencingToken).toBe(token);
        expect((await readersState(key, "r1")).writerWaiting).toBe(false);
      });

      test("close() ends the adapter's waits", async (context) => {
        waitForReleaseOf(context);
        const own = await createAdapter();
        if (own.close === undefined || own.waitForRelease === undefined) {
          await destroyAdapter?.(own);
          return context.skip("the adapter has no close()");
        }
        const key = freshKey();
        await reader(key, "r1", 3, LONG_TTL, own);
        const waiting = observe(own.waitForRelease(key, LONG_TTL, never(), writerClaim("w")));
        await untilQueued(key, 1);
        await own.close();
        const end = await endOf(waiting.outcome, PROMPTLY);
        expect(end, "the wait ends soon after close()").not.toBe("pending");
        await destroyAdapter?.(own);
      });

      test("waitAcquires: a claimed wait takes what it claims at once when an acquire would, or re-takes its own hold", async (context) => {
        waitForReleaseOf(context);
        if (adapter.waitAcquires !== true) {
          context.skip("the adapter's waits do not acquire");
        }
        const key = freshKey();
        const writerEnd = await endOf(claimed(context, key, writerClaim("w")), PROMPTLY);
        expect(writerEnd).toMatchObject({ acquired: true });
        const token =
          writerEnd !== "pending" && writerEnd !== undefined ? writerEnd.fencingToken : Number.NaN;
        expect(await writerState(key)).toMatchObject({ owner: "w", fencingToken: token });
        expect(await endOf(claimed(context, key, writerClaim("w")), PROMPTLY)).toMatchObject({
          acquired: true,
          fencingToken: token,
        });
        const readKey = freshKey("read");
        await reader(readKey, "r1");
        const readerEnd = await endOf(claimed(context, readKey, readerClaim("r2")), PROMPTLY);
        expect(readerEnd).toMatchObject({ acquired: true });
        expect((await readersState(readKey, "r2")).acquiredSlotsCount).toBe(2);
      });
    });

    describe("keys", () => {
      test("the holds of one key do not count for another, even one it is a prefix of", async () => {
        const parent = freshKey("order");
        const child = track(`${parent}:1`);
        await writer(parent, "alice");
        await reader(child, "bob");
        expect((await writerState(parent)).owner).toBe("alice");
        expect((await readersState(child)).acquiredSlotsCount).toBe(1);
        expect(await adapter.releaseReader(child, "bob")).toBe(true);
        expect((await writerState(parent)).owner).toBe("alice");
      });
    });

    describe("storms", () => {
      test("12 workers over 3 instances taking either side: never a writer beside anyone, never more than the limit of readers, tokens grow", async () => {
        const key = freshKey();
        const instances = await otherInstances(3);
        const limit = 3;
        let readers = 0;
        let writers = 0;
        type Grant = { side: string; sentAt: number; receivedAt: number; token: number };
        const grants: Grant[] = [];
        const random = (n: number) => Math.floor(Math.random() * n);
        const worker = async (w: number) => {
          const instance = instances[w % 3] as ISharedLockAdapter;
          for (let section = 0; section < 6; section++) {
            const lockId = `w${w}-${section}`;
            const side = (w + section) % 4 === 0 ? "writer" : "reader";
            // Each section retries until it is granted: every worker's work is bounded, so the
            // key is free for a writer at the latest once the others are done.
            for (;;) {
              const sentAt = performance.now();
              const result =
                side === "writer"
                  ? await instance.acquireWriter(key, lockId, LONG_TTL, null)
                  : await instance.acquireReader(key, lockId, limit, LONG_TTL);
              if (result.acquired) {
                grants.push({
                  side,
                  sentAt,
                  receivedAt: performance.now(),
                  token: result.fencingToken,
                });
                break;
              }
              await sleep(random(3));
            }
            // The client's section lies within the backend's hold: between the answer and the
            // release.
            if (side === "writer") {
              writers += 1;
              expect(readers + writers, `${lockId} writes alone`).toBe(1);
            } else {
              readers += 1;
              expect(writers, `${lockId} reads beside no writer`).toBe(0);
              expect(readers, `${lockId} reads within the limit`).toBeLessThanOrEqual(limit);
            }
            await sleep(random(3));
            if (side === "writer") {
              writers -= 1;
              expect(await instance.releaseWriter(key, lockId)).toBe(true);
            } else {
              readers -= 1;
              expect(await instance.releaseReader(key, lockId)).toBe(true);
            }
          }
        };
        await Promise.all(Array.from({ length: 12 }, (_, w) => worker(w)));
        expect(grants).toHaveLength(72);
        expect(new Set(grants.map((grant) => grant.token)).size).toBe(grants.length);
        // A hold issued after another was seen granted has a greater token: for a writer, above
        // every earlier grant; for a reader, above every earlier writer's.
        for (const later of grants) {
          for (const earlier of grants) {
            if (
              earlier.receivedAt < later.sentAt &&
              (later.side === "writer" || earlier.side === "writer")
            ) {
              expect(
                later.token,
                `a ${later.side} granted after a ${earlier.side}`,
              ).toBeGreaterThan(earlier.token);
            }
          }
        }
      });

      test("every refused or failed operation leaves the holds exactly as they were", async () => {
        const key = freshKey();
        const token = await reader(key, "alice", 1);
        const failures: Array<[string, () => Promise<unknown>]> = [
          ["bob reads", () => adapter.acquireReader(key, "bob", 1, EXTENSION)],
          ["bob reads with a greater limit", () => adapter.acquireReader(key, "bob", 9, null)],
          ["bob writes", () => adapter.acquireWriter(key, "bob", EXTENSION, null)],
          ["alice writes", () => adapter.acquireWriter(key, "alice", EXTENSION, null)],
          ["bob releases", () => adapter.releaseReader(key, "bob")],
          ["bob refreshes", () => adapter.refreshReader(key, "bob", EXTENSION)],
          ["alice releases as a writer", () => adapter.releaseWriter(key, "alice")],
          ["alice refreshes as a writer", () => adapter.refreshWriter(key, "alice", EXTENSION)],
          ["forceReleaseWriter", () => adapter.forceReleaseWriter(key)],
          ["alice's id with a suffix", () => adapter.refreshReader(key, "alice ", EXTENSION)],
        ];
        let before = (await readersState(key, "alice")).slot;
        for (const [name, failure] of failures) {
          const answer = await failure();
          expect(
            answer === false || (answer as { acquired?: boolean }).acquired === false,
            name,
          ).toBe(true);
          const after = await readersState(key, "alice");
          expect(after.acquiredSlotsCount, name).toBe(1);
          expect(after.limit, name).toBe(1);
          expect(after.slot?.fencingToken, name).toBe(token);
          expect(milliseconds(after.slot?.remainingTime), name).toBeLessThanOrEqual(
            milliseconds(before?.remainingTime),
          );
          before = after.slot;
        }
      });
    });
  });
}

/** How long a hand-off may take to arrive before the test fails: far beyond honest latency. */
const PATIENCE = 10_000;
