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
import { SuiteKeys, untilQueued as untilQueuedBy } from "../../primitive/test-suites/suite-keys.js";
import { endOf, observe } from "../../primitive/test-suites/suite-promises.js";
import {
  ELAPSED,
  EXTENSION,
  LONG_TTL,
  MIDPOINT,
  milliseconds,
  PAST_SHORT_TTL,
  PROMPTLY,
  RESTART_TTL,
  SHORT_TTL,
  SUBSCRIBE_GRACE,
  unlessStalled,
  within,
} from "../../primitive/test-suites/suite-timing.js";
import { TimeSpan } from "../../time-span/time-span.js";
import type { ILockAdapter, LockAdapterState, LockWaitClaim } from "../contracts/lock-adapter.js";

/** Settings of {@link lockAdapterTestSuite}: how to get the adapter under test. */
export type LockAdapterTestSuiteSettings = {
  /** A fresh adapter (or one shared by the suite) for each test. */
  createAdapter: () => ILockAdapter | Promise<ILockAdapter>;
  /** Called after each test, once the test's keys are force-released. */
  destroyAdapter?: (adapter: ILockAdapter) => void | Promise<void>;
  /**
   * Whether two adapters from `createAdapter` see the same locks (two clients of one server),
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
   * 100 ms, which is enough for an adapter that queues a wait in the call itself, and which a
   * slow host can exceed for one that does not.
   */
  queuedWaits?: (key: string) => Promise<number>;
};

/**
 * The behaviour every `ILockAdapter` must have, specified once; run it in a vitest file against
 * each implementation. It uses real time with TTLs of 100 ms to a few seconds, so it suits any
 * backend, remote ones included. The `waitForRelease` tests are skipped for adapters without it.
 *
 * @example
 * lockAdapterTestSuite({ createAdapter: () => new MemoryLockAdapter() });
 *
 * @example
 * lockAdapterTestSuite({
 *   createAdapter: () => new RedisLockAdapter(client),
 *   keyPrefix: "my-app-tests:",
 * });
 */
