import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, type TestContext, test, vi } from "vitest";
import { InvalidArgumentError } from "../../errors/invalid-argument-error.js";
import { publicOwner } from "../../primitive/owner.js";
import {
  uniqueNamespace as namespaceUnder,
  tamperSerialized as tamper,
} from "../../primitive/test-suites/suite-keys.js";
import {
  abortedWithin,
  outcomeWithin,
  started,
} from "../../primitive/test-suites/suite-promises.js";
import { eventually, unlessStalled, within } from "../../primitive/test-suites/suite-timing.js";
import { SuperJsonSerdeAdapter } from "../../serde/adapters/super-json/super-json-serde-adapter.js";
import { Serde } from "../../serde/serde.js";
import { SerdeError } from "../../serde/serde-error.js";
import { TimeSpan } from "../../time-span/time-span.js";
import type { ISemaphore } from "../contracts/semaphore.js";
import type {
  ISemaphoreAdapter,
  SemaphoreAcquireResult,
  SemaphoreWaitClaim,
} from "../contracts/semaphore-adapter.js";
import {
  FailedRefreshSemaphoreError,
  FailedReleaseSemaphoreError,
  LimitReachedSemaphoreError,
  SemaphoreAdapterResultError,
  SemaphoreBackendError,
  SemaphoreSlotLostError,
} from "../contracts/semaphore-errors.js";
import {
  SEMAPHORE_EVENTS,
  type SemaphoreEventMap,
  type SemaphoreEventName,
} from "../contracts/semaphore-events.js";
import type { SemaphoreCreateSettings } from "../contracts/semaphore-provider.js";
import { SEMAPHORE_STATE } from "../contracts/semaphore-state.js";
import { SemaphoreProvider, type SemaphoreProviderSettings } from "../semaphore-provider.js";

/** Settings of {@link semaphoreProviderTestSuite}: how to get the adapter under test. */
export type SemaphoreProviderTestSuiteSettings = {
  /** A fresh adapter (or one shared by the suite) for each test. */
  createAdapter: () => ISemaphoreAdapter | Promise<ISemaphoreAdapter>;
  /** Called after each test with what `createAdapter` returned. */
  destroyAdapter?: (adapter: ISemaphoreAdapter) => void | Promise<void>;
  /**
   * How many waits the backend has queued on `key` (as the adapter is given it), for an
   * adapter whose `waitForRelease` queues asynchronously. See `lockProviderTestSuite`.
   */
  queuedWaits?: (key: string) => Promise<number>;
};

type AdapterMethod = keyof Required<ISemaphoreAdapter>;

/** Sees every adapter call; returns what the adapter should answer (usually `call()`). */
type Interceptor = (
  method: AdapterMethod,
  args: readonly unknown[],
  call: () => Promise<unknown>,
) => Promise<unknown>;

type RecordedEvent = {
  [TName in SemaphoreEventName]: { name: TName; payload: SemaphoreEventMap[TName] };
}[SemaphoreEventName];

type World = {
  /** The adapter as created: bypasses interception, for arranging and inspecting state. */
  adapter: ISemaphoreAdapter;
  provider: SemaphoreProvider;
  /** Every event of `provider`, in the order heard. */
  events: RecordedEvent[];
  create(settings: SemaphoreCreateSettings, key?: string): ISemaphore;
  newProvider(settings?: Partial<Omit<SemaphoreProviderSettings, "adapter">>): SemaphoreProvider;
  storedKey(key?: string): string;
  /** Resolves once `semaphore` waits for a slot (see `lockProviderTestSuite`'s `untilWaiting`). */
  untilWaiting(semaphore: ISemaphore, queued?: number): Promise<void>;
};

const KEY = "resource";
const ms = (milliseconds: number) => TimeSpan.fromMilliseconds(milliseconds);
const LONG = TimeSpan.fromSeconds(10);
const HEX_32 = /^[0-9a-f]{32}$/;
const uniqueNamespace = () => namespaceUnder("hasp-semaphore-suite");

/** Routes every call of `adapter` through `interceptor`, keeping its optional members as they are. */
function instrument(adapter: ISemaphoreAdapter, interceptor: Interceptor): ISemaphoreAdapter {
  const through = <T>(method: AdapterMethod, args: unknown[], call: () => Promise<T>) =>
    interceptor(method, args, call) as Promise<T>;
  const instrumented: ISemaphoreAdapter = {
    ...(adapter.waitAcquires === undefined ? {} : { waitAcquires: adapter.waitAcquires }),
    ...(adapter.waitsPastExpiry === undefined ? {} : { waitsPastExpiry: adapter.waitsPastExpiry }),
    acquire: (key, slotId, limit, ttl) =>
      through<SemaphoreAcquireResult>("acquire", [key, slotId, limit, ttl], () =>
        adapter.acquire(key, slotId, limit, ttl),
      ),
    release: (key, slotId) =>
      through<boolean>("release", [key, slotId], () => adapter.release(key, slotId)),
    forceReleaseAll: (key) =>
      through<boolean>("forceReleaseAll", [key], () => adapter.forceReleaseAll(key)),
    refresh: (key, slotId, ttl) =>
      through<boolean>("refresh", [key, slotId, ttl], () => adapter.refresh(key, slotId, ttl)),
    getState: (key, slotId) =>
      through("getState", [key, slotId], () => adapter.getState(key, slotId)),
  };
  const { waitForRelease } = adapter;
  if (waitForRelease !== undefined) {
    instrumented.waitForRelease = (key, maxWait, signal, claim) =>
      through<Awaited<ReturnType<typeof waitForRelease>>>(
        "waitForRelease",
        [key, maxWait, signal, claim],
        () => waitForRelease.call(adapter, key, maxWait, signal, claim),
      );
  }
  return instrumented;
}