export function lockAdapterTestSuite(settings: LockAdapterTestSuiteSettings): void {
  const {
    createAdapter,
    destroyAdapter,
    instancesShareBackend = true,
    keyPrefix = "hasp-suite:",
    queuedWaits,
  } = settings;
  const keys = new SuiteKeys(keyPrefix);

  describe("lock adapter conformance", () => {
    let adapter: ILockAdapter;
    /** A key no other test (or run) has used; force-released after the test. */
    const freshKey = (label?: string) => keys.fresh(label);
    const track = (key: string) => keys.track(key);

    /** Acquires and returns the fencing token, failing the test when the key was taken. */
    async function acquire(key: string, lockId: string, ttl: TimeSpan | null): Promise<number> {
      const result = await adapter.acquire(key, lockId, ttl);
      expect(result, `${lockId} acquires ${key}`).toMatchObject({ acquired: true });
      return result.acquired ? result.fencingToken : Number.NaN;
    }

    /** The live hold of the key, failing the test when the key is free. */
    async function held(key: string): Promise<LockAdapterState> {
      const state = await adapter.getState(key);
      expect(state, `${key} is held`).not.toBeNull();
      return state ?? { owner: "", remainingTime: null, fencingToken: Number.NaN };
    }

    /** Resolves once `count` waits are queued on `key` (see `queuedWaits`). */
    const untilQueued = (key: string, count: number) => untilQueuedBy(queuedWaits, key, count);

    /**
     * Releases `holder`'s hold of `key`, then each claim's in turn, checking that each release
     * hands the key to the next of `names` (in order, a greater token each time), never to a
     * newcomer trying at that moment, while the later claims still wait. Answers `false`, having
     * cleaned up, when the adapter only wakes its waiters.
     */
    async function servedInOrder(
      key: string,
      holder: string,
      holderToken: number,
      names: readonly string[],
      waits: ReadonlyArray<ReturnType<NonNullable<ILockAdapter["waitForRelease"]>>>,
    ): Promise<boolean> {
      let previous = { owner: holder, token: holderToken };
      for (const [index, name] of names.entries()) {
        expect(await adapter.release(key, previous.owner)).toBe(true);
        // A newcomer right at the release: it must not get a key that was handed over.
        const newcomer = await adapter.acquire(key, `newcomer-${index}`, LONG_TTL);
        const end = await endOf(waits[index] ?? Promise.resolve(undefined), PROMPTLY);
        if (index === 0 && end === undefined) {
          await Promise.all(waits.slice(1).map((wait) => endOf(wait, 10)));
          if (newcomer.acquired) {
            await adapter.release(key, "newcomer-0");
          }
          return false;
        }
        expect(end, `${name} is handed the key`).toMatchObject({ acquired: true });
        expect(newcomer).toMatchObject({ acquired: false, owner: name });
        const state = await held(key);
        expect(state.owner).toBe(name);
        expect(state.fencingToken).toBeGreaterThan(previous.token);
        previous = { owner: name, token: state.fencingToken };
        for (const later of waits.slice(index + 1)) {
          expect(await endOf(later, 0), "the later claims still wait").toBe("pending");
        }
      }
      expect(await adapter.release(key, previous.owner)).toBe(true);
      return true;
    }

    function waitForReleaseOf(context: TestContext): NonNullable<ILockAdapter["waitForRelease"]> {
      const waitForRelease = adapter.waitForRelease;
      if (waitForRelease === undefined) {
        return context.skip("the adapter has no waitForRelease");
      }
      return waitForRelease.bind(adapter);
    }

    beforeEach(async () => {
      adapter = await createAdapter();
    });

    afterEach(async () => {
      // Holds without expiry (or of 30 days) would otherwise stay on a shared server.
      await Promise.all(keys.takeUsed().map((key) => adapter.forceRelease(key)));
      await destroyAdapter?.(adapter);
    });

    describe("acquire", () => {
      test("a free key is acquired; getState shows the owner, the same token and the TTL", async () => {
        const key = freshKey();
        const ttl = TimeSpan.fromSeconds(10);
        const result = await adapter.acquire(key, "alice", ttl);
        expect(result).toEqual({ acquired: true, fencingToken: expect.any(Number) });
        const state = await held(key);
        expect(state.owner).toBe("alice");
        expect(state.fencingToken).toBe(result.acquired && result.fencingToken);
        const remaining = milliseconds(state.remainingTime);
        expect(remaining).toBeGreaterThan(ttl.toMilliseconds() / 2);
        expect(remaining).toBeLessThanOrEqual(ttl.toMilliseconds());
      });

      test("50 ids acquire one key at once: exactly one wins, the others are told who holds it", async () => {
        const key = freshKey();
        const ttl = TimeSpan.fromSeconds(10);
        const ids = Array.from({ length: 50 }, (_, i) => `contender-${i}`);
        const results = await Promise.all(ids.map((id) => adapter.acquire(key, id, ttl)));

        expect(results.filter((result) => result.acquired)).toHaveLength(1);
        const winnerIndex = results.findIndex((result) => result.acquired);
        const winner = ids[winnerIndex];
        const winning = results[winnerIndex];
        for (const result of results) {
          if (!result.acquired) {
            expect(result.owner).toBe(winner);
            const remaining = milliseconds(result.remainingTime);
            expect(remaining).toBeGreaterThan(0);
            expect(remaining).toBeLessThanOrEqual(ttl.toMilliseconds());
          }
        }
        const state = await held(key);
        expect(state.owner).toBe(winner);
        expect(state.fencingToken).toBe(winning?.acquired && winning.fencingToken);
      });

      test("50 ids take over an expired hold at once: exactly one wins, with a greater token", async () => {
        const key = freshKey();
        const expiredToken = await acquire(key, "gone", SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        const ids = Array.from({ length: 50 }, (_, i) => `contender-${i}`);
        const results = await Promise.all(ids.map((id) => adapter.acquire(key, id, LONG_TTL)));

        expect(results.filter((result) => result.acquired)).toHaveLength(1);
        const winnerIndex = results.findIndex((result) => result.acquired);
        const winning = results[winnerIndex];
        expect(winning?.acquired && winning.fencingToken).toBeGreaterThan(expiredToken);
        const state = await held(key);
        expect(state.owner).toBe(ids[winnerIndex]);
        expect(state.fencingToken).toBe(winning?.acquired && winning.fencingToken);
        for (const result of results) {
          if (!result.acquired) {
            expect(result.owner).toBe(state.owner);
          }
        }
      });

      test("the owner acquires its live hold again: same token, TTL restarted", async () => {
        const key = freshKey();
        const token = await acquire(key, "alice", RESTART_TTL);
        await sleep(ELAPSED);
        expect(await acquire(key, "alice", RESTART_TTL)).toBe(token);
        const state = await held(key);
        expect(state.owner).toBe("alice");
        expect(state.fencingToken).toBe(token);
        expect(milliseconds(state.remainingTime)).toBeGreaterThan(MIDPOINT);
        expect(milliseconds(state.remainingTime)).toBeLessThanOrEqual(RESTART_TTL.toMilliseconds());
      });

      test("the owner acquires again after its hold expired: a new, greater token", async () => {
        const key = freshKey();
        const first = await acquire(key, "alice", SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        const second = await acquire(key, "alice", LONG_TTL);
        expect(second).toBeGreaterThan(first);
        expect((await held(key)).fencingToken).toBe(second);
      });

      test("ttl null: the hold never expires and cannot be refreshed", async () => {
        const key = freshKey();
        const token = await acquire(key, "alice", null);
        expect(await held(key)).toEqual({
          owner: "alice",
          remainingTime: null,
          fencingToken: token,
        });
        await sleep(PAST_SHORT_TTL);
        expect(await held(key)).toEqual({
          owner: "alice",
          remainingTime: null,
          fencingToken: token,
        });

        expect(await adapter.refresh(key, "alice", SHORT_TTL)).toBe(false);
        expect((await held(key)).remainingTime).toBeNull();
        // Had the refresh given it SHORT_TTL, it would be gone by now.
        await sleep(PAST_SHORT_TTL);
        expect(await held(key)).toEqual({
          owner: "alice",
          remainingTime: null,
          fencingToken: token,
        });
      });

      test("a failed acquire leaves the holder's TTL alone: neither reset nor extended", async () => {
        const key = freshKey();
        const token = await acquire(key, "alice", RESTART_TTL);
        await sleep(ELAPSED);
        const result = await adapter.acquire(key, "bob", EXTENSION);
        expect(result).toMatchObject({ acquired: false, owner: "alice" });
        expect(milliseconds(result.acquired ? null : result.remainingTime)).toBeLessThan(MIDPOINT);
        const state = await held(key);
        expect(state.owner).toBe("alice");
        expect(state.fencingToken).toBe(token);
        expect(milliseconds(state.remainingTime)).toBeLessThan(MIDPOINT);
      });

      test("a failed acquire leaves a never-expiring hold never-expiring", async () => {
        const key = freshKey();
        const token = await acquire(key, "alice", null);
        const result = await adapter.acquire(key, "bob", SHORT_TTL);
        expect(result).toEqual({ acquired: false, owner: "alice", remainingTime: null });
        expect(await held(key)).toEqual({
          owner: "alice",
          remainingTime: null,
          fencingToken: token,
        });
        await sleep(PAST_SHORT_TTL);
        expect(await held(key)).toEqual({
          owner: "alice",
          remainingTime: null,
          fencingToken: token,
        });
      });

      test("a TTL beyond the 2^31 ms timer range (30 days) holds, and can be refreshed to", async () => {
        const key = freshKey();
        const thirtyDays = TimeSpan.fromDays(30);
        const slack = TimeSpan.fromMinutes(1).toMilliseconds();
        await acquire(key, "alice", thirtyDays);
        await sleep(50);
        let state = await held(key);
        expect(state.owner).toBe("alice");
        expect(milliseconds(state.remainingTime)).toBeGreaterThan(
          thirtyDays.toMilliseconds() - slack,
        );
        expect(milliseconds(state.remainingTime)).toBeLessThanOrEqual(thirtyDays.toMilliseconds());

        const other = freshKey();
        await acquire(other, "alice", SHORT_TTL);
        expect(await adapter.refresh(other, "alice", thirtyDays)).toBe(true);
        await sleep(PAST_SHORT_TTL);
        state = await held(other);
        expect(milliseconds(state.remainingTime)).toBeGreaterThan(
          thirtyDays.toMilliseconds() - slack,
        );
      });
    });

    describe("release", () => {
      test("by the owner: true, and the key is free for anyone", async () => {
        const key = freshKey();
        await acquire(key, "alice", LONG_TTL);
        expect(await adapter.release(key, "alice")).toBe(true);
        expect(await adapter.getState(key)).toBeNull();
        await acquire(key, "bob", LONG_TTL);
      });

      test("by a stranger: false, and the hold is untouched", async () => {
        const key = freshKey();
        const token = await acquire(key, "alice", RESTART_TTL);
        await sleep(ELAPSED);
        expect(await adapter.release(key, "bob")).toBe(false);
        const state = await held(key);
        expect(state.owner).toBe("alice");
        expect(state.fencingToken).toBe(token);
        expect(milliseconds(state.remainingTime)).toBeLessThan(MIDPOINT);
        expect(await adapter.release(key, "alice")).toBe(true);
      });

      test("twice: the second answers false", async () => {
        const key = freshKey();
        await acquire(key, "alice", LONG_TTL);
        expect(await adapter.release(key, "alice")).toBe(true);
        expect(await adapter.release(key, "alice")).toBe(false);
        expect(await adapter.getState(key)).toBeNull();
      });

      test("of a free key: false", async () => {
        const key = freshKey();
        expect(await adapter.release(key, "alice")).toBe(false);
        expect(await adapter.getState(key)).toBeNull();
      });

      test("of the owner's expired hold: false, and the key stays free", async () => {
        const key = freshKey();
        await acquire(key, "alice", SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        expect(await adapter.release(key, "alice")).toBe(false);
        expect(await adapter.getState(key)).toBeNull();
      });
    });

    describe("refresh", () => {
      test("by the owner: true, and the TTL restarts with the given span", async () => {
        await unlessStalled(async () => {
          const key = freshKey();
          const acquiredAt = performance.now();
          const token = await acquire(key, "alice", RESTART_TTL);
          await sleep(ELAPSED);
          const refreshedAt = performance.now();
          const refreshed = await adapter.refresh(key, "alice", RESTART_TTL);
          let state = await adapter.getState(key);
          // Seen only if the database answered in time: else this says so, and tries again.
          within(acquiredAt, RESTART_TTL.toMilliseconds() - 100, "acquire, pause and refresh");
          within(refreshedAt, RESTART_TTL.toMilliseconds() - MIDPOINT, "refresh and getState");
          expect(refreshed).toBe(true);
          expect(state, `${key} is held`).not.toBeNull();
          expect(state?.owner).toBe("alice");
          expect(state?.fencingToken).toBe(token);
          expect(milliseconds(state?.remainingTime ?? null)).toBeGreaterThan(MIDPOINT);
          expect(milliseconds(state?.remainingTime ?? null)).toBeLessThanOrEqual(
            RESTART_TTL.toMilliseconds(),
          );

          const longer = TimeSpan.fromSeconds(10);
          expect(await adapter.refresh(key, "alice", longer)).toBe(true);
          state = await held(key);
          expect(state.fencingToken).toBe(token);
          expect(milliseconds(state.remainingTime)).toBeGreaterThan(longer.toMilliseconds() / 2);
          expect(milliseconds(state.remainingTime)).toBeLessThanOrEqual(longer.toMilliseconds());
        });
      });

      test("by a stranger: false, and nothing is extended", async () => {
        const key = freshKey();
        const token = await acquire(key, "alice", RESTART_TTL);
        await sleep(ELAPSED);
        expect(await adapter.refresh(key, "bob", EXTENSION)).toBe(false);
        const state = await held(key);
        expect(state.owner).toBe("alice");
        expect(state.fencingToken).toBe(token);
        expect(milliseconds(state.remainingTime)).toBeLessThan(MIDPOINT);
      });

      test("after the hold expired: false, and the key stays free", async () => {
        const key = freshKey();
        await acquire(key, "alice", SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        expect(await adapter.refresh(key, "alice", EXTENSION)).toBe(false);
        expect(await adapter.getState(key)).toBeNull();
        await acquire(key, "bob", LONG_TTL);
      });

      test("of a free key: false, and it stays free", async () => {
        const key = freshKey();
        expect(await adapter.refresh(key, "alice", EXTENSION)).toBe(false);
        expect(await adapter.getState(key)).toBeNull();
      });
    });

    describe("takeover after expiry", () => {
      test("the stale holder can neither release nor refresh the new owner's hold", async () => {
        const key = freshKey();
        const staleToken = await acquire(key, "alice", SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        const token = await acquire(key, "bob", RESTART_TTL);
        expect(token).toBeGreaterThan(staleToken);

        expect(await adapter.release(key, "alice")).toBe(false);
        expect(await adapter.refresh(key, "alice", EXTENSION)).toBe(false);
        expect(await adapter.acquire(key, "alice", EXTENSION)).toMatchObject({
          acquired: false,
          owner: "bob",
        });
        const state = await held(key);
        expect(state.owner).toBe("bob");
        expect(state.fencingToken).toBe(token);
        expect(milliseconds(state.remainingTime)).toBeLessThanOrEqual(RESTART_TTL.toMilliseconds());
      });
    });

    describe("storms and stale holders", () => {
      /**
       * More instances of the adapter, as other processes would have (destroyed after the
       * test), or the test's own one `count` times when instances do not share a backend.
       */
      async function otherInstances(count: number): Promise<ILockAdapter[]> {
        if (!instancesShareBackend) {
          return Array.from({ length: count }, () => adapter);
        }
        const instances = await Promise.all(Array.from({ length: count }, () => createAdapter()));
        onTestFinished(async () => {
          await Promise.all(instances.map((instance) => destroyAdapter?.(instance)));
        });
        return instances;
      }

      test("10 storms of 40 acquirers over 4 instances: one winner each, no error, tokens grow", async () => {
        const key = freshKey();
        const instances = await otherInstances(4);
        let lastToken = 0;
        for (let round = 0; round < 10; round++) {
          const outcomes = await Promise.allSettled(
            Array.from({ length: 40 }, (_, i) =>
              (instances[i % 4] as ILockAdapter).acquire(key, `r${round}-c${i}`, LONG_TTL),
            ),
          );
          const errors = outcomes.filter((outcome) => outcome.status === "rejected");
          expect(errors, `round ${round}: ${String(errors[0]?.reason)}`).toEqual([]);
          const winners = outcomes.flatMap((outcome, i) =>
            outcome.status === "fulfilled" && outcome.value.acquired
              ? [{ id: `r${round}-c${i}`, token: outcome.value.fencingToken }]
              : [],
          );
          expect(winners, `round ${round}`).toHaveLength(1);
          const [winner] = winners as [{ id: string; token: number }];
          expect(winner.token).toBeGreaterThan(lastToken);
          lastToken = winner.token;
          expect((await held(key)).owner).toBe(winner.id);
          expect(await adapter.release(key, winner.id)).toBe(true);
        }
      });

      test("8 workers taking and releasing one key: holds never overlap, no error", async () => {
        const key = freshKey();
        const instances = await otherInstances(2);
        let holder: string | null = null;
        let sections = 0;
        const worker = async (w: number) => {
          const instance = instances[w % 2] as ILockAdapter;
          for (let attempt = 0; attempt < 25; attempt++) {
            const id = `w${w}-${attempt}`;
            const result = await instance.acquire(key, id, LONG_TTL);
            if (!result.acquired) {
              await sleep(1);
              continue;
            }
            expect(holder, `${id} entered while ${holder} held the key`).toBeNull();
            holder = id;
            await sleep(1);
            expect((await instance.getState(key))?.owner).toBe(id);
            holder = null;
            sections += 1;
            expect(await instance.release(key, id)).toBe(true);
          }
        };
        await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
        expect(sections).toBeGreaterThan(8);
      });

      test("every failed operation leaves the hold exactly as it was", async () => {
        const key = freshKey();
        const other = freshKey("other");
        const token = await acquire(key, "alice", LONG_TTL);
        await acquire(other, "alice", LONG_TTL);
        let before = await held(key);
        const failures: Array<[string, () => Promise<unknown>]> = [
          ["bob acquires", () => adapter.acquire(key, "bob", EXTENSION)],
          ["bob acquires with no TTL", () => adapter.acquire(key, "bob", null)],
          ["bob releases", () => adapter.release(key, "bob")],
          ["bob refreshes", () => adapter.refresh(key, "bob", EXTENSION)],
          ["alice releases another key", () => adapter.release(freshKey("free"), "alice")],
          ["alice's id with a prefix", () => adapter.release(key, "alic")],
          ["alice's id with a suffix", () => adapter.refresh(key, "alice ", EXTENSION)],
        ];
        for (const [name, failure] of failures) {
          const answer = await failure();
          expect(
            answer === false || (answer as { acquired?: boolean }).acquired === false,
            name,
          ).toBe(true);
          const after = await held(key);
          expect(after.owner, name).toBe("alice");
          expect(after.fencingToken, name).toBe(token);
          // Not extended (time only runs down), not made to never expire.
          expect(milliseconds(after.remainingTime), name).toBeLessThanOrEqual(
            milliseconds(before.remainingTime),
          );
          before = after;
        }
        expect((await held(other)).owner).toBe("alice");
      });

      test("a stale holder, after its key was taken over and freed, gets a new and greater token", async () => {
        const key = freshKey();
        const stale = await acquire(key, "alice", SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        const bobs = await acquire(key, "bob", LONG_TTL);
        expect(await adapter.release(key, "alice")).toBe(false);
        expect(await adapter.release(key, "bob")).toBe(true);
        const again = await acquire(key, "alice", LONG_TTL);
        expect(bobs).toBeGreaterThan(stale);
        expect(again).toBeGreaterThan(bobs);
      });
    });

    describe("forceRelease", () => {
      test("of a held key: true, and the key is free for anyone", async () => {
        const key = freshKey();
        await acquire(key, "alice", LONG_TTL);
        expect(await adapter.forceRelease(key)).toBe(true);
        expect(await adapter.getState(key)).toBeNull();
        expect(await adapter.release(key, "alice")).toBe(false);
        await acquire(key, "bob", LONG_TTL);
      });

      test("of a never-expiring hold: true, and the key is free", async () => {
        const key = freshKey();
        await acquire(key, "alice", null);
        expect(await adapter.forceRelease(key)).toBe(true);
        expect(await adapter.getState(key)).toBeNull();
      });

      test("of a free key: false", async () => {
        const key = freshKey();
        expect(await adapter.forceRelease(key)).toBe(false);
        expect(await adapter.getState(key)).toBeNull();
      });

      test("of an expired hold: false", async () => {
        const key = freshKey();
        await acquire(key, "alice", SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        expect(await adapter.forceRelease(key)).toBe(false);
        expect(await adapter.getState(key)).toBeNull();
      });
    });

    describe("getState", () => {
      test("of a free key: null", async () => {
        expect(await adapter.getState(freshKey())).toBeNull();
      });

      test("after the hold expired: null", async () => {
        const key = freshKey();
        await unlessStalled(async () => {
          // Seen held first, when the database answers within the TTL (else tried again).
          const acquiredAt = performance.now();
          await adapter.forceRelease(key);
          await acquire(key, "alice", RESTART_TTL);
          const state = await adapter.getState(key);
          within(acquiredAt, RESTART_TTL.toMilliseconds() - 100, "acquire and getState");
          expect(state?.owner).toBe("alice");
        });
        await sleep(RESTART_TTL.toMilliseconds() + PAST_SHORT_TTL);
        expect(await adapter.getState(key)).toBeNull();
      });
    });

    describe("fencing tokens", () => {
      test("are safe integers that increase across release, forceRelease and owners", async () => {
        const key = freshKey();
        const tokens: number[] = [];
        tokens.push(await acquire(key, "alice", LONG_TTL));
        await adapter.release(key, "alice");
        tokens.push(await acquire(key, "alice", LONG_TTL));
        await adapter.release(key, "alice");
        tokens.push(await acquire(key, "bob", LONG_TTL));
        await adapter.forceRelease(key);
        tokens.push(await acquire(key, "bob", null));
        await adapter.forceRelease(key);
        tokens.push(await acquire(key, "alice", LONG_TTL));
        expect((await held(key)).fencingToken).toBe(tokens.at(-1));

        for (const [i, token] of tokens.entries()) {
          expect(Number.isSafeInteger(token), `token ${token} is a safe integer`).toBe(true);
          if (i > 0) {
            expect(token).toBeGreaterThan(tokens[i - 1] ?? Number.POSITIVE_INFINITY);
          }
        }
      });

      test("increase across expiry, whoever takes the key next", async () => {
        const key = freshKey();
        const first = await acquire(key, "alice", SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        const second = await acquire(key, "bob", SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        const third = await acquire(key, "bob", LONG_TTL);
        expect(Number.isSafeInteger(first)).toBe(true);
        expect(second).toBeGreaterThan(first);
        expect(third).toBeGreaterThan(second);
        expect(Number.isSafeInteger(third)).toBe(true);
      });
    });

    describe("keys", () => {
      test("holding one key does not affect another", async () => {
        const a = freshKey("a");
        const b = freshKey("b");
        await acquire(a, "alice", LONG_TTL);
        expect(await adapter.getState(b)).toBeNull();
        const tokenB = await acquire(b, "bob", LONG_TTL);

        expect(await adapter.release(a, "alice")).toBe(true);
        expect(await held(b)).toMatchObject({ owner: "bob", fencingToken: tokenB });
        await acquire(a, "carol", LONG_TTL);
        expect(await adapter.forceRelease(b)).toBe(true);
        expect((await held(a)).owner).toBe("carol");
        expect(await adapter.getState(b)).toBeNull();
      });

      test("a key that is a prefix of another is a different key", async () => {
        const parent = freshKey("order");
        const children = [track(`${parent}:1`), track(`${parent}1`), track(`${parent}*`)];
        await acquire(parent, "alice", LONG_TTL);
        for (const child of children) {
          expect(await adapter.getState(child)).toBeNull();
          await acquire(child, "bob", LONG_TTL);
        }
        expect(await adapter.release(parent, "alice")).toBe(true);
        for (const child of children) {
          expect((await held(child)).owner).toBe("bob");
        }
        expect(await adapter.forceRelease(children[0] ?? "")).toBe(true);
        await acquire(parent, "carol", LONG_TTL);
        expect(await adapter.forceRelease(parent)).toBe(true);
        expect((await held(children[1] ?? "")).owner).toBe("bob");
      });
    });

    describe("waitForRelease", () => {
      test("resolves soon after a release, and waiting does not acquire", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const key = freshKey();
        await acquire(key, "alice", LONG_TTL);
        const waiting = observe(
          waitForRelease(key, TimeSpan.fromSeconds(5), new AbortController().signal),
        );
        await untilQueued(key, 1);
        expect(waiting.isSettled(), "no wake-up before the release").toBe(false);
        const releasedAt = performance.now();
        expect(await adapter.release(key, "alice")).toBe(true);
        const outcome = await waiting.outcome;
        expect(outcome.resolved).toBe(true);
        expect(outcome.at - releasedAt).toBeLessThan(PROMPTLY);
        expect(await adapter.getState(key)).toBeNull();
      });

      test("resolves at once when the key is already free or its hold expired", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const free = freshKey("free");
        const expired = freshKey("expired");
        await acquire(expired, "alice", SHORT_TTL);
        await sleep(PAST_SHORT_TTL);
        for (const key of [free, expired]) {
          const startedAt = performance.now();
          const outcome = await observe(
            waitForRelease(key, TimeSpan.fromSeconds(10), new AbortController().signal),
          ).outcome;
          expect(outcome.resolved).toBe(true);
          expect(outcome.at - startedAt).toBeLessThan(PROMPTLY);
          expect(await adapter.getState(key)).toBeNull();
        }
      });

      test("a release right after the call is not missed, subscribed or not", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const key = freshKey();
        await acquire(key, "alice", LONG_TTL);
        const waiting = observe(
          waitForRelease(key, TimeSpan.fromSeconds(10), new AbortController().signal),
        );
        const releasedAt = performance.now();
        expect(await adapter.release(key, "alice")).toBe(true);
        const outcome = await waiting.outcome;
        expect(outcome.resolved).toBe(true);
        expect(outcome.at - releasedAt).toBeLessThan(PROMPTLY);
      });

      test("resolves soon after a forceRelease", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const key = freshKey();
        await acquire(key, "alice", null);
        const waiting = observe(
          waitForRelease(key, TimeSpan.fromSeconds(5), new AbortController().signal),
        );
        await untilQueued(key, 1);
        expect(waiting.isSettled()).toBe(false);
        const releasedAt = performance.now();
        expect(await adapter.forceRelease(key)).toBe(true);
        const outcome = await waiting.outcome;
        expect(outcome.resolved).toBe(true);
        expect(outcome.at - releasedAt).toBeLessThan(PROMPTLY);
      });

      test("resolves after maxWait when nothing is released, leaving the hold alone", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const key = freshKey();
        const token = await acquire(key, "alice", LONG_TTL);
        const maxWait = 300;
        const startedAt = performance.now();
        const outcome = await observe(
          waitForRelease(key, TimeSpan.fromMilliseconds(maxWait), new AbortController().signal),
        ).outcome;
        expect(outcome.resolved).toBe(true);
        // Timers may round a millisecond or two down; nothing else should end the wait early.
        expect(outcome.at - startedAt).toBeGreaterThanOrEqual(maxWait - 20);
        expect(await held(key)).toMatchObject({ owner: "alice", fencingToken: token });
      });

      test("rejects with the signal's reason soon after an abort, leaving the hold alone", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const key = freshKey();
        const token = await acquire(key, "alice", LONG_TTL);
        const controller = new AbortController();
        const waiting = observe(waitForRelease(key, TimeSpan.fromSeconds(10), controller.signal));
        await untilQueued(key, 1);
        const reason = new Error("the caller gave up");
        const abortedAt = performance.now();
        controller.abort(reason);
        const outcome = await waiting.outcome;
        expect(outcome.resolved).toBe(false);
        expect(outcome.reason).toBe(reason);
        expect(outcome.at - abortedAt).toBeLessThan(PROMPTLY);
        expect(await held(key)).toMatchObject({ owner: "alice", fencingToken: token });
        // A release after the waiter left must not trip over it.
        expect(await adapter.release(key, "alice")).toBe(true);
      });

      test("rejects at once with the reason of a signal aborted beforehand", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const key = freshKey();
        await acquire(key, "alice", LONG_TTL);
        const reason = new Error("aborted before the call");
        const startedAt = performance.now();
        const outcome = await observe(
          waitForRelease(key, TimeSpan.fromSeconds(10), AbortSignal.abort(reason)),
        ).outcome;
        expect(outcome).toMatchObject({ resolved: false, reason });
        expect(outcome.at - startedAt).toBeLessThan(PROMPTLY);
      });

      test("each release wakes at least one waiter, and every waiter is woken in turn", async (context) => {
        // Only one waiter can take a released key, so an adapter may wake just one per release
        // (Redis does, per process); the others must still be woken by the releases after it.
        const waitForRelease = waitForReleaseOf(context);
        const key = freshKey();
        await acquire(key, "alice", LONG_TTL);
        const waiters = Array.from({ length: 5 }, () =>
          observe(waitForRelease(key, TimeSpan.fromSeconds(5), new AbortController().signal)),
        );
        await untilQueued(key, waiters.length);
        const startedAt = performance.now();
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
          await acquire(key, holder, LONG_TTL);
        }
        const outcomes = await Promise.all(waiters.map((waiter) => waiter.outcome));
        for (const outcome of outcomes) {
          expect(outcome.resolved).toBe(true);
          expect(outcome.at - startedAt).toBeLessThan(PROMPTLY * waiters.length);
        }
      });

      test("a release of another key, even one it is a prefix of, wakes no one", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const parent = freshKey("order");
        const child = track(`${parent}:1`);
        await acquire(parent, "alice", LONG_TTL);
        await acquire(child, "bob", LONG_TTL);
        const maxWait = 600;
        const startedAt = performance.now();
        const parentWaiter = observe(
          waitForRelease(parent, TimeSpan.fromMilliseconds(maxWait), new AbortController().signal),
        );
        const childWaiter = observe(
          waitForRelease(child, TimeSpan.fromSeconds(5), new AbortController().signal),
        );
        // Not the parent's too: its short wait may end first on a slow host (which would only
        // make this test weaker, as would a parent wait queued after the release).
        await untilQueued(child, 1);
        const releasedAt = performance.now();
        expect(await adapter.release(child, "bob")).toBe(true);

        const childOutcome = await childWaiter.outcome;
        expect(childOutcome.resolved).toBe(true);
        expect(childOutcome.at - releasedAt).toBeLessThan(PROMPTLY);
        const parentOutcome = await parentWaiter.outcome;
        expect(parentOutcome.resolved).toBe(true);
        expect(parentOutcome.at - startedAt).toBeGreaterThanOrEqual(maxWait - 20);
        expect((await held(parent)).owner).toBe("alice");
      });

      // A claim lets an adapter hand the key over at the release (the memory adapter does); an
      // adapter that only wakes its waiters ignores it. Either way, nothing else may happen.
      test("with a claim, a release or forceRelease hands the key to the waiter, or leaves it free", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        for (const release of ["release", "forceRelease"] as const) {
          const key = freshKey(release);
          const aliceToken = await acquire(key, "alice", LONG_TTL);
          const claim: LockWaitClaim = { lockId: "bob", ttl: RESTART_TTL };
          const waiting = waitForRelease(
            key,
            TimeSpan.fromSeconds(5),
            new AbortController().signal,
            claim,
          );
          await untilQueued(key, 1);
          expect(
            release === "release"
              ? await adapter.release(key, "alice")
              : await adapter.forceRelease(key),
          ).toBe(true);
          const end = await endOf(waiting, PROMPTLY);
          if (end === "pending") {
            expect.fail("the wait did not end soon after the release");
          }
          if (end === undefined) {
            expect(await adapter.getState(key)).toBeNull();
            continue;
          }
          expect(end).toMatchObject({ acquired: true, fencingToken: expect.any(Number) });
          // What the hold has left, if the adapter says, is at most its TTL.
          if (end.remainingTime !== undefined) {
            expect(end.remainingTime.toMilliseconds()).toBeLessThanOrEqual(
              RESTART_TTL.toMilliseconds(),
            );
          }
          const state = await held(key);
          expect(state.owner).toBe("bob");
          expect(state.fencingToken).toBe(end.fencingToken);
          expect(state.fencingToken).toBeGreaterThan(aliceToken);
          expect(milliseconds(state.remainingTime)).toBeGreaterThan(MIDPOINT - PROMPTLY / 4);
          expect(milliseconds(state.remainingTime)).toBeLessThanOrEqual(
            RESTART_TTL.toMilliseconds(),
          );
          // The handed-over hold is bob's like any other: a stranger cannot take or free it.
          expect(await adapter.acquire(key, "carol", LONG_TTL)).toMatchObject({ acquired: false });
          expect(await adapter.release(key, "carol")).toBe(false);
          expect(await adapter.release(key, "bob")).toBe(true);
        }
      });

      test("handed-over keys go to the claims in arrival order, never to a newcomer", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const key = freshKey();
        const previousToken = await acquire(key, "alice", LONG_TTL);
        const names = ["w0", "w1", "w2", "w3"];
        const waits = names.map((lockId) =>
          waitForRelease(key, TimeSpan.fromSeconds(5), new AbortController().signal, {
            lockId,
            ttl: LONG_TTL,
          }),
        );
        await untilQueued(key, names.length);
        if (!(await servedInOrder(key, "alice", previousToken, names, waits))) {
          return context.skip("the adapter wakes its waiters without handing the key over");
        }
      });

      test("a claim whose wait ended (timed out or aborted) is never handed the key", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const key = freshKey();
        await acquire(key, "alice", LONG_TTL);
        const timedOut = waitForRelease(
          key,
          TimeSpan.fromMilliseconds(SUBSCRIBE_GRACE),
          new AbortController().signal,
          {
            lockId: "bob",
            ttl: LONG_TTL,
          },
        );
        const controller = new AbortController();
        const aborted = observe(
          waitForRelease(key, TimeSpan.fromSeconds(5), controller.signal, {
            lockId: "carol",
            ttl: LONG_TTL,
          }),
        );
        expect(await endOf(timedOut, PROMPTLY)).toBeUndefined();
        controller.abort(new Error("carol gave up"));
        expect((await aborted.outcome).resolved).toBe(false);
        expect(await adapter.release(key, "alice")).toBe(true);
        await sleep(SUBSCRIBE_GRACE);
        expect(await adapter.getState(key)).toBeNull();
      });

      test("a claim without a TTL is handed a hold that never expires", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const key = freshKey();
        await acquire(key, "alice", LONG_TTL);
        const waiting = waitForRelease(key, TimeSpan.fromSeconds(5), new AbortController().signal, {
          lockId: "bob",
          ttl: null,
        });
        await untilQueued(key, 1);
        expect(await adapter.release(key, "alice")).toBe(true);
        const end = await endOf(waiting, PROMPTLY);
        expect(end).not.toBe("pending");
        if (end === undefined) {
          return context.skip("the adapter wakes its waiters without handing the key over");
        }
        expect(await held(key)).toMatchObject({ owner: "bob", remainingTime: null });
        expect(await adapter.refresh(key, "bob", LONG_TTL)).toBe(false);
      });

      test("two claims of one owner: the key goes to the first, and the second's abort leaves that hold alone", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const key = freshKey();
        await acquire(key, "alice", LONG_TTL);
        const claim: LockWaitClaim = { lockId: "bob", ttl: LONG_TTL };
        const first = waitForRelease(
          key,
          TimeSpan.fromSeconds(10),
          new AbortController().signal,
          claim,
        );
        const controller = new AbortController();
        const second = observe(
          waitForRelease(key, TimeSpan.fromSeconds(10), controller.signal, claim),
        );
        await untilQueued(key, 2);
        expect(await adapter.release(key, "alice")).toBe(true);
        const end = await endOf(first, PROMPTLY);
        if (end === undefined) {
          controller.abort();
          await second.outcome;
          return context.skip("the adapter wakes its waiters without handing the key over");
        }
        expect(end).toMatchObject({ acquired: true });
        expect(second.isSettled(), "the second wait still waits: its entry was not served").toBe(
          false,
        );
        controller.abort(new Error("the second wait gave up"));
        expect((await second.outcome).resolved).toBe(false);
        // The first wait's hold is bob's still: no stranger can take the key.
        expect(await held(key)).toMatchObject({
          owner: "bob",
          fencingToken: end === "pending" ? Number.NaN : end.fencingToken,
        });
        expect(await adapter.acquire(key, "carol", LONG_TTL)).toMatchObject({
          acquired: false,
          owner: "bob",
        });
        expect(await adapter.release(key, "bob")).toBe(true);
      });

      test("claims keep their order while the holder refreshes past its former expiries", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        const key = freshKey();
        // A 1 s TTL refreshed every 100 ms: the holder keeps the key even if the machine stalls.
        const ttl = TimeSpan.fromMilliseconds(1_000);
        const aliceToken = await acquire(key, "alice", ttl);
        const names = ["w0", "w1", "w2"];
        const waits = names.map((lockId) =>
          waitForRelease(key, TimeSpan.fromSeconds(20), new AbortController().signal, {
            lockId,
            ttl: LONG_TTL,
          }),
        );
        await untilQueued(key, names.length);
        const refreshUntil = performance.now() + 3 * ttl.toMilliseconds();
        while (performance.now() < refreshUntil) {
          expect(await adapter.refresh(key, "alice", ttl), "alice keeps the key").toBe(true);
          await sleep(100);
        }
        for (const wait of waits) {
          expect(await endOf(wait, 0), "a refresh ends no wait").toBe("pending");
        }
        if (!(await servedInOrder(key, "alice", aliceToken, names, waits))) {
          return context.skip("the adapter wakes its waiters without handing the key over");
        }
      });

      test("waitsPastExpiry: the holder's expiry hands the key to the oldest claim, the next one waits on", async (context) => {
        const waitForRelease = waitForReleaseOf(context);
        if (adapter.waitsPastExpiry !== true) {
          return context.skip("the adapter's waits end at the holder's expiry (waitsPastExpiry)");
        }
        const key = freshKey();
        const aliceToken = await acquire(key, "alice", TimeSpan.fromMilliseconds(400));
        const first = waitForRelease(key, TimeSpan.fromSeconds(20), new AbortController().signal, {
          lockId: "bob",
          ttl: LONG_TTL,
        });
        await untilQueued(key, 1);
        const second = waitForRelease(key, TimeSpan.fromSeconds(20), new AbortController().signal, {
          lockId: "carol",
          ttl: LONG_TTL,
        });
        const end = await endOf(first, PROMPTLY + 400);
        expect(end, "bob is handed the key when alice's hold expires").toMatchObject({
          acquired: true,
        });
        const state = await held(key);
        expect(state.owner).toBe("bob");
        expect(state.fencingToken).toBeGreaterThan(aliceToken);
        expect(await endOf(second, 0), "carol waits on").toBe("pending");
        expect(await adapter.release(key, "bob")).toBe(true);
        expect(await endOf(second, PROMPTLY)).toMatchObject({ acquired: true });
        expect((await held(key)).owner).toBe("carol");
      });

      /** waitForRelease, when the adapter says its claimed waits acquire (`waitAcquires`). */
      function acquiringWaitOf(context: TestContext) {
        const waitForRelease = waitForReleaseOf(context);
        if (adapter.waitAcquires !== true) {
          return context.skip("the adapter's waits do not acquire (waitAcquires)");
        }
        return (key: string, maxWait: TimeSpan, lockId: string, ttl: TimeSpan | null) =>
          waitForRelease(key, maxWait, new AbortController().signal, { lockId, ttl });
      }

      test("waitAcquires: a claimed wait takes a free or expired key at once, as acquire would", async (context) => {
        const wait = acquiringWaitOf(context);
        const key = freshKey();
        const taken = await wait(key, TimeSpan.fromSeconds(5), "alice", LONG_TTL);
        expect(taken).toMatchObject({ acquired: true });
        const state = await held(key);
        expect(state).toMatchObject({ owner: "alice", fencingToken: taken?.fencingToken });
        expect(state.remainingTime?.toMilliseconds()).toBeGreaterThan(50_000);

        const expired = freshKey();
        const first = await acquire(expired, "bob", SHORT_TTL);
        await sleep(SHORT_TTL.toMilliseconds() + 50);
        const takenOver = await wait(expired, TimeSpan.fromSeconds(5), "carol", null);
        expect(takenOver).toMatchObject({ acquired: true });
        expect(takenOver?.fencingToken).toBeGreaterThan(first);
        expect(await held(expired)).toMatchObject({ owner: "carol", remainingTime: null });
      });

      test("waitAcquires: a claimed wait on its own live hold re-takes it: same token, TTL restarted", async (context) => {
        const wait = acquiringWaitOf(context);
        const key = freshKey();
        const token = await acquire(key, "alice", TimeSpan.fromSeconds(2));
        const again = await wait(key, TimeSpan.fromSeconds(5), "alice", LONG_TTL);
        expect(again).toEqual({ acquired: true, fencingToken: token });
        const state = await held(key);
        expect(state.owner).toBe("alice");
        expect(state.remainingTime?.toMilliseconds()).toBeGreaterThan(50_000);
      });

      test("waitAcquires: a claimed wait aborted as it re-takes the claim owner's own hold leaves that hold alone", async (context) => {
        acquiringWaitOf(context);
        const waitForRelease = waitForReleaseOf(context);
        for (let round = 0; round < 5; round++) {
          const key = freshKey();
          const token = await acquire(key, "alice", LONG_TTL);
          const controller = new AbortController();
          const retaking = observe(
            waitForRelease(key, TimeSpan.fromSeconds(5), controller.signal, {
              lockId: "alice",
              ttl: LONG_TTL,
            }),
          );
          // After the wait's round trip has left, before its answer (most rounds).
          setImmediate(() => controller.abort(new Error("gave up")));
          await retaking.outcome;
          // Alice held the key before the wait: an abort must not have freed it.
          expect(await held(key)).toMatchObject({ owner: "alice", fencingToken: token });
        }
      });

      test("waitAcquires: a claimed wait never outlasts the holder's expiry, and the next one takes the key", async (context) => {
        const wait = acquiringWaitOf(context);
        const key = freshKey();
        const first = await acquire(key, "alice", TimeSpan.fromMilliseconds(400));
        const startedAt = performance.now();
        const end = await endOf(wait(key, TimeSpan.fromSeconds(20), "bob", LONG_TTL), 5_000);
        expect(end, "the wait ended with the hold, long before its 20 s").not.toBe("pending");
        expect(performance.now() - startedAt).toBeGreaterThanOrEqual(300);
        if (end === undefined) {
          const next = await wait(key, TimeSpan.fromSeconds(5), "bob", LONG_TTL);
          expect(next).toMatchObject({ acquired: true });
        }
        const state = await held(key);
        expect(state.owner).toBe("bob");
        expect(state.fencingToken).toBeGreaterThan(first);
      });
    });
  });
}