function eventsOf<TName extends SemaphoreEventName>(
  events: readonly RecordedEvent[],
  name: TName,
  slotId?: string,
): SemaphoreEventMap[TName][] {
  return events
    .filter((event) => event.name === name)
    .map((event) => event.payload as SemaphoreEventMap[TName])
    .filter((payload) => slotId === undefined || payload.slotId === slotId);
}

/**
 * The behaviour of `SemaphoreProvider` and `Semaphore` on top of an adapter, specified once:
 * identity and validation, the limit and its states, fencing, blocking and aborts, `run*` with
 * keep-alive and abort on loss, events in order, backend failures, serialization, and a client
 * clock shifted by a minute. Every test makes its own provider under a unique namespace. It uses
 * real time, with TTLs of 100 ms and more and no tight upper bounds.
 *
 * @example
 * semaphoreProviderTestSuite({ createAdapter: () => new MemorySemaphoreAdapter() });
 */
export function semaphoreProviderTestSuite(settings: SemaphoreProviderTestSuiteSettings): void {
  const { createAdapter, destroyAdapter, queuedWaits } = settings;

  async function setup(
    context: TestContext,
    options: { intercept?: Interceptor; provider?: Partial<SemaphoreProviderSettings> } = {},
  ): Promise<World> {
    const adapter = await createAdapter();
    const intercept: Interceptor = options.intercept ?? ((_method, _args, call) => call());
    const waiting = new Set<string>();
    const providerAdapter = instrument(adapter, (method, args, call) => {
      if (method === "waitForRelease") {
        const claim = args[3] as SemaphoreWaitClaim | undefined;
        waiting.add(publicOwner(claim?.slotId ?? ""));
      }
      return intercept(method, args, call).then((value) => {
        if (
          method === "acquire" &&
          adapter.waitForRelease === undefined &&
          (value as SemaphoreAcquireResult | undefined)?.acquired === false
        ) {
          waiting.add(publicOwner(args[1] as string));
        }
        return value;
      });
    });
    const namespace = uniqueNamespace();
    const storedKeys = new Set<string>();
    const newProvider = (overrides: Partial<Omit<SemaphoreProviderSettings, "adapter">> = {}) => {
      const provider = new SemaphoreProvider({
        namespace,
        ...options.provider,
        ...overrides,
        adapter: providerAdapter,
      });
      storedKeys.add((overrides.namespace ?? namespace).create(KEY).toString());
      return provider;
    };
    const provider = newProvider();
    const events: RecordedEvent[] = [];
    for (const name of Object.values(SEMAPHORE_EVENTS)) {
      await provider.addListener(name, (payload) => {
        events.push({ name, payload } as RecordedEvent);
      });
    }
    context.onTestFinished(async () => {
      await Promise.all([...storedKeys].map((key) => adapter.forceReleaseAll(key).catch(() => {})));
      await provider.close();
      await destroyAdapter?.(adapter);
    });
    return {
      adapter,
      provider,
      events,
      newProvider,
      create: (semaphoreSettings, key = KEY) => {
        storedKeys.add(namespace.create(key).toString());
        return provider.create(key, semaphoreSettings);
      },
      storedKey: (key = KEY) => namespace.create(key).toString(),
      untilWaiting: async (semaphore, queued = 1) => {
        await eventually(`${semaphore.slotId} waiting`, () => {
          if (!waiting.has(semaphore.slotId)) {
            throw new Error("not waiting yet");
          }
        });
        if (queuedWaits !== undefined && adapter.waitForRelease !== undefined) {
          const key = semaphore.key.toString();
          await eventually(`${queued} wait(s) queued`, async () => {
            if ((await queuedWaits(key)) < queued) {
              throw new Error("not queued yet");
            }
          });
        }
      },
    };
  }

  describe.concurrent("semaphore provider conformance", () => {
    describe("identity and validation", () => {
      test("create: the key, a generated slot id, the limit and the provider's TTL", async (context) => {
        const world = await setup(context, { provider: { defaultTtl: ms(30_000) } });
        const semaphore = world.create({ limit: 3 });
        expect(semaphore.key.get()).toBe(KEY);
        expect(semaphore.key.toString()).toBe(world.storedKey());
        expect(semaphore.slotId).toMatch(HEX_32);
        expect(semaphore.limit).toBe(3);
        expect(semaphore.ttl?.toMilliseconds()).toBe(30_000);
        expect(semaphore.fencingToken).toBeNull();
        expect(world.create({ limit: 1, ttl: null }).ttl).toBeNull();
        expect(world.create({ limit: 1 }).slotId).not.toBe(semaphore.slotId);
      });

      test.for([
        ["0", 0],
        ["a negative number", -1],
        ["a fraction", 1.5],
        ["NaN", Number.NaN],
        ["Infinity", Number.POSITIVE_INFINITY],
        ["a string", "3"],
        ["above 1,000,000", 1_000_001],
        ["missing", undefined],
      ] as const)(
        "a limit that is %s is an InvalidArgumentError naming `limit`",
        async ([, limit], context) => {
          const world = await setup(context);
          const create = () => world.create({ limit } as unknown as SemaphoreCreateSettings);
          expect(create).toThrow(InvalidArgumentError);
          expect(create).toThrow(/limit/);
        },
      );

      test("bad settings are rejected before anything reaches the adapter", async (context) => {
        const calls: string[] = [];
        const world = await setup(context, {
          intercept: (method, _args, call) => {
            calls.push(method);
            return call();
          },
        });
        expect(() => world.create({ limit: 2, ttl: ms(0) })).toThrow(InvalidArgumentError);
        expect(() => world.create({ limit: 2, slotId: "" })).toThrow(/slotId/);
        expect(() =>
          world.create({ limit: 2, extra: 1 } as unknown as SemaphoreCreateSettings),
        ).toThrow(/extra/);
        expect(() => world.provider.create("", { limit: 2 })).toThrow(InvalidArgumentError);
        // From JavaScript, without settings: the missing limit is named.
        const bare = world.provider.create as unknown as (key: string) => unknown;
        expect(() => bare.call(world.provider, "no-settings")).toThrow(/limit/);
        const semaphore = world.create({ limit: 2 });
        expect(() => semaphore.acquireBlocking({ time: ms(-1) })).toThrow(InvalidArgumentError);
        expect(() => semaphore.refresh(ms(0))).toThrow(InvalidArgumentError);
        expect(calls).toEqual([]);
      });

      test("two semaphores given one slot id share one slot", async (context) => {
        const world = await setup(context);
        const first = world.create({ limit: 2, slotId: "worker-7" });
        const second = world.create({ limit: 2, slotId: "worker-7" });
        expect(second.slotId).toBe("worker-7");
        const token = await first.acquireOrFail();
        expect(await second.acquireOrFail()).toBe(token);
        expect(await world.create({ limit: 2 }).getState()).toMatchObject({
          type: SEMAPHORE_STATE.UNACQUIRED,
          acquiredSlotsCount: 1,
        });
        expect(await second.release()).toBe(true);
        expect(await first.release()).toBe(false);
      });
    });

    describe("the limit and the states", () => {
      test("EXPIRED, UNACQUIRED, ACQUIRED and LIMIT_REACHED as slots are taken and freed", async (context) => {
        const world = await setup(context);
        const [a, b, c] = [1, 2, 3].map(() => world.create({ limit: 2, ttl: LONG })) as [
          ISemaphore,
          ISemaphore,
          ISemaphore,
        ];
        expect(await c.getState()).toEqual({ type: SEMAPHORE_STATE.EXPIRED });
        const token = await a.acquireOrFail();
        expect(await c.getState()).toEqual({
          type: SEMAPHORE_STATE.UNACQUIRED,
          limit: 2,
          freeSlotsCount: 1,
          acquiredSlotsCount: 1,
        });
        expect(await b.acquire()).toBe(true);
        expect(await c.getState()).toEqual({
          type: SEMAPHORE_STATE.LIMIT_REACHED,
          limit: 2,
          acquiredSlotsCount: 2,
        });
        const state = await a.getState();
        expect(state).toMatchObject({
          type: SEMAPHORE_STATE.ACQUIRED,
          limit: 2,
          fencingToken: token,
          freeSlotsCount: 0,
          acquiredSlotsCount: 2,
        });
        const remaining =
          state.type === SEMAPHORE_STATE.ACQUIRED ? state.remainingTime?.toMilliseconds() : 0;
        expect(remaining).toBeGreaterThan(LONG.toMilliseconds() / 2);
        expect(await c.acquire()).toBe(false);
        expect(await a.release()).toBe(true);
        expect(await c.acquire()).toBe(true);
      });

      test("acquireOrFail resolves to the token, and throws LimitReachedSemaphoreError naming key, slot and limit", async (context) => {
        const world = await setup(context);
        const holder = world.create({ limit: 1 });
        const token = await holder.acquireOrFail();
        expect(holder.fencingToken).toBe(token);
        const other = world.create({ limit: 1 });
        const error = await other.acquireOrFail().catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(LimitReachedSemaphoreError);
        expect(error).toMatchObject({ key: KEY, slotId: other.slotId, limit: 1 });
        expect(String((error as Error).message)).toContain(KEY);
        expect(String((error as Error).message)).not.toContain(".");
      });

      test("a holder acquiring again keeps its slot and its token, even on a full key", async (context) => {
        const world = await setup(context);
        const a = world.create({ limit: 1 });
        const token = await a.acquireOrFail();
        expect(await a.acquireOrFail()).toBe(token);
        expect(await a.getState()).toMatchObject({ acquiredSlotsCount: 1, fencingToken: token });
      });

      test("a smaller limit on a key with live slots: refused until the count is below it, none taken away", async (context) => {
        const world = await setup(context);
        const wide = [1, 2, 3].map(() => world.create({ limit: 3 }));
        for (const semaphore of wide) {
          expect(await semaphore.acquire()).toBe(true);
        }
        const narrow = world.create({ limit: 2 });
        expect(await narrow.getState()).toEqual({
          type: SEMAPHORE_STATE.LIMIT_REACHED,
          limit: 2,
          acquiredSlotsCount: 3,
        });
        const refusal = await narrow.acquireOrFail().catch((caught: unknown) => caught);
        expect(refusal).toMatchObject({ limit: 2 });
        await wide[0]?.release();
        expect(await narrow.acquire()).toBe(false);
        await wide[1]?.release();
        expect(await narrow.acquire()).toBe(true);
        // The limit of 2 now binds the wider semaphores too.
        expect(await wide[0]?.acquire()).toBe(false);
        expect(await wide[0]?.getState()).toMatchObject({
          type: SEMAPHORE_STATE.LIMIT_REACHED,
          limit: 2,
        });
      });

      test("release and releaseOrFail: only the holder frees its slot; twice is harmless", async (context) => {
        const world = await setup(context);
        const a = world.create({ limit: 2 });
        const b = world.create({ limit: 2 });
        await a.acquireOrFail();
        expect(await b.release()).toBe(false);
        await expect(b.releaseOrFail()).rejects.toBeInstanceOf(FailedReleaseSemaphoreError);
        expect(await a.getState()).toMatchObject({ type: SEMAPHORE_STATE.ACQUIRED });
        expect(await a.release()).toBe(true);
        expect(a.fencingToken).toBeNull();
        expect(await a.release()).toBe(false);
        await expect(a.releaseOrFail()).rejects.toMatchObject({ key: KEY, slotId: a.slotId });
      });

      test("refresh and refreshOrFail: the holder's TTL restarts; a stranger or a slot without TTL fails", async (context) => {
        const world = await setup(context);
        await unlessStalled(async () => {
          const a = world.create({ limit: 2, ttl: ms(1_000) });
          await a.forceReleaseAll();
          const acquiredAt = performance.now();
          await a.acquireOrFail();
          await sleep(500);
          const refreshedAt = performance.now();
          const refreshed = await a.refresh();
          const state = await a.getState();
          // Seen only if the database answered in time: else this says so, and tries again.
          within(acquiredAt, 900, "acquire, pause and refresh");
          within(refreshedAt, 250, "refresh and getState");
          expect(refreshed).toBe(true);
          expect(
            state.type === SEMAPHORE_STATE.ACQUIRED ? state.remainingTime?.toMilliseconds() : 0,
          ).toBeGreaterThan(750);
          expect(await a.refresh(ms(5_000))).toBe(true);
        });
        const b = world.create({ limit: 2 });
        expect(await b.refresh()).toBe(false);
        await expect(b.refreshOrFail()).rejects.toBeInstanceOf(FailedRefreshSemaphoreError);
        const forever = world.create({ limit: 2, ttl: null });
        await forever.acquireOrFail();
        expect(await forever.refresh()).toBe(false);
      });

      test("Symbol.asyncDispose releases the slot this instance took, and does nothing without one", async (context) => {
        const world = await setup(context);
        const semaphore = world.create({ limit: 1 });
        await semaphore[Symbol.asyncDispose]();
        await semaphore.acquireOrFail();
        await semaphore[Symbol.asyncDispose]();
        expect(await semaphore.getState()).toEqual({ type: SEMAPHORE_STATE.EXPIRED });
        expect(
          eventsOf(world.events, SEMAPHORE_EVENTS.FAILED_RELEASE, semaphore.slotId),
        ).toHaveLength(0);
      });

      test("forceReleaseAll frees every slot; the former holders' releases then fail", async (context) => {
        const world = await setup(context);
        const [a, b] = [world.create({ limit: 2 }), world.create({ limit: 2 })];
        await a.acquireOrFail();
        await b.acquireOrFail();
        expect(await world.create({ limit: 2 }).forceReleaseAll()).toBe(true);
        expect(await a.getState()).toEqual({ type: SEMAPHORE_STATE.EXPIRED });
        expect(await a.release()).toBe(false);
        expect(await b.refresh()).toBe(false);
        expect(await a.forceReleaseAll()).toBe(false);
      });

      test("an expired slot frees its place; its holder can neither release nor refresh", async (context) => {
        const world = await setup(context);
        const a = world.create({ limit: 1, ttl: ms(100) });
        await a.acquireOrFail();
        await eventually("the slot expired", async () =>
          expect(await a.getState()).toEqual({ type: SEMAPHORE_STATE.EXPIRED }),
        );
        const b = world.create({ limit: 1 });
        expect(await b.acquire()).toBe(true);
        expect(await a.release()).toBe(false);
        expect(await a.refresh()).toBe(false);
      });

      test("a storm of 60 acquires on limit 4 from two providers: 4 slots, never more", async (context) => {
        const world = await setup(context);
        const other = world.newProvider();
        const semaphores = Array.from({ length: 60 }, (_, i) =>
          (i % 2 === 0 ? world.provider : other).create(KEY, { limit: 4 }),
        );
        const results = await Promise.all(semaphores.map((semaphore) => semaphore.acquire()));
        expect(results.filter(Boolean)).toHaveLength(4);
        expect(await world.create({ limit: 4 }).getState()).toEqual({
          type: SEMAPHORE_STATE.LIMIT_REACHED,
          limit: 4,
          acquiredSlotsCount: 4,
        });
      });
    });

    describe("fencing tokens", () => {
      test("grow across release, forceReleaseAll, expiry and holders; getState tells the store's", async (context) => {
        const world = await setup(context);
        const tokens: number[] = [];
        const a = world.create({ limit: 2, ttl: ms(100) });
        const b = world.create({ limit: 2 });
        tokens.push(await a.acquireOrFail());
        tokens.push(await b.acquireOrFail());
        await b.release();
        tokens.push(await b.acquireOrFail());
        await eventually("a's slot expired", async () =>
          expect((await a.getState()).type).not.toBe(SEMAPHORE_STATE.ACQUIRED),
        );
        tokens.push(await a.acquireOrFail());
        await b.forceReleaseAll();
        tokens.push(await b.acquireOrFail());
        for (const [index, token] of tokens.entries()) {
          if (index > 0) {
            expect(token).toBeGreaterThan(tokens[index - 1] ?? Number.NaN);
          }
        }
        expect(await b.getState()).toMatchObject({ fencingToken: tokens.at(-1) });
      });
    });

    describe("blocking acquire", () => {
      test("waits for a slot to be freed, and takes it", async (context) => {
        const world = await setup(context);
        const holder = world.create({ limit: 1 });
        await holder.acquireOrFail();
        const waiter = world.create({ limit: 1 });
        const waiting = started(waiter.acquireBlockingOrFail({ time: LONG, interval: ms(20) }));
        await world.untilWaiting(waiter);
        await holder.release();
        expect(await waiting).toEqual(expect.any(Number));
        expect(await waiter.getState()).toMatchObject({ type: SEMAPHORE_STATE.ACQUIRED });
      });

      test("12 blocking acquirers on limit 3 are all served in turn, never more than 3 inside", async (context) => {
        const world = await setup(context);
        let inside = 0;
        let most = 0;
        const runs = Array.from({ length: 12 }, () =>
          world.create({ limit: 3 }).runBlockingOrFail(
            async () => {
              inside += 1;
              most = Math.max(most, inside);
              await sleep(5);
              inside -= 1;
            },
            { time: LONG, interval: ms(10) },
          ),
        );
        await Promise.all(runs);
        expect(most).toBeLessThanOrEqual(3);
        expect(most).toBeGreaterThan(1);
        expect(await world.create({ limit: 3 }).getState()).toEqual({
          type: SEMAPHORE_STATE.EXPIRED,
        });
      });

      test("gives up after its time: false, or LimitReachedSemaphoreError", async (context) => {
        const world = await setup(context);
        await world.create({ limit: 1 }).acquireOrFail();
        const waiter = world.create({ limit: 1 });
        expect(await waiter.acquireBlocking({ time: ms(200), interval: ms(50) })).toBe(false);
        await expect(
          waiter.acquireBlockingOrFail({ time: ms(200), interval: ms(50) }),
        ).rejects.toBeInstanceOf(LimitReachedSemaphoreError);
        expect(await waiter.getState()).toMatchObject({ type: SEMAPHORE_STATE.LIMIT_REACHED });
      });

      test("an abort mid-wait rejects with the reason and leaves no claim: a later release goes elsewhere", async (context) => {
        const world = await setup(context);
        const holder = world.create({ limit: 1 });
        await holder.acquireOrFail();
        const quitter = world.create({ limit: 1 });
        const controller = new AbortController();
        const waiting = started(
          quitter.acquireBlocking({ time: LONG, interval: ms(20) }).withSignal(controller.signal),
        );
        await world.untilWaiting(quitter);
        const reason = new Error("gave up");
        controller.abort(reason);
        expect((await outcomeWithin(waiting)).error).toBe(reason);
        await holder.release();
        // The abort rejects at once; the adapter's leave may reach a backend after the release,
        // which then hands the slot to the claim for a moment: the leave gives it back.
        await eventually("the aborted claim holds nothing", async () => {
          expect(await quitter.getState()).toEqual({ type: SEMAPHORE_STATE.EXPIRED });
        });
        expect(await world.create({ limit: 1 }).acquire()).toBe(true);
      });

      test("an abort in the same tick as the release: either the slot is the waiter's and it knows, or it holds nothing", async (context) => {
        const world = await setup(context);
        for (let round = 0; round < 5; round++) {
          const key = `${KEY}-${round}`;
          const holder = world.create({ limit: 1 }, key);
          await holder.acquireOrFail();
          const waiter = world.create({ limit: 1 }, key);
          const controller = new AbortController();
          const waiting = started(
            waiter.acquireBlocking({ time: LONG, interval: ms(10) }).withSignal(controller.signal),
          );
          await world.untilWaiting(waiter);
          const releasing = holder.release();
          controller.abort(new Error("gave up"));
          // Observed before the release's round trip: the abort may reject it at once.
          const outcomeOf = outcomeWithin(waiting);
          await releasing;
          const outcome = await outcomeOf;
          expect(outcome.pending).toBeUndefined();
          await eventually("the key settled", async () => {
            const state = await waiter.getState();
            if (outcome.value === true) {
              expect(state).toMatchObject({
                type: SEMAPHORE_STATE.ACQUIRED,
                fencingToken: waiter.fencingToken,
              });
            } else {
              expect(state.type, "a slot given up on is let go").not.toBe(SEMAPHORE_STATE.ACQUIRED);
            }
          });
          await world.adapter.forceReleaseAll(world.storedKey(key));
        }
      });

      test("two blocking acquires of one semaphore: one slot, whichever answers", async (context) => {
        const world = await setup(context);
        const holder = world.create({ limit: 1 });
        await holder.acquireOrFail();
        const twice = world.create({ limit: 1 });
        const first = started(twice.acquireBlocking({ time: LONG, interval: ms(20) }));
        const controller = new AbortController();
        const second = started(
          twice.acquireBlocking({ time: LONG, interval: ms(20) }).withSignal(controller.signal),
        );
        await world.untilWaiting(twice, 2);
        await holder.release();
        expect(await first).toBe(true);
        controller.abort(new Error("the second gave up"));
        await outcomeWithin(second);
        await eventually("one slot, twice's", async () =>
          expect(await twice.getState()).toMatchObject({
            type: SEMAPHORE_STATE.ACQUIRED,
            acquiredSlotsCount: 1,
            fencingToken: twice.fencingToken,
          }),
        );
        expect(await world.create({ limit: 1 }).acquire()).toBe(false);
      });

      test("a holder refreshing while others wait serves them nothing; its release serves one", async (context) => {
        const world = await setup(context);
        let attempt = 0;
        let holder = world.create({ limit: 1 });
        let waiting: Promise<boolean> = Promise.resolve(false);
        await unlessStalled(async () => {
          // Each attempt on a key of its own: a stalled one's waiter may have taken its slot.
          attempt += 1;
          const key = `${KEY}-${attempt}`;
          holder = world.create({ limit: 1, ttl: ms(600) }, key);
          let sentAt = performance.now();
          await holder.acquireOrFail();
          const waiter = world.create({ limit: 1 }, key);
          waiting = started(waiter.acquireBlocking({ time: LONG, interval: ms(20) }));
          await world.untilWaiting(waiter);
          for (let i = 0; i < 10; i++) {
            const refreshedSince = sentAt;
            sentAt = performance.now();
            const refreshed = await holder.refresh();
            // The holder keeps its slot only if each refresh came within the TTL of the last.
            within(refreshedSince, 500, "the refresh after the last");
            expect(refreshed).toBe(true);
            await sleep(100);
          }
        });
        expect(await holder.getState()).toMatchObject({ type: SEMAPHORE_STATE.ACQUIRED });
        await holder.release();
        expect(await waiting).toBe(true);
      });
    });

    describe("run, runOrFail, runBlocking, runBlockingOrFail", () => {
      test("run gives the token, answers [true, value] and releases; [false, null] when full", async (context) => {
        const world = await setup(context);
        const semaphore = world.create({ limit: 1 });
        const [acquired, token] = await semaphore.run(({ fencingToken, signal }) => {
          expect(signal.aborted).toBe(false);
          return fencingToken;
        });
        expect(acquired).toBe(true);
        expect(token).toEqual(expect.any(Number));
        expect(await semaphore.getState()).toEqual({ type: SEMAPHORE_STATE.EXPIRED });
        await world.create({ limit: 1 }).acquireOrFail();
        expect(await semaphore.run(() => "ran")).toEqual([false, null]);
        await expect(semaphore.runOrFail(() => "ran")).rejects.toBeInstanceOf(
          LimitReachedSemaphoreError,
        );
      });

      test("the function's error is thrown, and the slot is released all the same", async (context) => {
        const world = await setup(context);
        const semaphore = world.create({ limit: 1 });
        const failure = new Error("the work failed");
        await expect(
          semaphore.runBlockingOrFail(() => {
            throw failure;
          }),
        ).rejects.toBe(failure);
        expect(await semaphore.getState()).toEqual({ type: SEMAPHORE_STATE.EXPIRED });
      });

      test("auto-refresh keeps a 900 ms slot alive through a 1.5 s function", async (context) => {
        const world = await setup(context);
        let attempt = 0;
        let semaphore = world.create({ limit: 1 });
        let seen = { attempts: [] as boolean[], state: {}, aborted: true };
        await unlessStalled(async () => {
          // Each attempt on a key of its own: a stalled one may have lost its slot.
          attempt += 1;
          const key = `${KEY}-${attempt}`;
          semaphore = world.create({ limit: 1, ttl: ms(900) }, key);
          const competitor = world.create({ limit: 1 }, key);
          seen = await semaphore.runOrFail(async ({ signal }) => {
            const attempts: boolean[] = [];
            for (let i = 0; i < 5; i++) {
              const stepAt = performance.now();
              await sleep(300);
              attempts.push(await competitor.acquire());
              // The keep-alive keeps up only on a machine that keeps up with the steps.
              within(stepAt, 600, "a step of 300 ms and an acquire");
            }
            return { attempts, state: await semaphore.getState(), aborted: signal.aborted };
          });
        });
        expect(seen.attempts).toEqual([false, false, false, false, false]);
        expect(seen.state).toMatchObject({ type: SEMAPHORE_STATE.ACQUIRED });
        expect(seen.aborted).toBe(false);
        await eventually("two refreshes and the release", () => {
          expect(
            eventsOf(world.events, SEMAPHORE_EVENTS.REFRESHED, semaphore.slotId).length,
          ).toBeGreaterThanOrEqual(2);
          expect(eventsOf(world.events, SEMAPHORE_EVENTS.RELEASED, semaphore.slotId)).toHaveLength(
            1,
          );
        });
        expect(await semaphore.getState()).toEqual({ type: SEMAPHORE_STATE.EXPIRED });
      });

      test("aborts the function's signal with SemaphoreSlotLostError when the slot is lost", async (context) => {
        const world = await setup(context);
        const semaphore = world.create({ limit: 1, ttl: ms(300) });
        const outcome = await semaphore.runOrFail(async ({ signal }) => {
          await world.create({ limit: 1 }).forceReleaseAll();
          return { aborted: await abortedWithin(signal), reason: signal.reason as unknown };
        });
        expect(outcome.aborted).toBe(true);
        expect(outcome.reason).toBeInstanceOf(SemaphoreSlotLostError);
        await eventually("FAILED_REFRESH", () =>
          expect(
            eventsOf(world.events, SEMAPHORE_EVENTS.FAILED_REFRESH, semaphore.slotId).length,
          ).toBeGreaterThan(0),
        );
      });

      test("runBlocking waits for a slot, then runs", async (context) => {
        const world = await setup(context);
        const holder = world.create({ limit: 1 });
        await holder.acquireOrFail();
        const waiter = world.create({ limit: 1 });
        const running = started(waiter.runBlocking(() => "ran", { time: LONG, interval: ms(20) }));
        await world.untilWaiting(waiter);
        await holder.release();
        expect(await running).toEqual([true, "ran"]);
      });
    });

    describe("events", () => {
      test("each operation's event, in order, carrying the semaphore, key and slot id", async (context) => {
        const world = await setup(context);
        const a = world.create({ limit: 1, ttl: LONG });
        const b = world.create({ limit: 1 });
        await a.acquire();
        await b.acquire();
        await a.refresh();
        await b.release();
        await b.refresh();
        await a.release();
        await a.forceReleaseAll();
        const names = (slotId: string) =>
          eventually(`the events of ${slotId}`, () => {
            const heard = world.events
              .filter((event) => event.payload.slotId === slotId)
              .map((event) => event.name);
            expect(heard.length).toBeGreaterThanOrEqual(slotId === a.slotId ? 4 : 3);
            return heard;
          });
        expect(await names(a.slotId)).toEqual([
          SEMAPHORE_EVENTS.ACQUIRED,
          SEMAPHORE_EVENTS.REFRESHED,
          SEMAPHORE_EVENTS.RELEASED,
          SEMAPHORE_EVENTS.ALL_FORCE_RELEASED,
        ]);
        expect(await names(b.slotId)).toEqual([
          SEMAPHORE_EVENTS.LIMIT_REACHED,
          SEMAPHORE_EVENTS.FAILED_RELEASE,
          SEMAPHORE_EVENTS.FAILED_REFRESH,
        ]);
        const [acquired] = eventsOf(world.events, SEMAPHORE_EVENTS.ACQUIRED, a.slotId);
        expect(acquired).toMatchObject({
          semaphore: a,
          key: KEY,
          slotId: a.slotId,
          limit: 1,
          fencingToken: expect.any(Number),
        });
        expect(eventsOf(world.events, SEMAPHORE_EVENTS.LIMIT_REACHED, b.slotId)[0]).toMatchObject({
          limit: 1,
          acquiredSlotsCount: 1,
        });
        expect(
          eventsOf(world.events, SEMAPHORE_EVENTS.ALL_FORCE_RELEASED, a.slotId)[0],
        ).toMatchObject({ hasReleased: false });
      });

      test("a throwing listener fails no operation", async (context) => {
        const world = await setup(context);
        await world.provider.addListener(SEMAPHORE_EVENTS.ACQUIRED, () => {
          throw new Error("a broken listener");
        });
        expect(await world.create({ limit: 1 }).acquire()).toBe(true);
      });

      test("a misspelt event name is an InvalidArgumentError", async (context) => {
        const world = await setup(context);
        await expect(
          world.provider.addListener("ACQUIRE" as SemaphoreEventName, () => {}),
        ).rejects.toThrow(/is not a semaphore event; the semaphore events are ACQUIRED, /);
      });
    });

    describe("backend failures", () => {
      test("a failing adapter: SemaphoreBackendError with its cause, and UNEXPECTED_ERROR", async (context) => {
        const cause = new Error("connection reset");
        const world = await setup(context, {
          intercept: (method, _args, call) =>
            method === "acquire" ? Promise.reject(cause) : call(),
        });
        const semaphore = world.create({ limit: 1 });
        const error = await semaphore.acquire().catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(SemaphoreBackendError);
        expect(error).toMatchObject({ key: KEY, operation: "acquire", cause });
        await eventually("UNEXPECTED_ERROR", () =>
          expect(
            eventsOf(world.events, SEMAPHORE_EVENTS.UNEXPECTED_ERROR, semaphore.slotId)[0],
          ).toMatchObject({ operation: "acquire", error: cause }),
        );
      });

      test("an answer of the wrong shape: SemaphoreAdapterResultError, never a full semaphore", async (context) => {
        const world = await setup(context, {
          intercept: (method, _args, call) =>
            method === "acquire" ? Promise.resolve(true) : call(),
        });
        const error = await world
          .create({ limit: 1 })
          .acquire()
          .catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(SemaphoreAdapterResultError);
      });
    });

    describe("serialization", () => {
      test("a serialized semaphore revives in another provider and can release its slot", async (context) => {
        const serde = new Serde(new SuperJsonSerdeAdapter());
        const world = await setup(context);
        const provider = world.newProvider({ serde, providerId: "shared" });
        const semaphore = provider.create(KEY, { limit: 2, ttl: LONG });
        const token = await semaphore.acquireOrFail();
        const text = serde.serialize(semaphore);
        expect(JSON.parse(text).body.json).not.toHaveProperty("fencingToken");
        const elsewhere = new Serde(new SuperJsonSerdeAdapter());
        world.newProvider({ serde: elsewhere, providerId: "shared" });
        const revived = elsewhere.deserialize<ISemaphore>(text);
        expect(revived).toMatchObject({ slotId: semaphore.slotId, limit: 2 });
        expect(revived.key.get()).toBe(KEY);
        expect(revived.ttl?.toMilliseconds()).toBe(LONG.toMilliseconds());
        expect(await revived.getState()).toMatchObject({ fencingToken: token });
        expect(await revived.release()).toBe(true);
        expect(await semaphore.getState()).toEqual({ type: SEMAPHORE_STATE.EXPIRED });
      });

      test("a tampered document is refused, or acts as a stranger that holds nothing", async (context) => {
        const serde = new Serde(new SuperJsonSerdeAdapter());
        const world = await setup(context);
        const provider = world.newProvider({ serde, providerId: "tamper" });
        const semaphore = provider.create(KEY, { limit: 2 });
        await semaphore.acquireOrFail();
        const text = serde.serialize(semaphore);
        const forged = serde.deserialize<ISemaphore>(
          tamper(text, (data) => {
            data.proof = "0".repeat(32);
          }),
        );
        expect(await forged.release()).toBe(false);
        for (const edit of [
          (data: Record<string, unknown>) => {
            data.limit = 0;
          },
          (data: Record<string, unknown>) => {
            data.proof = "not hex";
          },
          (data: Record<string, unknown>) => {
            data.providerId = "unknown";
          },
          (data: Record<string, unknown>) => {
            data.fencingToken = 1;
          },
        ]) {
          expect(() => serde.deserialize(tamper(text, edit))).toThrow(SerdeError);
        }
        expect(await semaphore.getState()).toMatchObject({ type: SEMAPHORE_STATE.ACQUIRED });
      });

      test("a serde the provider was not given refuses the semaphore", async (context) => {
        const world = await setup(context);
        const serde = new Serde(new SuperJsonSerdeAdapter());
        expect(() => serde.serialize(world.create({ limit: 1 }))).toThrow(SerdeError);
      });
    });
  });

  // Not concurrent with the others: the shifted clock is the whole process's.
  describe("the client's clock", () => {
    test.for([
      ["60 s ahead", 60_000],
      ["60 s behind", -60_000],
    ] as const)("shifted %s changes neither the limit nor expiry", async ([, shift], context) => {
      const world = await setup(context);
      const realNow = Date.now.bind(Date);
      const spy = vi.spyOn(Date, "now").mockImplementation(() => realNow() + shift);
      context.onTestFinished(() => spy.mockRestore());
      let a = world.create({ limit: 1 });
      let attempt = 0;
      await unlessStalled(async () => {
        // Each attempt on a key of its own: a stalled one's slot may have run out already.
        attempt += 1;
        const key = `${KEY}-${attempt}`;
        a = world.create({ limit: 1, ttl: ms(400) }, key);
        const acquiredAt = performance.now();
        await a.acquireOrFail();
        const state = await a.getState();
        const other = await world.create({ limit: 1 }, key).acquire();
        // Seen full only if the database answered within the TTL.
        within(acquiredAt, 300, "acquire, getState and another acquire");
        const remaining =
          state.type === SEMAPHORE_STATE.ACQUIRED ? state.remainingTime?.toMilliseconds() : 0;
        expect(remaining).toBeGreaterThan(0);
        expect(remaining).toBeLessThanOrEqual(400);
        expect(other).toBe(false);
      });
      await eventually("the slot expired on the backend's clock", async () =>
        expect((await a.getState()).type).toBe(SEMAPHORE_STATE.EXPIRED),
      );
      expect(await world.create({ limit: 1 }, a.key.get()).acquire()).toBe(true);
    });
  });
}
