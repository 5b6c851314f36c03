import { setTimeout as sleep } from "node:timers/promises";
import { describe, type TestContext, test, vi } from "vitest";
import { InvalidArgumentError } from "../../errors/invalid-argument-error.js";
import { MemoryEventBusAdapter } from "../../event-bus/adapters/memory/memory-event-bus-adapter.js";
import { EventBus } from "../../event-bus/event-bus.js";
import { Namespace } from "../../namespace/namespace.js";
import { BLOCKING_SLACK_MS } from "../../primitive/blocking-deadline.js";
import { CLOCK_DRIFT_FACTOR, CLOCK_DRIFT_MS } from "../../primitive/keep-alive.js";
import { publicOwner } from "../../primitive/owner.js";
import {
  uniqueNamespace as namespaceUnder,
  tamperSerialized as tamperLock,
  uniqueSuffix,
} from "../../primitive/test-suites/suite-keys.js";
import { abortedWithin, outcomeWithin } from "../../primitive/test-suites/suite-promises.js";
import {
  eventually,
  PATIENCE_MS,
  stalled,
  unlessStalled,
} from "../../primitive/test-suites/suite-timing.js";
import { TimeoutError } from "../../resilience/resilience-errors.js";
import { timeout } from "../../resilience/timeout.js";
import { SuperJsonSerdeAdapter } from "../../serde/adapters/super-json/super-json-serde-adapter.js";
import { Serde } from "../../serde/serde.js";
import { SerdeError } from "../../serde/serde-error.js";
import { Task } from "../../task/task.js";
import { type ITimeSpan, TimeSpan } from "../../time-span/time-span.js";
import { MAX_DURATION_MS } from "../../time-span/time-span-schema.js";
import type {
  ILock,
  LockRunBlockingSettings,
  LockRunContext,
  LockRunnable,
} from "../contracts/lock.js";
import type {
  ILockAdapter,
  LockAcquireResult,
  LockAdapterState,
  LockWaitClaim,
} from "../contracts/lock-adapter.js";
import {
  FailedAcquireLockError,
  FailedRefreshLockError,
  FailedReleaseLockError,
  LockAdapterResultError,
  LockBackendError,
  LockLostError,
} from "../contracts/lock-errors.js";
import { LOCK_EVENTS, type LockEventMap, type LockEventName } from "../contracts/lock-events.js";
import type { LockCreateSettings } from "../contracts/lock-provider.js";
import { type ILockState, LOCK_STATE } from "../contracts/lock-state.js";
import { LockProvider, type LockProviderSettings } from "../lock-provider.js";

/** Settings of {@link lockProviderTestSuite}: how to get the adapter under test. */
export type LockProviderTestSuiteSettings = {
  /** A fresh adapter (or one shared by the suite) for each test. */
  createAdapter: () => ILockAdapter | Promise<ILockAdapter>;
  /** Called after each test with what `createAdapter` returned. */
  destroyAdapter?: (adapter: ILockAdapter) => void | Promise<void>;
  /**
   * How many waits the backend has queued on `key` (the key as the adapter is given it), for an
   * adapter whose `waitForRelease` queues asynchronously (after a subscription, or on another
   * connection). Tests whose point is a wait in place before a release then wait for it; without
   * it they go on once `waitForRelease` was called, which is the same for an adapter that queues
   * the wait in that call, and on a slow host may only make those tests weaker, never fail them.
   */
  queuedWaits?: (key: string) => Promise<number>;
};

type AdapterMethod = keyof Required<ILockAdapter>;

/** Sees every adapter call; returns what the adapter should answer (usually `call()`). */
type Interceptor = (
  method: AdapterMethod,
  args: readonly unknown[],
  call: () => Promise<unknown>,
) => Promise<unknown>;

type RecordedEvent = {
  [TName in LockEventName]: { name: TName; payload: LockEventMap[TName] };
}[LockEventName];

type World = {
  /** The adapter as created: bypasses interception, for arranging and inspecting state. */
  adapter: ILockAdapter;
  provider: LockProvider;
  namespace: Namespace;
  /** Every event of `provider`, in the order heard. */
  events: RecordedEvent[];
  /** Adapter methods called through the provider, in order. */
  calls: AdapterMethod[];
  create(settings?: LockCreateSettings, key?: string): ILock;
  /** Another provider on the same adapter. */
  newProvider(settings?: Partial<Omit<LockProviderSettings, "adapter">>): LockProvider;
  /** The stored key of a user key, for calls on `adapter`. */
  storedKey(key?: string): string;
  /**
   * Resolves once `lock` is waiting for the key `KEY`: its `waitForRelease` was called (and,
   * with the suite's `queuedWaits`, at least `queued` waits are queued), or, for an adapter
   * without `waitForRelease`, an attempt of it was refused (it polls from then on).
   */
  untilWaiting(lock: ILock, queued?: number): Promise<void>;
  /** Resolves once no adapter call made through the provider is under way. */
  untilIdle(): Promise<void>;
};

type SetupOptions = {
  intercept?: Interceptor;
  provider?: Partial<Omit<LockProviderSettings, "adapter" | "namespace">>;
};

const KEY = "resource";
const ms = (milliseconds: number) => TimeSpan.fromMilliseconds(milliseconds);
const LONG = TimeSpan.fromSeconds(10);
const DAY_MS = 24 * 60 * 60 * 1_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An ITimeSpan that says what it is told, even what TimeSpan refuses to hold. */
const rawSpan = (milliseconds: number): ITimeSpan => ({ toMilliseconds: () => milliseconds });
const uniqueNamespace = () => namespaceUnder("hasp-provider-suite");

/** An interceptor failing the next `failures.left` releases, as a connection reset would. */
function failingReleases(failures: { left: number }): Interceptor {
  return (method, _args, call) => {
    if (method === "release" && failures.left > 0) {
      failures.left -= 1;
      return Promise.reject(new Error("connection reset"));
    }
    return call();
  };
}

/**
 * Routes every call of `adapter` through `interceptor`; keeps `waitForRelease` optional, and
 * `waitAcquires` and `waitsPastExpiry` as the adapter says.
 */
function instrument(adapter: ILockAdapter, interceptor: Interceptor): ILockAdapter {
  const through = <T>(method: AdapterMethod, args: unknown[], call: () => Promise<T>) =>
    interceptor(method, args, call) as Promise<T>;
  const instrumented: ILockAdapter = {
    ...(adapter.waitAcquires === undefined ? {} : { waitAcquires: adapter.waitAcquires }),
    ...(adapter.waitsPastExpiry === undefined ? {} : { waitsPastExpiry: adapter.waitsPastExpiry }),
    acquire: (key, lockId, ttl) =>
      through<LockAcquireResult>("acquire", [key, lockId, ttl], () =>
        adapter.acquire(key, lockId, ttl),
      ),
    release: (key, lockId) =>
      through<boolean>("release", [key, lockId], () => adapter.release(key, lockId)),
    forceRelease: (key) => through<boolean>("forceRelease", [key], () => adapter.forceRelease(key)),
    refresh: (key, lockId, ttl) =>
      through<boolean>("refresh", [key, lockId, ttl], () => adapter.refresh(key, lockId, ttl)),
    getState: (key) =>
      through<LockAdapterState | null>("getState", [key], () => adapter.getState(key)),
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

async function recordEvents(provider: LockProvider, into: RecordedEvent[]): Promise<void> {
  for (const name of Object.values(LOCK_EVENTS)) {
    await provider.addListener(name, (payload) => {
      into.push({ name, payload } as RecordedEvent);
    });
  }
}

function eventsOf<TName extends LockEventName>(
  events: readonly RecordedEvent[],
  name: TName,
  lockId?: string,
): LockEventMap[TName][] {
  return events
    .filter((event) => event.name === name)
    .map((event) => event.payload as LockEventMap[TName])
    .filter((payload) => lockId === undefined || payload.lockId === lockId);
}

/** When a hold of `ttl` ms may have ended by the lock's own reckoning, from its request. */
const holdEndMs = (ttl: number) => ttl - (ttl * CLOCK_DRIFT_FACTOR + CLOCK_DRIFT_MS);

/** A backend call that never answers, as from a stopped server. */
const never = () => new Promise<never>(() => {});

/** The remaining time of a held state in ms (`null`: never expires; `undefined`: free). */
function remainingMs(state: ILockState): number | null | undefined {
  return state.type === LOCK_STATE.EXPIRED
    ? undefined
    : (state.remainingTime?.toMilliseconds() ?? null);
}

function isStrictlyIncreasing(values: readonly number[]): boolean {
  return values.every((value, index) => index === 0 || value > (values[index - 1] ?? value));
}

function isLock(value: unknown): value is ILock {
  return typeof value === "object" && value !== null && "acquire" in value;
}

/**
 * The events `name` of `lockId` once `count` of them were heard. Events of one lock go out in
 * order, so once a lock's last expected event is heard, every earlier one of that lock has been
 * too: a test asserting that some event did not come waits for a later one of the same lock.
 */
function heard<TName extends LockEventName>(
  events: readonly RecordedEvent[],
  name: TName,
  lockId: string,
  count: number,
): Promise<LockEventMap[TName][]> {
  return eventually(`${count} ${name} event(s) of ${lockId}`, () => {
    const seen = eventsOf(events, name, lockId);
    if (seen.length < count) {
      throw new Error(`heard ${seen.length}`);
    }
    return seen;
  });
}

const RUN_VARIANTS = ["runOrFail", "runBlockingOrFail", "run", "runBlocking"] as const;
type RunVariant = (typeof RUN_VARIANTS)[number];

/** Runs `fn` through the variant and returns fn's value (unwrapping `[true, value]`). */
async function runThrough<TValue>(
  lock: ILock,
  variant: RunVariant,
  fn: LockRunnable<TValue>,
  settings: LockRunBlockingSettings = {},
): Promise<TValue> {
  const { time, interval, ...runSettings } = settings;
  const blocking = { ...runSettings, time: time ?? LONG, interval: interval ?? ms(50) };
  switch (variant) {
    case "runOrFail":
      return lock.runOrFail(fn, runSettings);
    case "runBlockingOrFail":
      return lock.runBlockingOrFail(fn, blocking);
    case "run": {
      const [acquired, value] = await lock.run(fn, runSettings);
      if (!acquired) throw new Error("run: not acquired");
      return value;
    }
    case "runBlocking": {
      const [acquired, value] = await lock.runBlocking(fn, blocking);
      if (!acquired) throw new Error("runBlocking: not acquired");
      return value;
    }
  }
}

/**
 * The behaviour of `LockProvider` and `Lock` on top of an adapter, specified once: identity,
 * exclusion and ownership, expiry, fencing, blocking, `run*`, events, backend failures and
 * validation. Every test makes its own provider under a unique namespace, so tests never share
 * keys and run concurrently. It uses real time, with TTLs of 100 ms and more and no tight upper
 * bounds on durations. Tests of the release signal are skipped when the adapter has no
 * `waitForRelease`.
 *
 * @example
 * lockProviderTestSuite({ createAdapter: () => new MemoryLockAdapter() });
 */
export function lockProviderTestSuite(settings: LockProviderTestSuiteSettings): void {
  const { createAdapter, destroyAdapter, queuedWaits } = settings;

  async function setup(context: TestContext, options: SetupOptions = {}): Promise<World> {
    const adapter = await createAdapter();
    const calls: AdapterMethod[] = [];
    const intercept: Interceptor = options.intercept ?? ((_method, _args, call) => call());
    /** Lock ids seen waiting (see World.untilWaiting). */
    const waiting = new Set<string>();
    let inFlight = 0;
    const providerAdapter = instrument(adapter, (method, args, call) => {
      calls.push(method);
      if (method === "waitForRelease") {
        const claim = args[3] as LockWaitClaim | undefined;
        // The adapter is given the lock's credential; tests know a lock by its public id.
        waiting.add(publicOwner(claim?.lockId ?? ""));
      }
      inFlight += 1;
      let answer: Promise<unknown>;
      try {
        answer = intercept(method, args, call);
      } catch (error) {
        answer = Promise.reject(error);
      }
      return answer.then(
        (value) => {
          inFlight -= 1;
          if (
            method === "acquire" &&
            (value as LockAcquireResult | undefined)?.acquired === false
          ) {
            if (adapter.waitForRelease === undefined) {
              waiting.add(publicOwner(args[1] as string));
            }
          }
          return value;
        },
        (error: unknown) => {
          inFlight -= 1;
          throw error;
        },
      );
    });
    const namespace = uniqueNamespace();
    const storedKeys = new Set<string>();
    const newProvider = (overrides: Partial<Omit<LockProviderSettings, "adapter">> = {}) => {
      const provider = new LockProvider({
        namespace,
        ...options.provider,
        ...overrides,
        adapter: providerAdapter,
      });
      const providerNamespace = overrides.namespace ?? namespace;
      // Every key this provider may have touched in a test: freed after it.
      storedKeys.add(providerNamespace.create(KEY).toString());
      return provider;
    };
    const provider = newProvider();
    const events: RecordedEvent[] = [];
    await recordEvents(provider, events);
    context.onTestFinished(async () => {
      await Promise.all([...storedKeys].map((key) => adapter.forceRelease(key).catch(() => {})));
      await destroyAdapter?.(adapter);
    });
    return {
      adapter,
      provider,
      namespace,
      events,
      calls,
      newProvider,
      create: (lockSettings, key = KEY) => {
        storedKeys.add(namespace.create(key).toString());
        return provider.create(key, lockSettings);
      },
      storedKey: (key = KEY) => namespace.create(key).toString(),
      untilWaiting: async (lock, queued = 1) => {
        await eventually(`${lock.id} waiting`, () => {
          if (!waiting.has(lock.id)) {
            throw new Error("not waiting yet");
          }
        });
        if (queuedWaits !== undefined && adapter.waitForRelease !== undefined) {
          const key = namespace.create(KEY).toString();
          await eventually(`${queued} wait(s) queued on ${key}`, async () => {
            const count = await queuedWaits(key);
            if (count < queued) {
              throw new Error(`${count} queued`);
            }
          });
        }
      },
      untilIdle: () =>
        eventually("no adapter call under way", () => {
          if (inFlight > 0) {
            throw new Error(`${inFlight} under way`);
          }
        }),
    };
  }

  describe.concurrent("lock provider conformance", () => {
    describe("a lock's identity", () => {
      test("key is the user key, ttl the TimeSpan, id given or random and unguessable", async (context) => {
        const { expect } = context;
        const { create, newProvider, storedKey } = await setup(context);
        const lock = create({ ttl: ms(1_500) }, "order:42");
        // daiso-core's IKey: the key as written, and as stored.
        expect(lock.key.get()).toBe("order:42");
        expect(lock.key.toString()).toBe(storedKey("order:42"));
        expect(lock.key.equals(create({}, "order:42").key)).toBe(true);
        expect(lock.key.equals(create({}, "order:43").key)).toBe(false);
        expect(lock.ttl).toBeInstanceOf(TimeSpan);
        expect(lock.ttl?.toMilliseconds()).toBe(1_500);
        expect(lock.fencingToken).toBeNull();
        expect(create({ lockId: "job-7" }).id).toBe("job-7");
        expect(create({ ttl: null }).ttl).toBeNull();

        const ids = Array.from({ length: 500 }, () => create().id);
        expect(new Set(ids).size).toBe(ids.length);
        for (const id of ids) {
          expect(UUID.test(id) || id.length >= 32, `id "${id}" is guessable`).toBe(true);
        }

        expect(create().ttl?.toMilliseconds()).toBe(5 * 60 * 1_000);
        expect(
          newProvider({ defaultTtl: ms(750) })
            .create(KEY)
            .ttl?.toMilliseconds(),
        ).toBe(750);
        expect(newProvider({ defaultTtl: null }).create(KEY).ttl).toBeNull();
      });

      test("methods are lazy: nothing reaches the adapter until awaited, and once only", async (context) => {
        const { expect } = context;
        const { create, calls } = await setup(context);
        const lock = create({ ttl: LONG });
        const acquiring = lock.acquire();
        const releasing = lock.release();
        const forcing = lock.forceRelease();
        await sleep(20);
        expect(calls).toEqual([]);
        expect(await acquiring).toBe(true);
        expect(await acquiring).toBe(true);
        expect(calls).toEqual(["acquire"]);
        expect((await lock.getState()).type).toBe(LOCK_STATE.ACQUIRED);
        // Never awaited, so never run.
        expect([releasing, forcing].every((task) => task instanceof Task)).toBe(true);
      });
    });

    describe("exclusion and ownership", () => {
      test("one owner at a time: of 20 concurrent acquirers exactly one wins, the others see its owner", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const locks = Array.from({ length: 20 }, () => create({ ttl: LONG }));
        const results = await Promise.all(locks.map((lock) => lock.acquire()));
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = locks[results.indexOf(true)];
        expect(winner).toBeDefined();
        for (const lock of locks) {
          const state = await lock.getState();
          if (lock === winner) {
            expect(state.type).toBe(LOCK_STATE.ACQUIRED);
          } else {
            expect(state).toMatchObject({ type: LOCK_STATE.UNAVAILABLE, owner: winner?.id });
          }
        }
      });

      test("a same-owner re-acquire of a live hold succeeds, keeps the token and restarts the TTL", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const lock = create({ ttl: ms(2_000) });
        expect(await lock.acquire()).toBe(true);
        const token = lock.fencingToken;
        await sleep(500);
        expect(await lock.acquire()).toBe(true);
        expect(lock.fencingToken).toBe(token);
        const state = await lock.getState();
        expect(state).toMatchObject({ type: LOCK_STATE.ACQUIRED, fencingToken: token });
        // Restarted: had it not been, at most 1.5 s would be left.
        expect(remainingMs(state)).toBeGreaterThan(1_500);
        expect(await lock.acquireOrFail()).toBe(token);
      });

      test("a same-owner re-acquire after expiry is a new hold: fresh TTL, new token", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const lock = create({ ttl: ms(500) });
        const first = await lock.acquireOrFail();
        await sleep(600);
        expect(await lock.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
        expect(await lock.acquire()).toBe(true);
        const second = lock.fencingToken;
        expect(second).toBeGreaterThan(first);
        const state = await lock.getState();
        expect(state).toMatchObject({ type: LOCK_STATE.ACQUIRED, fencingToken: second });
        expect(remainingMs(state)).toBeGreaterThan(0);
        expect(remainingMs(state)).toBeLessThanOrEqual(500);
      });

      test("a stranger's release and refresh return false and change nothing", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const owner = create({ ttl: ms(1_000) });
        const stranger = create({ ttl: ms(1_000) });
        await owner.acquire();
        const token = owner.fencingToken;
        expect(await stranger.release()).toBe(false);
        expect(await stranger.refresh(TimeSpan.fromHours(1))).toBe(false);
        expect(await stranger.refresh()).toBe(false);
        const state = await owner.getState();
        expect(state).toMatchObject({ type: LOCK_STATE.ACQUIRED, fencingToken: token });
        expect(remainingMs(state)).toBeLessThanOrEqual(1_000);
        expect(await stranger.getState()).toMatchObject({
          type: LOCK_STATE.UNAVAILABLE,
          owner: owner.id,
        });
      });

      test("a stale holder whose hold expired and was taken over cannot release, refresh or re-take it", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const stale = create({ ttl: ms(100) });
        const next = create({ ttl: LONG });
        await stale.acquire();
        await sleep(200);
        expect(await next.acquire()).toBe(true);
        const token = next.fencingToken;
        expect(await stale.release()).toBe(false);
        expect(await stale.refresh(TimeSpan.fromHours(1))).toBe(false);
        expect(await stale.acquire()).toBe(false);
        await expect(stale.releaseOrFail()).rejects.toBeInstanceOf(FailedReleaseLockError);
        const state = await next.getState();
        expect(state).toMatchObject({ type: LOCK_STATE.ACQUIRED, fencingToken: token });
        const left = remainingMs(state);
        expect(left).toBeGreaterThan(5_000);
        expect(left).toBeLessThanOrEqual(10_000);
        expect(await stale.getState()).toMatchObject({
          type: LOCK_STATE.UNAVAILABLE,
          owner: next.id,
        });
      });

      test("the …OrFail forms throw the matching error and acquireOrFail resolves the token", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const owner = create({ ttl: LONG }, "order:42");
        const other = create({ ttl: LONG }, "order:42");
        const token = await owner.acquireOrFail();
        expect(Number.isSafeInteger(token)).toBe(true);
        expect(token).toBe(owner.fencingToken);

        const acquireError = await other.acquireOrFail().then(
          () => null,
          (error: unknown) => error,
        );
        expect(acquireError).toBeInstanceOf(FailedAcquireLockError);
        expect(acquireError).toMatchObject({ key: "order:42", lockId: other.id, owner: owner.id });
        const releaseError = await other.releaseOrFail().then(
          () => null,
          (error: unknown) => error,
        );
        expect(releaseError).toBeInstanceOf(FailedReleaseLockError);
        expect(releaseError).toMatchObject({ key: "order:42", lockId: other.id });
        const refreshError = await other.refreshOrFail().then(
          () => null,
          (error: unknown) => error,
        );
        expect(refreshError).toBeInstanceOf(FailedRefreshLockError);
        expect(refreshError).toMatchObject({ key: "order:42", lockId: other.id });

        await expect(owner.refreshOrFail(ms(5_000))).resolves.toBeUndefined();
        await expect(owner.releaseOrFail()).resolves.toBeUndefined();
        await expect(owner.releaseOrFail()).rejects.toBeInstanceOf(FailedReleaseLockError);
        await expect(owner.refreshOrFail()).rejects.toBeInstanceOf(FailedRefreshLockError);
      });

      test("a failed acquire leaves the holder's TTL, and a never-expiring hold, untouched", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const holder = create({ ttl: ms(2_000) });
        await holder.acquire();
        await sleep(150);
        expect(await create({ ttl: TimeSpan.fromHours(1) }).acquire()).toBe(false);
        expect(await create({ ttl: null }).acquire()).toBe(false);
        const state = await holder.getState();
        expect(state.type).toBe(LOCK_STATE.ACQUIRED);
        expect(remainingMs(state)).toBeLessThanOrEqual(1_900);

        const forever = create({ ttl: null }, "forever");
        await forever.acquire();
        expect(await create({ ttl: ms(100) }, "forever").acquire()).toBe(false);
        await sleep(150);
        expect(await forever.getState()).toMatchObject({
          type: LOCK_STATE.ACQUIRED,
          remainingTime: null,
        });
      });

      test("forceRelease frees the key whoever holds it, and returns whether someone did", async (context) => {
        const { expect } = context;
        const { create, events } = await setup(context);
        const holder = create({ ttl: LONG });
        const admin = create();
        expect(await admin.forceRelease()).toBe(false);
        await holder.acquire();
        expect(await admin.forceRelease()).toBe(true);
        expect(await holder.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
        expect(await holder.release()).toBe(false);
        expect(await admin.forceRelease()).toBe(false);
        const forced = await heard(events, LOCK_EVENTS.FORCE_RELEASED, admin.id, 3);
        expect(forced.map((event) => event.hasReleased)).toEqual([false, true, false]);
        expect(eventsOf(events, LOCK_EVENTS.FORCE_RELEASED)).toHaveLength(3);
      });

      test("a lock with ttl: null never expires and cannot be refreshed", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const lock = create({ ttl: null });
        expect(await lock.acquire()).toBe(true);
        const token = lock.fencingToken;
        expect(await lock.refresh()).toBe(false);
        expect(await lock.refresh(ms(200))).toBe(false);
        await expect(lock.refreshOrFail()).rejects.toBeInstanceOf(FailedRefreshLockError);
        await sleep(250);
        expect(await lock.getState()).toEqual({
          type: LOCK_STATE.ACQUIRED,
          remainingTime: null,
          fencingToken: token,
        });
        expect(await create({ ttl: LONG }).getState()).toEqual({
          type: LOCK_STATE.UNAVAILABLE,
          owner: lock.id,
          remainingTime: null,
        });
        expect(await lock.release()).toBe(true);
        expect(await lock.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
      });

      test("getState reports EXPIRED, UNAVAILABLE with the owner, and ACQUIRED with the remaining time and token", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const owner = create({ ttl: LONG });
        const other = create({ ttl: LONG });
        expect(await owner.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
        await owner.acquire();
        const mine = await owner.getState();
        expect(Object.keys(mine).sort()).toEqual(["fencingToken", "remainingTime", "type"]);
        expect(mine).toMatchObject({ type: LOCK_STATE.ACQUIRED, fencingToken: owner.fencingToken });
        const left = mine.type === LOCK_STATE.ACQUIRED ? mine.remainingTime : null;
        expect(left).toBeInstanceOf(TimeSpan);
        expect(left?.toMilliseconds()).toBeGreaterThan(5_000);
        expect(left?.toMilliseconds()).toBeLessThanOrEqual(10_000);

        const theirs = await other.getState();
        expect(Object.keys(theirs).sort()).toEqual(["owner", "remainingTime", "type"]);
        expect(theirs).toMatchObject({ type: LOCK_STATE.UNAVAILABLE, owner: owner.id });
        const theirLeft = theirs.type === LOCK_STATE.UNAVAILABLE ? theirs.remainingTime : null;
        expect(theirLeft?.toMilliseconds()).toBeGreaterThan(5_000);
        expect(theirLeft?.toMilliseconds()).toBeLessThanOrEqual(10_000);

        await owner.release();
        expect(await owner.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
        expect(await other.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
      });

      test("getState reports the backend's remaining time and owner as they are", async (context) => {
        const { expect } = context;
        const backendSays: LockAdapterState = {
          owner: "someone",
          remainingTime: ms(12_345),
          fencingToken: 77,
        };
        const { create } = await setup(context, {
          intercept: async (method, _args, call) => (method === "getState" ? backendSays : call()),
        });
        const lock = create({ ttl: ms(500) });
        const state = await lock.getState();
        expect(state).toMatchObject({ type: LOCK_STATE.UNAVAILABLE, owner: "someone" });
        expect(remainingMs(state)).toBe(12_345);
        const mine = await create({ ttl: ms(500), lockId: "someone" }).getState();
        expect(mine).toMatchObject({ type: LOCK_STATE.ACQUIRED, fencingToken: 77 });
        expect(remainingMs(mine)).toBe(12_345);
      });

      test("refresh() without an argument restarts the lock's own TTL; with one, that TTL", async (context) => {
        const { expect } = context;
        const { create, events } = await setup(context);
        const lock = create({ ttl: LONG });
        await lock.acquire();
        expect(await lock.refresh(ms(300))).toBe(true);
        let state = await lock.getState();
        expect(remainingMs(state)).toBeLessThanOrEqual(300);
        expect(await lock.refresh()).toBe(true);
        state = await lock.getState();
        expect(remainingMs(state)).toBeGreaterThan(5_000);
        const refreshed = await heard(events, LOCK_EVENTS.REFRESHED, lock.id, 2);
        expect(refreshed.map((event) => event.ttl.toMilliseconds())).toEqual([300, 10_000]);
      });

      test("release is idempotent: a second release is false, harmless, and frees nobody else", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const lock = create({ ttl: LONG });
        await lock.acquire();
        expect(await lock.release()).toBe(true);
        expect(lock.fencingToken).toBeNull();
        expect(await lock.release()).toBe(false);
        expect(await lock.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
        const next = create({ ttl: LONG });
        await next.acquire();
        expect(await lock.release()).toBe(false);
        expect(await next.getState()).toMatchObject({ type: LOCK_STATE.ACQUIRED });
      });

      test("two locks given the same lockId share one hold", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const first = create({ ttl: LONG, lockId: "job-7" });
        const second = create({ ttl: LONG, lockId: "job-7" });
        await first.acquire();
        expect(await second.acquire()).toBe(true);
        expect(second.fencingToken).toBe(first.fencingToken);
        expect(await second.release()).toBe(true);
        expect(await first.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
      });

      test("providers with different namespaces never contend; with the same one they do", async (context) => {
        const { expect } = context;
        const { create, newProvider, namespace } = await setup(context);
        const lock = create({ ttl: LONG });
        await lock.acquire();
        const sameNamespace = newProvider().create(KEY, { ttl: LONG });
        expect(await sameNamespace.acquire()).toBe(false);
        const elsewhere = newProvider({ namespace: namespace.append("elsewhere") }).create(KEY, {
          ttl: LONG,
        });
        expect(await elsewhere.acquire()).toBe(true);
        expect(await elsewhere.getState()).toMatchObject({ type: LOCK_STATE.ACQUIRED });
        expect(await lock.getState()).toMatchObject({ type: LOCK_STATE.ACQUIRED });
      });

      test("a TTL of 30 days works: no timer fires at once, the remaining time is about 30 days", async (context) => {
        const { expect } = context;
        const { create, events } = await setup(context);
        const ttl = TimeSpan.fromDays(30);
        const lock = create({ ttl });
        await lock.acquire();
        await sleep(50);
        const state = await lock.getState();
        expect(state.type).toBe(LOCK_STATE.ACQUIRED);
        const left = remainingMs(state);
        expect(left).toBeGreaterThan(30 * DAY_MS - 60_000);
        expect(left).toBeLessThanOrEqual(30 * DAY_MS);
        expect(await lock.refresh()).toBe(true);

        const start = performance.now();
        expect(await create({ ttl }).acquireBlocking({ time: ms(150), interval: ms(50) })).toBe(
          false,
        );
        expect(performance.now() - start).toBeGreaterThanOrEqual(140);

        await lock.release();
        const value = await lock.runOrFail(async () => {
          await sleep(150);
          return (await lock.getState()).type;
        });
        expect(value).toBe(LOCK_STATE.ACQUIRED);
        // The run's release is the lock's last event: every one before it has been heard.
        await heard(events, LOCK_EVENTS.RELEASED, lock.id, 2);
        // Only the manual refresh above: the run's auto-refresh timer did not fire early.
        expect(eventsOf(events, LOCK_EVENTS.REFRESHED, lock.id)).toHaveLength(1);
        expect(eventsOf(events, LOCK_EVENTS.FAILED_REFRESH)).toHaveLength(0);
      });

      test("the longest duration, 100 years, works as a TTL, a refresh and a blocking time", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const longest = ms(MAX_DURATION_MS);
        const lock = create({ ttl: longest });
        expect(await lock.acquire()).toBe(true);
        const state = await lock.getState();
        expect(state).toMatchObject({ type: LOCK_STATE.ACQUIRED, fencingToken: lock.fencingToken });
        expect(remainingMs(state)).toBeGreaterThan(MAX_DURATION_MS - 60_000);
        expect(remainingMs(state)).toBeLessThanOrEqual(MAX_DURATION_MS);
        expect(await lock.refresh(longest)).toBe(true);
        expect(remainingMs(await lock.getState())).toBeGreaterThan(MAX_DURATION_MS - 60_000);

        // A waiter of 100 years on a hold that never expires, with a claim of 100 years: it
        // gets the key at the release (whether it queued before it or not).
        const forever = create({ ttl: null }, "forever");
        await forever.acquire();
        const waiter = create({ ttl: longest }, "forever");
        const waiting = waiter.acquireBlocking({ time: longest, interval: ms(20) });
        const acquired = waiting.then((value) => value);
        expect(await forever.release()).toBe(true);
        expect(await acquired).toBe(true);
        expect(remainingMs(await waiter.getState())).toBeGreaterThan(MAX_DURATION_MS - 60_000);
      });
    });

    describe("fencing tokens", () => {
      test("the token is on the lock after acquire, in getState and in the ACQUIRED event", async (context) => {
        const { expect } = context;
        const { create, events } = await setup(context);
        const lock = create({ ttl: LONG });
        expect(await lock.acquire()).toBe(true);
        const token = lock.fencingToken;
        expect(Number.isSafeInteger(token)).toBe(true);
        expect(await lock.getState()).toMatchObject({ fencingToken: token });
        await eventually("ACQUIRED", () =>
          expect(eventsOf(events, LOCK_EVENTS.ACQUIRED, lock.id)).toEqual([
            expect.objectContaining({ fencingToken: token }),
          ]),
        );
        expect(await lock.acquireOrFail()).toBe(token);
      });

      test("tokens strictly increase across release, expiry, force-release and take-over", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const a = create({ ttl: LONG });
        const b = create({ ttl: ms(100) });
        const tokens: number[] = [];
        tokens.push(await a.acquireOrFail());
        await a.release();
        tokens.push(await a.acquireOrFail());
        await b.forceRelease();
        tokens.push(await b.acquireOrFail());
        await sleep(200);
        tokens.push(await a.acquireOrFail());
        await a.release();
        expect(await b.acquire()).toBe(true);
        tokens.push(b.fencingToken ?? Number.NaN);
        for (const token of tokens) {
          expect(Number.isSafeInteger(token)).toBe(true);
        }
        expect(isStrictlyIncreasing(tokens), tokens.join(", ")).toBe(true);
      });
    });

    describe("blocking acquire", () => {
      test("gets the lock soon after the holder releases, well before its time runs out", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const holder = create({ ttl: LONG });
        const waiter = create({ ttl: LONG });
        await holder.acquire();
        const start = performance.now();
        setTimeout(() => void holder.release().catch(() => {}), 100);
        expect(await waiter.acquireBlocking({ time: LONG, interval: ms(50) })).toBe(true);
        const elapsed = performance.now() - start;
        expect(elapsed).toBeGreaterThanOrEqual(90);
        expect(elapsed).toBeLessThan(LONG.toMilliseconds() / 2);
        expect(await waiter.getState()).toMatchObject({ type: LOCK_STATE.ACQUIRED });
      });

      test("a waiter handed the key after waiting longer than its TTL has its whole lease: its run's signal stays quiet", async (context) => {
        const { expect } = context;
        const { create, untilWaiting } = await setup(context);
        const ttl = ms(600);
        let stop!: () => void;
        const stopped = new Promise<void>((resolve) => {
          stop = resolve;
        });
        let holding = false;
        // The holder's run refreshes its 600 ms TTL every 200 ms, for as long as the test wants.
        const held = create({ ttl })
          .run(() => {
            holding = true;
            return stopped;
          })
          .then((result) => result);
        await eventually("the holder runs", () => expect(holding).toBe(true));
        const waiter = create({ ttl });
        const served = waiter
          .runBlocking(
            async ({ signal }) => {
              const atStart = signal.aborted;
              // Longer than the waiter's TTL less the drift margin: the run must refresh it.
              await sleep(700);
              return [atStart, signal.aborted];
            },
            { time: LONG },
          )
          .then((result) => result);
        await untilWaiting(waiter);
        // Time passes (this bounds nothing): the wait lasts past two of the waiter's TTLs.
        await sleep(1_500);
        stop();
        expect(await held).toEqual([true, undefined]);
        expect(await served).toEqual([true, [false, false]]);
      });

      test("gives up when its time runs out: false, or FailedAcquireLockError, and is never granted later", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const holder = create({ ttl: LONG });
        const waiter = create({ ttl: LONG });
        await holder.acquire();
        let start = performance.now();
        expect(await waiter.acquireBlocking({ time: ms(200), interval: ms(50) })).toBe(false);
        let elapsed = performance.now() - start;
        expect(elapsed).toBeGreaterThanOrEqual(190);
        expect(elapsed).toBeLessThan(3_000);

        start = performance.now();
        const error = await waiter.acquireBlockingOrFail({ time: ms(200), interval: ms(50) }).then(
          () => null,
          (thrown: unknown) => thrown,
        );
        elapsed = performance.now() - start;
        expect(error).toBeInstanceOf(FailedAcquireLockError);
        expect(error).toMatchObject({ owner: holder.id, lockId: waiter.id });
        expect(elapsed).toBeGreaterThanOrEqual(190);

        expect(await holder.getState()).toMatchObject({ type: LOCK_STATE.ACQUIRED });
        await holder.release();
        await sleep(150);
        expect(await waiter.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
      });

      test("time 0 tries exactly once; without settings the provider's defaults apply", async (context) => {
        const { expect } = context;
        const { create, newProvider, calls } = await setup(context);
        const holder = create({ ttl: LONG });
        await holder.acquire();
        calls.length = 0;
        expect(await create().acquireBlocking({ time: TimeSpan.ZERO })).toBe(false);
        expect(calls).toEqual(["acquire"]);

        const provider = newProvider({
          defaultBlockingTime: ms(200),
          defaultBlockingInterval: ms(50),
        });
        const start = performance.now();
        expect(await provider.create(KEY).acquireBlocking()).toBe(false);
        const elapsed = performance.now() - start;
        expect(elapsed).toBeGreaterThanOrEqual(190);
        expect(elapsed).toBeLessThan(5_000);
      });

      test("never sleeps past the holder's expiry, even with a long interval", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const holder = create({ ttl: ms(150) });
        const waiter = create({ ttl: LONG });
        const holderToken = await holder.acquireOrFail();
        const start = performance.now();
        expect(await waiter.acquireBlocking({ time: ms(5_000), interval: ms(10_000) })).toBe(true);
        expect(performance.now() - start).toBeLessThan(3_000);
        expect(waiter.fencingToken).toBeGreaterThan(holderToken);
      });

      test("is abortable through the task's signal, and an aborted waiter is never granted the lock", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const holder = create({ ttl: LONG });
        const waiter = create({ ttl: LONG });
        await holder.acquire();
        const controller = new AbortController();
        const reason = new Error("caller gave up");
        setTimeout(() => controller.abort(reason), 100);
        const start = performance.now();
        await expect(
          waiter
            .acquireBlocking({ time: ms(5_000), interval: ms(50) })
            .withSignal(controller.signal),
        ).rejects.toBe(reason);
        expect(performance.now() - start).toBeLessThan(2_500);
        expect(waiter.fencingToken).toBeNull();
        await holder.release();
        await sleep(150);
        expect(await waiter.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
        expect(await create({ ttl: LONG }).acquire()).toBe(true);
      });

      test("is abortable with the timeout middleware, and a timed-out waiter is never granted the lock", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const holder = create({ ttl: LONG });
        const waiter = create({ ttl: LONG });
        await holder.acquire();
        const start = performance.now();
        await expect(
          waiter
            .acquireBlockingOrFail({ time: ms(5_000), interval: ms(50) })
            .pipe(timeout({ waitTime: ms(100) })),
        ).rejects.toBeInstanceOf(TimeoutError);
        await expect(
          waiter
            .acquireBlocking({ time: ms(5_000), interval: ms(50) })
            .pipe(timeout({ waitTime: ms(100) })),
        ).rejects.toBeInstanceOf(TimeoutError);
        expect(performance.now() - start).toBeLessThan(3_000);
        await holder.release();
        await sleep(150);
        expect(await waiter.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
      });

      // An abort is the caller giving up: no UNEXPECTED_ERROR (operation "waitForRelease").
      test("an aborted wait is not reported as a backend failure", async (context) => {
        const { expect } = context;
        const { create, adapter, events } = await setup(context);
        if (adapter.waitForRelease === undefined) {
          context.skip("the adapter has no waitForRelease");
        }
        const holder = create({ ttl: LONG });
        const waiter = create({ ttl: LONG });
        await holder.acquire();
        const controller = new AbortController();
        setTimeout(() => controller.abort(new Error("caller gave up")), 100);
        await expect(
          waiter.acquireBlocking({ time: ms(5_000) }).withSignal(controller.signal),
        ).rejects.toThrow("caller gave up");
        await expect(
          waiter.acquireBlocking({ time: ms(5_000) }).pipe(timeout({ waitTime: ms(100) })),
        ).rejects.toBeInstanceOf(TimeoutError);
        // A later event of the waiter: an UNEXPECTED_ERROR of the waits would have come before.
        expect(await waiter.release()).toBe(false);
        await heard(events, LOCK_EVENTS.FAILED_RELEASE, waiter.id, 1);
        expect(eventsOf(events, LOCK_EVENTS.UNEXPECTED_ERROR)).toEqual([]);
      });

      // A release landing between a failed attempt and waitForRelease must not be missed.
      test("a release that lands between a failed attempt and the wait still wakes the waiter", async (context) => {
        const { expect } = context;
        let releaseOnce = true;
        let adapter: ILockAdapter | undefined;
        const world = await setup(context, {
          intercept: async (method, args, call) => {
            const result = await call();
            if (method === "acquire" && releaseOnce && !(result as LockAcquireResult).acquired) {
              // The holder releases just after the waiter's attempt was answered.
              releaseOnce = false;
              await adapter?.release(args[0] as string, (result as { owner: string }).owner);
            }
            return result;
          },
        });
        adapter = world.adapter;
        if (adapter.waitForRelease === undefined) {
          context.skip("the adapter has no waitForRelease (polling cannot miss a release)");
        }
        if (adapter.waitAcquires === true) {
          context.skip(
            "the adapter's attempt and wait are one step (waitAcquires): nothing lands between",
          );
        }
        const holder = world.create({ ttl: LONG });
        const waiter = world.create({ ttl: LONG });
        await holder.acquire();
        const start = performance.now();
        expect(await waiter.acquireBlocking({ time: LONG, interval: ms(50) })).toBe(true);
        // Woken by the release, not at the end of its time.
        expect(performance.now() - start).toBeLessThan(LONG.toMilliseconds() / 2);
      });

      test("an acquire aborted while its request is in flight releases the hold granted late", async (context) => {
        const { expect } = context;
        const { create, adapter, storedKey, events, untilIdle } = await setup(context, {
          intercept: async (method, _args, call) => {
            if (method === "acquire") {
              // The request is on the wire: the backend grants it after the caller gave up.
              await sleep(200);
            }
            if (method === "waitForRelease") {
              // A wait that acquires (waitAcquires) takes the free key; its answer comes late.
              const answer = await call();
              await sleep(200);
              return answer;
            }
            return call();
          },
        });
        const plain = create({ ttl: LONG });
        const blocking = create({ ttl: LONG });
        const controller = new AbortController();
        setTimeout(() => controller.abort(new Error("gave up")), 50);
        await expect(plain.acquire().withSignal(controller.signal)).rejects.toThrow("gave up");
        await expect(
          blocking.acquireBlocking({ time: ms(5_000) }).pipe(timeout({ waitTime: ms(50) })),
        ).rejects.toBeInstanceOf(TimeoutError);
        // Both late grants have come, and the releases they caused have been answered.
        await untilIdle();
        expect(await adapter.getState(storedKey())).toBeNull();
        expect(plain.fencingToken).toBeNull();
        expect(blocking.fencingToken).toBeNull();
        // Later events of both locks: an ACQUIRED of a late grant would have come before.
        await Promise.all([plain.release(), blocking.release()]);
        await heard(events, LOCK_EVENTS.FAILED_RELEASE, plain.id, 1);
        await heard(events, LOCK_EVENTS.FAILED_RELEASE, blocking.id, 1);
        expect(eventsOf(events, LOCK_EVENTS.ACQUIRED)).toEqual([]);
      });

      test("a waiter given the key at the release holds it with a new token, its own TTL and an ACQUIRED event", async (context) => {
        const { expect } = context;
        const { create, events, untilWaiting } = await setup(context);
        const holder = create({ ttl: LONG });
        const waiter = create({ ttl: LONG });
        const holderToken = await holder.acquireOrFail();
        const waiting = waiter.acquireBlockingOrFail({ time: LONG, interval: ms(20) });
        const token = waiting.then((value) => value);
        await untilWaiting(waiter);
        expect(await holder.release()).toBe(true);
        expect(await token).toBeGreaterThan(holderToken);
        expect(waiter.fencingToken).toBe(await token);
        const state = await waiter.getState();
        expect(state).toMatchObject({ type: LOCK_STATE.ACQUIRED, fencingToken: await token });
        expect(remainingMs(state)).toBeGreaterThan(5_000);
        expect(remainingMs(state)).toBeLessThanOrEqual(10_000);
        // Its release comes after its ACQUIRED: no second ACQUIRED can be missed.
        expect(await waiter.release()).toBe(true);
        await heard(events, LOCK_EVENTS.RELEASED, waiter.id, 1);
        expect(
          eventsOf(events, LOCK_EVENTS.ACQUIRED, waiter.id).map((event) => event.fencingToken),
        ).toEqual([await token]);
      });

      // With an adapter that hands the key over at the release, the hand-off lands before the
      // waiter runs again: it must give the key back, to the next waiter, not keep it.
      test("a waiter that gives up just as the key is released to it leaves it to the next waiter", async (context) => {
        const { expect } = context;
        const { create, untilWaiting } = await setup(context);
        const holder = create({ ttl: LONG });
        const quitter = create({ ttl: LONG });
        const next = create({ ttl: LONG });
        await holder.acquire();
        const controller = new AbortController();
        const reason = new Error("gave up");
        const quitting = quitter
          .acquireBlocking({ time: ms(5_000), interval: ms(20) })
          .withSignal(controller.signal)
          .then(
            (acquired) => acquired,
            (error: unknown) => error,
          );
        await untilWaiting(quitter, 1);
        const nextAcquired = next
          .acquireBlocking({ time: ms(5_000), interval: ms(20) })
          .then((acquired) => acquired);
        await untilWaiting(next, 2);
        // Started (not awaited) and aborted in the same step.
        const releasing = holder.release().then((released) => released);
        controller.abort(reason);
        expect(await releasing).toBe(true);
        expect(await quitting).toBe(reason);
        expect(await nextAcquired).toBe(true);
        expect(quitter.fencingToken).toBeNull();
        expect(await quitter.getState()).toMatchObject({
          type: LOCK_STATE.UNAVAILABLE,
          owner: next.id,
        });
      });

      test("contending workers take turns: no lost update, tokens increase in turn order", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        let counter = 0;
        const tokens: number[] = [];
        const worker = async () => {
          for (let i = 0; i < 3; i++) {
            await create({ ttl: ms(2_000) }).runBlockingOrFail(
              async ({ fencingToken }) => {
                tokens.push(fencingToken);
                const seen = counter;
                await sleep(2);
                counter = seen + 1;
              },
              { time: ms(10_000), interval: ms(10) },
            );
          }
        };
        await Promise.all(Array.from({ length: 6 }, worker));
        expect(counter).toBe(18);
        expect(isStrictlyIncreasing(tokens), tokens.join(", ")).toBe(true);
      });
    });

    describe("run, runOrFail, runBlocking, runBlockingOrFail", () => {
      for (const variant of RUN_VARIANTS) {
        test(`${variant}: a sync fn, an async fn and a Task run while held, get the signal and token, and the lock is released after`, async (context) => {
          const { expect } = context;
          const { create } = await setup(context);
          const lock = create({ ttl: LONG });
          const contexts: Array<{ signal: AbortSignal; fencingToken: number }> = [];

          const syncValue = await runThrough<string>(lock, variant, (runContext) => {
            contexts.push(runContext);
            return "sync";
          });
          expect(syncValue).toBe("sync");
          expect(await lock.getState()).toEqual({ type: LOCK_STATE.EXPIRED });

          const asyncValue = await runThrough<string>(lock, variant, async (runContext) => {
            contexts.push(runContext);
            await sleep(10);
            const state = await lock.getState();
            expect(state).toMatchObject({
              type: LOCK_STATE.ACQUIRED,
              fencingToken: runContext.fencingToken,
            });
            return "async";
          });
          expect(asyncValue).toBe("async");
          expect(await lock.getState()).toEqual({ type: LOCK_STATE.EXPIRED });

          let taskSignal: AbortSignal | undefined;
          let taskState: unknown;
          const taskValue = await runThrough<string>(
            lock,
            variant,
            new Task(async (signal) => {
              taskSignal = signal;
              taskState = await lock.getState();
              return "task";
            }),
          );
          expect(taskValue).toBe("task");
          expect(taskState).toMatchObject({ type: LOCK_STATE.ACQUIRED });
          expect(taskSignal).toBeInstanceOf(AbortSignal);
          expect(await lock.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
          expect(lock.fencingToken).toBeNull();

          expect(contexts).toHaveLength(2);
          for (const runContext of contexts) {
            expect(runContext.signal).toBeInstanceOf(AbortSignal);
            expect(runContext.signal.aborted).toBe(false);
            expect(Number.isSafeInteger(runContext.fencingToken)).toBe(true);
          }
          expect(isStrictlyIncreasing(contexts.map((runContext) => runContext.fencingToken))).toBe(
            true,
          );
        });

        test(`${variant}: the fn's error surfaces unchanged and the lock is still released`, async (context) => {
          const { expect } = context;
          const { create, events } = await setup(context);
          const lock = create({ ttl: LONG });
          const thrown = new Error("sync failure");
          const rejected = new Error("async failure");
          const taskError = new Error("task failure");
          await expect(
            runThrough(lock, variant, () => {
              throw thrown;
            }),
          ).rejects.toBe(thrown);
          expect(await lock.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
          await expect(
            runThrough(lock, variant, async () => {
              await sleep(5);
              throw rejected;
            }),
          ).rejects.toBe(rejected);
          expect(await lock.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
          await expect(runThrough(lock, variant, Task.reject(taskError))).rejects.toBe(taskError);
          expect(await lock.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
          await heard(events, LOCK_EVENTS.RELEASED, lock.id, 3);
          expect(eventsOf(events, LOCK_EVENTS.FAILED_RELEASE)).toEqual([]);
        });
      }

      test("run resolves [false, null] and runOrFail throws when held; fn never runs; the holder's hold is untouched", async (context) => {
        const { expect } = context;
        const { create, calls } = await setup(context);
        const holder = create({ ttl: ms(5_000) });
        await holder.acquire();
        const token = holder.fencingToken;
        const fn = vi.fn(() => "ran");
        calls.length = 0;
        const other = create({ ttl: LONG });
        expect(await other.run(fn)).toEqual([false, null]);
        await expect(other.runOrFail(fn)).rejects.toBeInstanceOf(FailedAcquireLockError);
        expect(fn).not.toHaveBeenCalled();
        // Only acquires: nothing was released on the holder's behalf or the loser's.
        expect(calls).toEqual(["acquire", "acquire"]);
        const state = await holder.getState();
        expect(state).toMatchObject({ type: LOCK_STATE.ACQUIRED, fencingToken: token });
        expect(remainingMs(state)).toBeLessThanOrEqual(5_000);
      });

      test("runBlocking resolves [false, null] and runBlockingOrFail throws when time runs out; fn never runs", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const holder = create({ ttl: LONG });
        await holder.acquire();
        const fn = vi.fn(() => "ran");
        const other = create({ ttl: LONG });
        const settings = { time: ms(150), interval: ms(50) };
        expect(await other.runBlocking(fn, settings)).toEqual([false, null]);
        await expect(other.runBlockingOrFail(fn, settings)).rejects.toBeInstanceOf(
          FailedAcquireLockError,
        );
        expect(fn).not.toHaveBeenCalled();
        expect(await holder.getState()).toMatchObject({
          type: LOCK_STATE.ACQUIRED,
          fencingToken: holder.fencingToken,
        });
      });

      test("runBlocking waits for the holder, then runs", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const holder = create({ ttl: LONG });
        await holder.acquire();
        setTimeout(() => void holder.release().catch(() => {}), 100);
        const result = await create({ ttl: LONG }).runBlocking(() => "after the holder", {
          time: ms(5_000),
          interval: ms(50),
        });
        expect(result).toEqual([true, "after the holder"]);
      });

      // A TTL of 900 ms is refreshed every 300 ms: only a process stalled for 600 ms loses it.
      test("auto-refresh keeps a 900 ms lock alive through a 1.5 s fn", async (context) => {
        const { expect } = context;
        const { create, events } = await setup(context);
        const lock = create({ ttl: ms(900) });
        const competitor = create({ ttl: LONG });
        const seen = await lock.runOrFail(async ({ signal }) => {
          const attempts: boolean[] = [];
          for (let i = 0; i < 5; i++) {
            await sleep(300);
            attempts.push(await competitor.acquire());
          }
          return { attempts, state: await lock.getState(), aborted: signal.aborted };
        });
        expect(seen.attempts).toEqual([false, false, false, false, false]);
        expect(seen.state).toMatchObject({ type: LOCK_STATE.ACQUIRED });
        expect(seen.aborted).toBe(false);
        await heard(events, LOCK_EVENTS.RELEASED, lock.id, 1);
        expect(eventsOf(events, LOCK_EVENTS.REFRESHED, lock.id).length).toBeGreaterThanOrEqual(2);
        expect(await lock.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
      });

      test("autoRefresh: false lets the lock expire while fn runs, and the late release frees nobody else", async (context) => {
        const { expect } = context;
        const { create, events } = await setup(context);
        const lock = create({ ttl: ms(150) });
        const competitor = create({ ttl: LONG });
        const value = await lock.runOrFail(
          async () => {
            await sleep(300);
            return competitor.acquire();
          },
          { autoRefresh: false },
        );
        expect(value).toBe(true);
        expect(await competitor.getState()).toMatchObject({ type: LOCK_STATE.ACQUIRED });
        // The run's release is the lock's last event.
        await heard(events, LOCK_EVENTS.FAILED_RELEASE, lock.id, 1);
        expect(eventsOf(events, LOCK_EVENTS.REFRESHED)).toEqual([]);
      });

      test("a lock lost mid-run aborts fn's signal with LockLostError and sends FAILED_REFRESH; a completed fn still returns", async (context) => {
        const { expect } = context;
        const { create, events } = await setup(context);
        const lock = create({ ttl: ms(300) });
        const usurper = create({ ttl: LONG });
        let reason: unknown;
        const value = await lock.runOrFail(async ({ signal }) => {
          await sleep(30);
          await usurper.forceRelease();
          await usurper.acquire();
          expect(await abortedWithin(signal)).toBe(true);
          reason = signal.reason;
          return "completed";
        });
        expect(value).toBe("completed");
        expect(reason).toBeInstanceOf(LockLostError);
        expect(reason).toMatchObject({ key: KEY, lockId: lock.id });
        // The run's release, refused, is the lock's last event.
        await heard(events, LOCK_EVENTS.FAILED_RELEASE, lock.id, 1);
        expect(eventsOf(events, LOCK_EVENTS.FAILED_REFRESH, lock.id)).toHaveLength(1);
        expect(await usurper.getState()).toMatchObject({
          type: LOCK_STATE.ACQUIRED,
          fencingToken: usurper.fencingToken,
        });

        // A Task that honours its signal stops with the LockLostError.
        await usurper.release();
        const task = new Task<string>(async (signal) => {
          await sleep(30);
          await usurper.forceRelease();
          await sleep(3_000, undefined, { signal });
          return "not reached";
        });
        await expect(lock.runOrFail(task)).rejects.toBeInstanceOf(LockLostError);
      });

      test("autoRefresh.maxHoldTime caps the refreshing: the hold then runs out and fn's signal aborts", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        await unlessStalled(async () => {
          const lock = create({ ttl: ms(150) });
          const start = performance.now();
          const result = await lock.runOrFail(
            async ({ signal }) => {
              const aborted = await abortedWithin(signal, 4_000);
              return { aborted, reason: signal.reason, at: performance.now() - start };
            },
            { autoRefresh: { maxHoldTime: ms(300) } },
          );
          expect(result.aborted).toBe(true);
          expect(result.reason).toBeInstanceOf(LockLostError);
          if (result.at < 300) {
            // The signal aborts early only when a refresh came after the hold may have ended.
            stalled(`fn's signal aborted at ${result.at.toFixed(0)} ms, before maxHoldTime`);
          }
          expect(result.at).toBeLessThan(3_000);
          expect(await lock.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
        });
      });

      test("a refresh that never answers does not keep fn running: its signal aborts with LockLostError when the hold may have ended", async (context) => {
        const { expect } = context;
        // A backend that stops answering (a client queueing commands while it reconnects).
        const { create } = await setup(context, {
          intercept: (method, _args, call) => (method === "refresh" ? never() : call()),
        });
        const ttl = 300;
        const lock = create({ ttl: ms(ttl) });
        const start = performance.now();
        const result = await lock.runOrFail(async ({ signal }) => {
          const aborted = await abortedWithin(signal);
          return { aborted, reason: signal.reason, at: performance.now() - start };
        });
        expect(result.aborted).toBe(true);
        expect(result.reason).toBeInstanceOf(LockLostError);
        // The TTL from before the acquire was sent, less the drift margin: not sooner, and
        // not long after (a refresh was under way since a third of the TTL).
        expect(result.at).toBeGreaterThanOrEqual(holdEndMs(ttl));
        expect(result.at).toBeLessThan(ttl + 1_000);
      });

      test("autoRefresh: false aborts fn's signal with LockLostError when the hold may have ended", async (context) => {
        const { expect } = context;
        const { create, events } = await setup(context);
        const ttl = 200;
        const lock = create({ ttl: ms(ttl) });
        const start = performance.now();
        const result = await lock.runOrFail(
          async ({ signal }) => {
            const aborted = await abortedWithin(signal);
            return { aborted, reason: signal.reason, at: performance.now() - start };
          },
          { autoRefresh: false },
        );
        expect(result.aborted).toBe(true);
        expect(result.reason).toBeInstanceOf(LockLostError);
        expect(result.at).toBeGreaterThanOrEqual(holdEndMs(ttl));
        expect(result.at).toBeLessThan(ttl + 1_000);
        expect(eventsOf(events, LOCK_EVENTS.REFRESHED)).toEqual([]);
      });

      test("the hold's expiry is measured from before the acquire request was sent", async (context) => {
        const { expect } = context;
        const { create } = await setup(context, {
          intercept: async (method, _args, call) => {
            const result = await call();
            if (method === "acquire") {
              // A slow answer: the backend's TTL has been running all along.
              await sleep(1_000);
            }
            return result;
          },
        });
        const lock = create({ ttl: ms(1_000) });
        const start = performance.now();
        const abortedAt = await lock.runOrFail(
          async ({ signal }) => {
            await abortedWithin(signal);
            return performance.now() - start;
          },
          { autoRefresh: { interval: ms(20), maxHoldTime: ms(1) } },
        );
        // At ~1 s, when the backend lets go; measured from the answer it would be ~2 s.
        expect(abortedAt).toBeLessThan(1_800);
      });

      test("a run cut short by timeout aborts fn's signal and releases the lock", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const lock = create({ ttl: LONG });
        let fnSignal: AbortSignal | undefined;
        await expect(
          lock
            .runOrFail(async ({ signal }) => {
              fnSignal = signal;
              await sleep(3_000, undefined, { signal });
            })
            .pipe(timeout({ waitTime: ms(100) })),
        ).rejects.toBeInstanceOf(TimeoutError);
        expect(fnSignal?.aborted).toBe(true);
        await eventually("the run's release", async () =>
          expect(await lock.getState()).toEqual({ type: LOCK_STATE.EXPIRED }),
        );
      });

      test("a failing release never turns a completed run, or fn's own error, into another failure", async (context) => {
        const { expect } = context;
        const driverError = new Error("connection reset");
        const { create, events } = await setup(context, {
          intercept: (method, _args, call) =>
            method === "release" ? Promise.reject(driverError) : call(),
        });
        const lock = create({ ttl: LONG });
        expect(await lock.runOrFail(() => "done")).toBe("done");
        await lock.forceRelease();
        expect(await lock.run(() => "done")).toEqual([true, "done"]);
        await lock.forceRelease();
        const fnError = new Error("fn failed");
        await expect(
          lock.runOrFail(() => {
            throw fnError;
          }),
        ).rejects.toBe(fnError);
        await heard(events, LOCK_EVENTS.UNEXPECTED_ERROR, lock.id, 3);
        expect(
          eventsOf(events, LOCK_EVENTS.UNEXPECTED_ERROR).every(
            (event) => event.operation === "release" && event.error === driverError,
          ),
        ).toBe(true);
      });

      test("a run's release that failed is tried again in the background: the key is free long before its TTL", async (context) => {
        const { expect } = context;
        const { create, newProvider, events } = await setup(context, {
          intercept: failingReleases({ left: 1 }),
        });
        const ttl = TimeSpan.fromMinutes(1);
        const lock = create({ ttl });
        expect(await lock.runOrFail(() => "done")).toBe("done");
        // The key is free again within the retries' pauses, long before its TTL.
        expect(PATIENCE_MS).toBeLessThan(ttl.toMilliseconds() / 2);
        const other = newProvider().create(KEY, { ttl: LONG });
        await eventually("the key freed by the retried release", async () =>
          expect(await other.acquire()).toBe(true),
        );
        expect(await other.release()).toBe(true);
        await heard(events, LOCK_EVENTS.RELEASED, lock.id, 1);
        expect(eventsOf(events, LOCK_EVENTS.UNEXPECTED_ERROR, lock.id)).toHaveLength(1);
      });

      test("the lock's next acquire waits for that retry, which never frees the new hold", async (context) => {
        const { expect } = context;
        const failures = { left: 2 };
        const { create } = await setup(context, { intercept: failingReleases(failures) });
        const lock = create({ ttl: LONG });
        const held = () => sleep(700).then(() => lock.getState());
        // Right after a run whose release failed, while it is being retried: the new hold
        // must outlive the retries, through either way of acquiring.
        expect(await lock.runOrFail(() => "first")).toBe("first");
        expect(await lock.runBlocking(held, { time: LONG })).toEqual([
          true,
          expect.objectContaining({ type: LOCK_STATE.ACQUIRED }),
        ]);
        failures.left = 2;
        expect(await lock.runOrFail(() => "second")).toBe("second");
        expect(await lock.run(held)).toEqual([
          true,
          expect.objectContaining({ type: LOCK_STATE.ACQUIRED }),
        ]);
      });

      test("a passing backend failure of an auto-refresh does not lose the lock", async (context) => {
        const { expect } = context;
        let failures = 1;
        const { create, events } = await setup(context, {
          intercept: (method, _args, call) => {
            if (method === "refresh" && failures > 0) {
              failures -= 1;
              return Promise.reject(new Error("timeout talking to the backend"));
            }
            return call();
          },
        });
        // Refreshed every 500 ms; the failed refresh is tried again before the 1.5 s run out.
        const lock = create({ ttl: ms(1_500) });
        const result = await lock.runOrFail(async ({ signal }) => {
          await sleep(1_200);
          return { aborted: signal.aborted, state: await lock.getState() };
        });
        expect(result.aborted).toBe(false);
        expect(result.state).toMatchObject({ type: LOCK_STATE.ACQUIRED });
        // The run's release is the lock's last event.
        await heard(events, LOCK_EVENTS.RELEASED, lock.id, 1);
        expect(eventsOf(events, LOCK_EVENTS.UNEXPECTED_ERROR, lock.id)).toEqual([
          expect.objectContaining({ operation: "refresh" }),
        ]);
      });
    });

    describe("events", () => {
      test("each event carries the lock, the user key, the lock id, the time and its own fields", async (context) => {
        const { expect } = context;
        const { create, events } = await setup(context);
        const owner = create({ ttl: ms(2_000) }, KEY);
        const other = create({ ttl: LONG }, KEY);
        const before = new Date();
        const token = await owner.acquireOrFail();
        await other.acquire();
        await owner.refresh(ms(1_500));
        await other.release();
        await other.refresh();
        await owner.release();
        await other.forceRelease();
        // The last event of each lock: every earlier one has been heard.
        await heard(events, LOCK_EVENTS.RELEASED, owner.id, 1);
        await heard(events, LOCK_EVENTS.FORCE_RELEASED, other.id, 1);
        const after = new Date();

        const byName = (name: LockEventName) => events.filter((event) => event.name === name);
        for (const { payload } of events) {
          expect(payload.key).toBe(KEY);
          expect(payload.at).toBeInstanceOf(Date);
          expect(payload.at.getTime()).toBeGreaterThanOrEqual(before.getTime());
          expect(payload.at.getTime()).toBeLessThanOrEqual(after.getTime());
          expect(payload.lock.id).toBe(payload.lockId);
        }
        const [acquired] = eventsOf(events, LOCK_EVENTS.ACQUIRED);
        expect(acquired?.lock).toBe(owner);
        expect(acquired).toMatchObject({ lockId: owner.id, fencingToken: token });
        expect(acquired?.ttl?.toMilliseconds()).toBe(2_000);
        const [unavailable] = eventsOf(events, LOCK_EVENTS.UNAVAILABLE);
        expect(unavailable?.lock).toBe(other);
        expect(unavailable).toMatchObject({ lockId: other.id, owner: owner.id });
        expect(unavailable?.remainingTime?.toMilliseconds()).toBeGreaterThan(1_000);
        const [refreshed] = eventsOf(events, LOCK_EVENTS.REFRESHED);
        expect(refreshed).toMatchObject({ lockId: owner.id });
        expect(refreshed?.ttl.toMilliseconds()).toBe(1_500);
        expect(eventsOf(events, LOCK_EVENTS.FAILED_RELEASE)).toEqual([
          expect.objectContaining({ lockId: other.id, lock: other }),
        ]);
        expect(eventsOf(events, LOCK_EVENTS.FAILED_REFRESH)).toEqual([
          expect.objectContaining({ lockId: other.id, lock: other }),
        ]);
        expect(eventsOf(events, LOCK_EVENTS.RELEASED)).toEqual([
          expect.objectContaining({ lockId: owner.id, lock: owner }),
        ]);
        expect(eventsOf(events, LOCK_EVENTS.FORCE_RELEASED)).toEqual([
          expect.objectContaining({ lockId: other.id, hasReleased: false }),
        ]);
        expect(byName(LOCK_EVENTS.UNEXPECTED_ERROR)).toEqual([]);
      });

      test("in-process listeners have heard an operation's events when it resolves, in order", async (context) => {
        const { expect } = context;
        const { create, provider } = await setup(context);
        const lock = create({ ttl: LONG });
        const other = create({ ttl: LONG });
        const heard: string[] = [];
        for (const name of Object.values(LOCK_EVENTS)) {
          await provider.addListener(name, (payload) => {
            heard.push(`${payload.lockId === lock.id ? "lock" : "other"} ${name}`);
          });
        }
        // Each step's events, checked right as its await resumes: no waiting, no sleeping.
        const steps: Array<[() => PromiseLike<unknown>, string[]]> = [
          [() => lock.acquire(), ["lock ACQUIRED"]],
          [() => other.acquire(), ["other UNAVAILABLE"]],
          [() => other.acquireOrFail().then(undefined, () => {}), ["other UNAVAILABLE"]],
          [() => other.acquireBlocking({ time: ms(50) }), ["other UNAVAILABLE"]],
          [() => lock.refresh(), ["lock REFRESHED"]],
          [() => other.refresh(), ["other FAILED_REFRESH"]],
          [() => other.release(), ["other FAILED_RELEASE"]],
          [() => lock.release(), ["lock RELEASED"]],
          [() => lock.acquireOrFail(), ["lock ACQUIRED"]],
          [() => other.forceRelease(), ["other FORCE_RELEASED"]],
          [() => lock.acquireBlockingOrFail({ time: ms(1_000) }), ["lock ACQUIRED"]],
          [() => lock.runOrFail(() => {}), ["lock ACQUIRED", "lock RELEASED"]],
          [
            () => other.runBlocking(() => {}, { time: ms(1_000) }),
            ["other ACQUIRED", "other RELEASED"],
          ],
        ];
        for (const [step, expected] of steps) {
          heard.length = 0;
          await step();
          expect(heard).toEqual(expected);
        }
      });

      test("a listener sees the lock as the operation left it", async (context) => {
        const { expect } = context;
        const { create, provider } = await setup(context);
        const lock = create({ ttl: LONG });
        const seen: Array<number | null> = [];
        await provider.addListener(LOCK_EVENTS.ACQUIRED, ({ lock: heardLock, fencingToken }) => {
          seen.push(heardLock.fencingToken, fencingToken);
        });
        await provider.addListener(LOCK_EVENTS.RELEASED, ({ lock: heardLock }) => {
          seen.push(heardLock.fencingToken);
        });
        const token = await lock.acquireOrFail();
        await lock.release();
        expect(seen).toEqual([token, token, null]);
      });

      test("a throwing or never-settling listener neither delays nor fails the operation", async (context) => {
        const { expect } = context;
        const listenerErrors: unknown[] = [];
        const eventBus = new EventBus<LockEventMap>({
          adapter: new MemoryEventBusAdapter(),
          namespace: uniqueNamespace(),
          onListenerError: (error) => listenerErrors.push(error),
        });
        const { create, provider } = await setup(context, { provider: { eventBus } });
        const boom = new Error("listener threw");
        await provider.addListener(LOCK_EVENTS.ACQUIRED, () => {
          throw boom;
        });
        await provider.addListener(LOCK_EVENTS.ACQUIRED, () => new Promise<void>(() => {}));
        await provider.addListener(LOCK_EVENTS.RELEASED, () => new Promise<void>(() => {}));
        const released = vi.fn();
        await provider.addListener(LOCK_EVENTS.RELEASED, released);
        const lock = create({ ttl: LONG });
        const start = performance.now();
        expect(await lock.acquire()).toBe(true);
        expect(await lock.release()).toBe(true);
        expect(await lock.acquire()).toBe(true);
        expect(await lock.release()).toBe(true);
        // A listener that held the operation up would hold it forever.
        expect(performance.now() - start).toBeLessThan(5_000);
        await eventually("both RELEASED events", () => expect(released).toHaveBeenCalledTimes(2));
        expect(listenerErrors).toEqual([boom, boom]);
      });

      test("the provider is listenable: listenOnce, subscribe/unsubscribe, removeListener, asPromise", async (context) => {
        const { expect } = context;
        const { create, provider, events } = await setup(context);
        const lock = create({ ttl: LONG });
        const once = vi.fn();
        const always = vi.fn();
        const removed = vi.fn();
        await provider.listenOnce(LOCK_EVENTS.ACQUIRED, once);
        const unsubscribe = await provider.subscribe(LOCK_EVENTS.ACQUIRED, always);
        await provider.addListener(LOCK_EVENTS.ACQUIRED, removed);
        await provider.removeListener(LOCK_EVENTS.ACQUIRED, removed);
        const next = provider.asPromise(LOCK_EVENTS.ACQUIRED);
        await lock.acquire();
        expect((await next).lock).toBe(lock);
        await lock.acquire();
        expect(always).toHaveBeenCalledTimes(2);
        await unsubscribe();
        await lock.acquire();
        // Heard by the suite's own listener: dispatched to every listener still there.
        expect(eventsOf(events, LOCK_EVENTS.ACQUIRED, lock.id)).toHaveLength(3);
        expect(once).toHaveBeenCalledTimes(1);
        expect(always).toHaveBeenCalledTimes(2);
        expect(removed).not.toHaveBeenCalled();
      });

      test("a misspelt event name is refused, naming the lock events, rather than never heard", async (context) => {
        const { expect } = context;
        const { provider } = await setup(context);
        const listener = () => {};
        for (const listen of [
          () => provider.addListener("ACQUIRD" as never, listener),
          () => provider.events.listenOnce("acquired" as never, listener),
          () => provider.subscribe("" as never, listener),
          () => provider.events.subscribeOnce("RELEASE" as never, listener),
          () => provider.asPromise("ACQUIRD" as never),
          () => provider.events.asTask("ACQUIRD" as never),
        ]) {
          await expect(listen()).rejects.toThrow(
            /is not a lock event; the lock events are ACQUIRED, /,
          );
        }
      });

      test("provider.events is the provider's listening, and nothing else", async (context) => {
        const { expect } = context;
        const { create, provider } = await setup(context);
        const { events } = provider;
        expect(Object.keys(events).sort()).toEqual([
          "addListener",
          "asPromise",
          "asTask",
          "listenOnce",
          "removeListener",
          "subscribe",
          "subscribeOnce",
        ]);
        expect(Object.isFrozen(events)).toBe(true);
        const lock = create({ ttl: LONG });
        const viaEvents = vi.fn();
        const viaProvider = vi.fn();
        await events.addListener(LOCK_EVENTS.ACQUIRED, viaEvents);
        // One set of listeners: adding through the provider what `events` added changes nothing.
        await provider.addListener(LOCK_EVENTS.ACQUIRED, viaEvents);
        await provider.addListener(LOCK_EVENTS.RELEASED, viaProvider);
        await lock.acquire();
        await lock.release();
        expect(viaEvents).toHaveBeenCalledTimes(1);
        expect(viaProvider).toHaveBeenCalledTimes(1);
        await events.removeListener(LOCK_EVENTS.RELEASED, viaProvider);
        await provider.removeListener(LOCK_EVENTS.ACQUIRED, viaEvents);
        await lock.acquire();
        await lock.release();
        expect(viaEvents).toHaveBeenCalledTimes(1);
        expect(viaProvider).toHaveBeenCalledTimes(1);
      });

      test("a provider with only a default bus hears events once listened to through provider.events", async (context) => {
        const { expect } = context;
        const world = await setup(context);
        const quiet = world.newProvider({ namespace: uniqueNamespace() });
        const heardAcquire = vi.fn();
        await quiet.events.listenOnce(LOCK_EVENTS.ACQUIRED, heardAcquire);
        await quiet.create(KEY, { ttl: LONG }).acquire();
        expect(heardAcquire).toHaveBeenCalledTimes(1);
      });

      test("subscribeOnce hears one event, and its unsubscribe removes it before that", async (context) => {
        const { expect } = context;
        const { create, provider } = await setup(context);
        const lock = create({ ttl: LONG });
        const first = vi.fn();
        const never = vi.fn();
        const unsubscribeFirst = await provider.events.subscribeOnce(LOCK_EVENTS.ACQUIRED, first);
        const unsubscribeNever = await provider.subscribeOnce(LOCK_EVENTS.ACQUIRED, never);
        await unsubscribeNever();
        await lock.acquire();
        await lock.acquire();
        expect(first).toHaveBeenCalledTimes(1);
        expect(first).toHaveBeenCalledWith(expect.objectContaining({ lock }));
        expect(never).not.toHaveBeenCalled();
        await unsubscribeFirst(); // already gone: nothing happens
      });

      test("asTask listens when it runs, and composes with timeout", async (context) => {
        const { expect } = context;
        const { create, provider } = await setup(context);
        const lock = create({ ttl: LONG });
        const acquired = provider.events.asTask(LOCK_EVENTS.ACQUIRED);
        expect(Task.isTask(acquired)).toBe(true);
        await lock.acquire(); // before the task runs: not heard
        const running = acquired.then((payload) => payload.lock);
        await lock.acquire();
        expect(await running).toBe(lock);

        const released = provider.asTask(LOCK_EVENTS.RELEASED).pipe(timeout({ waitTime: ms(50) }));
        await expect(released).rejects.toBeInstanceOf(TimeoutError);
        expect(await lock.release()).toBe(true);
      });
    });

    describe("backend failures", () => {
      const OPERATIONS = [
        ["acquire", (lock: ILock) => lock.acquire()],
        ["release", (lock: ILock) => lock.release()],
        ["refresh", (lock: ILock) => lock.refresh()],
        ["forceRelease", (lock: ILock) => lock.forceRelease()],
        ["getState", (lock: ILock) => lock.getState()],
      ] as const;

      for (const [operation, call] of OPERATIONS) {
        test(`${operation}: a throwing adapter gives the caller a LockBackendError with the driver's error as cause, and UNEXPECTED_ERROR`, async (context) => {
          const { expect } = context;
          const driverError = new Error(`${operation} failed: connection refused`);
          const { create, events } = await setup(context, {
            intercept: (method, _args, next) =>
              method === operation ? Promise.reject(driverError) : next(),
          });
          const lock = create({ ttl: LONG }, "order:42");
          if (operation !== "acquire") {
            await lock.acquire();
          }
          const error = await call(lock).then(
            () => null,
            (thrown: unknown) => thrown,
          );
          expect(error).toBeInstanceOf(LockBackendError);
          expect(error).toMatchObject({ key: "order:42", operation, cause: driverError });
          await eventually("UNEXPECTED_ERROR", () =>
            expect(eventsOf(events, LOCK_EVENTS.UNEXPECTED_ERROR)).toEqual([
              expect.objectContaining({
                lock,
                key: "order:42",
                lockId: lock.id,
                operation,
                error: driverError,
              }),
            ]),
          );
        });
      }

      test('"held by someone else" and "the backend failed" are always distinguishable', async (context) => {
        const { expect } = context;
        const driverError = new Error("ECONNRESET");
        let failing = false;
        const { create } = await setup(context, {
          intercept: (_method, _args, call) => (failing ? Promise.reject(driverError) : call()),
        });
        const holder = create({ ttl: LONG });
        const other = create({ ttl: LONG });
        await holder.acquire();

        expect(await other.acquire()).toBe(false);
        expect(await other.run(() => "ran")).toEqual([false, null]);
        await expect(other.acquireOrFail()).rejects.toBeInstanceOf(FailedAcquireLockError);
        await expect(other.runOrFail(() => "ran")).rejects.toBeInstanceOf(FailedAcquireLockError);

        failing = true;
        const fn = vi.fn();
        for (const task of [
          other.acquire(),
          other.acquireOrFail(),
          other.run(fn),
          other.runOrFail(fn),
          other.acquireBlocking({ time: ms(5_000), interval: ms(50) }),
          other.runBlocking(fn, { time: ms(5_000), interval: ms(50) }),
        ]) {
          const start = performance.now();
          const error = await Promise.resolve(task).then(
            () => null,
            (thrown: unknown) => thrown,
          );
          expect(error).toBeInstanceOf(LockBackendError);
          expect(error).not.toBeInstanceOf(FailedAcquireLockError);
          expect((error as LockBackendError).cause).toBe(driverError);
          // A backend failure is not waited out like a held lock.
          expect(performance.now() - start).toBeLessThan(2_500);
        }
        expect(fn).not.toHaveBeenCalled();
      });

      test("a blocking acquire whose backend never answers gives up at its time plus the slack: false, FailedAcquireLockError with a TimeoutError cause, [false, null]", async (context) => {
        const { expect } = context;
        let hung = false;
        const { create, events } = await setup(context, {
          intercept: (method, _args, call) =>
            hung && (method === "acquire" || method === "waitForRelease") ? never() : call(),
        });
        const holder = create({ ttl: LONG });
        await holder.acquire();
        hung = true;
        const time = 200;
        const settings = { time: ms(time), interval: ms(50) };
        const fn = vi.fn();
        const waiters = Array.from({ length: 4 }, () => create({ ttl: LONG }));
        const [acquired, orFail, run, runOrFail] = await Promise.all([
          outcomeWithin(waiters[0]?.acquireBlocking(settings) ?? never()),
          outcomeWithin(waiters[1]?.acquireBlockingOrFail(settings) ?? never()),
          outcomeWithin(waiters[2]?.runBlocking(fn, settings) ?? never()),
          outcomeWithin(waiters[3]?.runBlockingOrFail(fn, settings) ?? never()),
        ]);
        expect(acquired.value).toBe(false);
        expect(run.value).toEqual([false, null]);
        for (const failed of [orFail, runOrFail]) {
          expect(failed.error).toBeInstanceOf(FailedAcquireLockError);
          // No answer named the holder; the cause tells a silent backend from a held key.
          expect(failed.error).toMatchObject({ owner: undefined });
          expect((failed.error as Error).cause).toBeInstanceOf(TimeoutError);
        }
        for (const { took } of [acquired, orFail, run, runOrFail]) {
          expect(took).toBeGreaterThanOrEqual(time + BLOCKING_SLACK_MS);
          expect(took).toBeLessThan(time + BLOCKING_SLACK_MS + 1_500);
        }
        expect(fn).not.toHaveBeenCalled();
        // Reported as the backend's trouble, not as a key held.
        await vi.waitFor(() =>
          expect(eventsOf(events, LOCK_EVENTS.UNEXPECTED_ERROR)).toHaveLength(4),
        );
        for (const event of eventsOf(events, LOCK_EVENTS.UNEXPECTED_ERROR)) {
          expect(event.error).toBeInstanceOf(TimeoutError);
          expect(["acquire", "waitForRelease"]).toContain(event.operation);
        }
        hung = false;
        expect(await holder.getState()).toMatchObject({
          type: LOCK_STATE.ACQUIRED,
          fencingToken: holder.fencingToken,
        });
      });

      test("a hold granted late to a blocking acquire that gave up is released again, and that lock's next acquire waits for it", async (context) => {
        const { expect } = context;
        let open!: () => void;
        const late = new Promise<void>((resolve) => {
          open = resolve;
        });
        let delayNext = false;
        const log: string[] = [];
        const { create } = await setup(context, {
          intercept: async (method, args, call) => {
            if (delayNext && (method === "acquire" || method === "waitForRelease")) {
              // The answer to this one call comes after the waiter gave up.
              delayNext = false;
              await late;
            }
            // acquire and release name the lock id; a wait's is its claim's (the waiter's).
            const by = method === "waitForRelease" ? "waiter" : String(args[1]);
            log.push(`${method} ${by}`);
            const answer = await call();
            log.push(`${method} ${by} answered`);
            return answer;
          },
        });
        const holder = create({ ttl: LONG });
        await holder.acquire();
        // An explicit id: the adapter is given the id itself (a generated lock's is id.proof).
        const waiter = create({ ttl: LONG, lockId: "late-waiter" });
        delayNext = true;
        const gaveUp = await outcomeWithin(
          waiter.acquireBlocking({ time: ms(100), interval: ms(50) }),
        );
        expect(gaveUp.value).toBe(false);
        await holder.release();
        // Sent before the late call reaches the backend: it must wait for it.
        const next = Promise.resolve(waiter.acquireOrFail());
        open();
        const token = await next;
        // The late call took the free key for the waiter, which released it, and only then
        // sent the next acquire.
        const id = waiter.id;
        const released = log.indexOf(`release ${id} answered`);
        expect(released).toBeGreaterThanOrEqual(0);
        expect(log.slice(released + 1)).toEqual([`acquire ${id}`, `acquire ${id} answered`]);
        // The late release freed nothing of the new hold.
        expect(await waiter.getState()).toMatchObject({
          type: LOCK_STATE.ACQUIRED,
          fencingToken: token,
        });
        expect(waiter.fencingToken).toBe(token);
      });
    });

    describe("code written for daiso-core", () => {
      test("createLockId (a function or { invoke }) names each lock; each still gets its own secret proof", async (context) => {
        const { expect } = context;
        const { newProvider, adapter, storedKey } = await setup(context);
        let made = 0;
        for (const createLockId of [
          () => `worker-${++made}`,
          { invoke: () => `worker-${++made}` },
        ]) {
          const provider = newProvider({ createLockId });
          const lock = provider.create(KEY, { ttl: LONG });
          expect(lock.id).toBe(`worker-${made}`);
          expect(await lock.acquire()).toBe(true);
          // Shown as the id, stored with a proof: the id alone cannot act as the owner.
          const stored = await adapter.getState(storedKey());
          expect(stored?.owner).toMatch(new RegExp(`^worker-${made}\\.[0-9a-f]{32}$`));
          const state = await provider.create(KEY).getState();
          expect(state).toMatchObject({ type: LOCK_STATE.UNAVAILABLE, owner: lock.id });
          expect(await provider.create(KEY, { lockId: lock.id }).release()).toBe(false);
          expect(await lock.release()).toBe(true);
        }
        // The same id twice is two owners, not one shared hold.
        const constant = newProvider({ createLockId: () => "same" });
        const first = constant.create(KEY, { ttl: LONG });
        const second = constant.create(KEY, { ttl: LONG });
        expect([first.id, second.id]).toEqual(["same", "same"]);
        expect(await first.acquire()).toBe(true);
        expect(await second.acquire()).toBe(false);
        expect(await second.release()).toBe(false);
        expect(await first.release()).toBe(true);
      });

      test("an id createLockId makes that a backend cannot store as it is is refused at create", async (context) => {
        const { expect } = context;
        const { newProvider, calls } = await setup(context);
        const bad: unknown[] = ["", 42, undefined, "x".repeat(223), "a\0b", "a\uD800"];
        for (const id of bad) {
          const provider = newProvider({ createLockId: () => id as string });
          expect(() => provider.create(KEY), String(id)).toThrow(InvalidArgumentError);
          expect(() => provider.create(KEY)).toThrow(/createLockId/);
        }
        expect(newProvider({ createLockId: () => "x".repeat(222) }).create(KEY).id).toHaveLength(
          222,
        );
        expect(() => newProvider({ createLockId: "nope" as never })).toThrow(/createLockId/);
        expect(calls).toEqual([]);
      });

      test("defaultRefreshTime is what refresh() gives without a TTL; lock.ttl stays; run's keep-alive uses the lock's TTL", async (context) => {
        const { expect } = context;
        const refreshTtls: number[] = [];
        const { newProvider, calls } = await setup(context, {
          intercept: (method, args, call) => {
            if (method === "refresh") refreshTtls.push((args[2] as TimeSpan).toMilliseconds());
            return call();
          },
        });
        const provider = newProvider({ defaultRefreshTime: LONG });
        const lock = provider.create(KEY, { ttl: ms(600) });
        expect(await lock.acquire()).toBe(true);
        expect(await lock.refresh()).toBe(true);
        expect(lock.ttl?.toMilliseconds()).toBe(600);
        expect(remainingMs(await lock.getState())).toBeGreaterThan(1_000);
        await lock.refreshOrFail(ms(700));
        expect(refreshTtls).toEqual([LONG.toMilliseconds(), 700]);
        await lock.release();
        refreshTtls.length = 0;
        await lock.runOrFail(() =>
          eventually("a keep-alive refresh", () => expect(refreshTtls.length).toBeGreaterThan(0)),
        );
        expect(new Set(refreshTtls)).toEqual(new Set([600]));
        expect(calls).toContain("refresh");
        expect(() => newProvider({ defaultRefreshTime: ms(0) })).toThrow(/defaultRefreshTime/);
      });

      test("serdeTransformerName is daiso's name for providerId; an empty one is not given", async (context) => {
        const { expect } = context;
        const { newProvider, namespace } = await setup(context);
        expect(newProvider({ serdeTransformerName: "reports" }).providerId).toBe("reports");
        expect(newProvider({ serdeTransformerName: "" }).providerId).toBe(namespace.toString());
        expect(newProvider({ serdeTransformerName: "a", providerId: "a" }).providerId).toBe("a");
        expect(() => newProvider({ serdeTransformerName: "a", providerId: "b" })).toThrow(
          InvalidArgumentError,
        );
      });

      test("a namespace of another library (create and toString, as daiso-core's) makes the keys, checked like hasp's", async (context) => {
        const { expect } = context;
        const { newProvider, adapter, calls } = await setup(context);
        const root = `daiso-${uniqueSuffix()}`;
        const daisoNamespace = {
          toString: () => `${root}:_rt`,
          create: (key: string) => ({
            get: () => key,
            toString: () => `${root}:_rt:${key}`,
            equals: (other: { toString(): string }) => other.toString() === `${root}:_rt:${key}`,
          }),
        };
        const provider = newProvider({ namespace: daisoNamespace });
        const lock = provider.create(KEY, { ttl: LONG });
        context.onTestFinished(() => adapter.forceRelease(`${root}:_rt:${KEY}`).then(() => {}));
        expect(lock.key.get()).toBe(KEY);
        expect(await lock.acquire()).toBe(true);
        expect((await adapter.getState(`${root}:_rt:${KEY}`))?.fencingToken).toBe(
          lock.fencingToken,
        );
        expect(await lock.release()).toBe(true);
        const before = calls.length;
        expect(() => provider.create("")).toThrow(InvalidArgumentError);
        expect(() => provider.create("a\0")).toThrow(/NUL/);
        const broken = newProvider({
          namespace: { toString: () => "x", create: () => "x" as never },
        });
        expect(() => broken.create(KEY)).toThrow(/must return a key/);
        // A key without a toString of its own would be stored as "[object Object]", every one.
        const stringless = newProvider({
          namespace: {
            toString: () => "y",
            create: (key: string) => ({ get: () => key, equals: () => false }) as never,
          },
        });
        expect(() => stringless.create(KEY)).toThrow(/must return a key/);
        expect(calls.length).toBe(before);
      });

      test("run*'s function may be an object with invoke(), which gets the signal and fencing token", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        for (const variant of RUN_VARIANTS) {
          const lock = create({ ttl: LONG });
          const seen: Array<{ aborted: boolean; fencingToken: number }> = [];
          const value = await runThrough(lock, variant, {
            invoke: async ({ signal, fencingToken }: LockRunContext) => {
              seen.push({ aborted: signal.aborted, fencingToken });
              return variant;
            },
          });
          expect(value).toBe(variant);
          expect(seen).toEqual([{ aborted: false, fencingToken: expect.any(Number) }]);
          expect((await lock.getState()).type).toBe(LOCK_STATE.EXPIRED);
        }
        const lock = create({ ttl: LONG });
        for (const bad of [{}, null, 42, Promise.resolve(1)]) {
          expect(() => lock.run(bad as never), String(bad)).toThrow(InvalidArgumentError);
        }
        expect(() => lock.runOrFail(Promise.resolve(1) as never)).toThrow(/already started/);
      });

      test("an adapter answer of the wrong shape fails loudly with LockAdapterResultError naming the method and the answer", async (context) => {
        const { expect } = context;
        const wrong: Partial<Record<AdapterMethod, unknown>> = {};
        const { create, events } = await setup(context, {
          intercept: (method, _args, call) =>
            method in wrong ? Promise.resolve(wrong[method]) : call(),
        });
        const lock = create({ ttl: LONG });
        const cases: Array<[AdapterMethod, unknown, () => PromiseLike<unknown>]> = [
          ["acquire", undefined, () => lock.acquire()],
          ["acquire", true, () => lock.acquireOrFail()],
          // With no time to wait, a blocking acquire is one acquire on every adapter.
          ["acquire", { acquired: false }, () => lock.acquireBlocking({ time: ms(0) })],
          ["acquire", { acquired: true, fencingToken: "7" }, () => lock.run(() => 1)],
          ["getState", { owner: 7 }, () => lock.getState()],
          ["forceRelease", undefined, () => lock.forceRelease()],
          ["release", "yes", () => lock.release()],
          ["refresh", null, () => lock.refresh()],
        ];
        for (const [method, answer, operation] of cases) {
          for (const key of Object.keys(wrong)) delete wrong[key as AdapterMethod];
          wrong[method] = answer;
          const error = (await outcomeWithin(operation())).error;
          expect(error, `${method} answering ${String(answer)}`).toBeInstanceOf(
            LockAdapterResultError,
          );
          expect(error).toMatchObject({
            operation: method,
            returned: answer,
            adapter: expect.any(String),
          });
          expect((error as Error).message).toContain(`.${method}() returned`);
        }
        await heard(events, LOCK_EVENTS.UNEXPECTED_ERROR, lock.id, cases.length);
      });

      test("an answer that says acquired in the wrong shape, after the adapter took the key, lets the key go (even with no TTL)", async (context) => {
        const { expect } = context;
        let daisoStyle = true;
        const { create, adapter, storedKey } = await setup(context, {
          intercept: (method, _args, call) =>
            method === "acquire" && daisoStyle ? call().then(() => true) : call(),
        });
        const lock = create({ ttl: null });
        await expect(lock.acquire()).rejects.toBeInstanceOf(LockAdapterResultError);
        await expect.poll(() => adapter.getState(storedKey())).toBeNull();
        daisoStyle = false;
        expect(await lock.acquire()).toBe(true);
        await lock.release();
      });

      test("a wrong answer that names the holder shows its public id, never its proof", async (context) => {
        const { expect } = context;
        const { create, events } = await setup(context, {
          intercept: (method, _args, call) =>
            method === "getState"
              ? call().then((state) => ({ ...(state as object), remainingTime: 5_000 }))
              : call(),
        });
        const holder = create({ ttl: LONG });
        await holder.acquireOrFail();
        const error = await create({ ttl: LONG })
          .getState()
          .then(
            () => undefined,
            (caught: unknown) => caught,
          );
        expect(error).toBeInstanceOf(LockAdapterResultError);
        expect((error as LockAdapterResultError).returned).toMatchObject({ owner: holder.id });
        const proofShown = new RegExp(`${holder.id}\\.[0-9a-f]{32}`);
        expect((error as Error).message).toContain(holder.id);
        expect((error as Error).message).not.toMatch(proofShown);
        const reported = events.filter(({ name }) => name === LOCK_EVENTS.UNEXPECTED_ERROR);
        expect(
          JSON.stringify(
            reported.map(({ payload }) => String((payload as { error?: unknown }).error)),
          ),
        ).not.toMatch(proofShown);
        await holder.release();
      });

      test("a run whose release answers wrongly still returns fn's value, and reports the answer", async (context) => {
        const { expect } = context;
        let wrongRelease = true;
        const { create, events } = await setup(context, {
          intercept: (method, _args, call) =>
            method === "release" && wrongRelease ? Promise.resolve(undefined) : call(),
        });
        const lock = create({ ttl: LONG });
        expect(await lock.runOrFail(() => "done")).toBe("done");
        const [reported] = await heard(events, LOCK_EVENTS.UNEXPECTED_ERROR, lock.id, 1);
        expect(reported?.error).toBeInstanceOf(LockAdapterResultError);
        wrongRelease = false;
        expect(await lock.release()).toBe(true);
      });
    });

    describe("validation", () => {
      test("create rejects an empty key and bad settings, naming the field, before anything reaches the adapter", async (context) => {
        const { expect } = context;
        const { provider, calls } = await setup(context);
        const cases: Array<[key: string, settings: unknown, field: RegExp]> = [
          ["", {}, /key/i],
          [KEY, { ttl: ms(-1) }, /ttl/],
          [KEY, { ttl: TimeSpan.ZERO }, /ttl/],
          [KEY, { ttl: rawSpan(Number.NaN) }, /ttl/],
          [KEY, { ttl: rawSpan(Number.POSITIVE_INFINITY) }, /ttl/],
          [KEY, { ttl: 1_000 }, /ttl/],
          [KEY, { lockId: "" }, /lockId/],
          [KEY, { lockId: 42 }, /lockId/],
          [KEY, { lockId: "x".repeat(256) }, /lockId/],
          [KEY, { tll: ms(1_000) }, /tll/],
        ];
        for (const [key, settings, field] of cases) {
          const attempt = () => provider.create(key, settings as LockCreateSettings);
          expect(attempt, JSON.stringify(settings)).toThrow(InvalidArgumentError);
          expect(attempt).toThrow(field);
        }
        expect(() => provider.create(undefined as unknown as string)).toThrow(InvalidArgumentError);
        expect(calls).toEqual([]);
      });

      test("methods reject bad settings when called, not when awaited, and nothing reaches the adapter", async (context) => {
        const { expect } = context;
        const { create, calls } = await setup(context);
        const lock = create({ ttl: LONG });
        const fn = vi.fn();
        const cases: Array<[call: () => unknown, field: RegExp]> = [
          [() => lock.acquireBlocking({ time: ms(-1) }), /time/],
          [() => lock.acquireBlocking({ time: rawSpan(Number.NaN) }), /time/],
          [() => lock.acquireBlocking({ interval: TimeSpan.ZERO }), /interval/],
          [() => lock.acquireBlocking({ interval: rawSpan(Number.POSITIVE_INFINITY) }), /interval/],
          [() => lock.acquireBlockingOrFail({ time: ms(-5) }), /time/],
          [() => lock.acquireBlocking({ wait: ms(5) } as never), /wait/],
          [() => lock.refresh(ms(-1)), /ttl/],
          [() => lock.refresh(TimeSpan.ZERO), /ttl/],
          [() => lock.refreshOrFail(rawSpan(Number.NaN)), /ttl/],
          [() => lock.runOrFail(fn, { autoRefresh: { interval: TimeSpan.ZERO } }), /interval/],
          [() => lock.run(fn, { autoRefresh: { maxHoldTime: ms(-1) } }), /maxHoldTime/],
          [() => lock.run(fn, { autoRefresh: "yes" } as never), /autoRefresh/],
          [() => lock.runOrFail(fn, { ttl: ms(5) } as never), /ttl/],
          [() => lock.runBlocking(fn, { time: ms(-1) }), /time/],
          [() => lock.runBlockingOrFail(fn, { interval: rawSpan(Number.NaN) }), /interval/],
        ];
        for (const [call, field] of cases) {
          expect(call).toThrow(InvalidArgumentError);
          expect(call).toThrow(field);
        }
        expect(fn).not.toHaveBeenCalled();
        expect(calls).toEqual([]);
      });

      test("a key, lock id, namespace or provider id that is not well-formed UTF-16 or holds NUL is refused, naming the field and the problem; nothing reaches the backend", async (context) => {
        const { expect } = context;
        const { provider, create, newProvider, calls } = await setup(context);
        const cases: Array<[attempt: () => unknown, message: RegExp]> = [
          [
            () => provider.create("o\uD800"),
            /^Key must be well-formed UTF-16 \(a lone surrogate at index 1\)/,
          ],
          [
            () => provider.create("\uDC00\uD800"),
            /^Key must be well-formed UTF-16 \(a lone surrogate at index 0\)/,
          ],
          [() => provider.create("o\uD800", { ttl: LONG }), /^Key must be well-formed UTF-16/],
          [() => provider.create("a\0b"), /^Key must not contain NUL \(at index 1\)/],
          [
            () => provider.create(KEY, { lockId: "o\uDC00" }),
            /lockId: must be well-formed UTF-16 \(a lone surrogate at index 1\)/,
          ],
          [
            () => provider.create(KEY, { lockId: "own\0er" }),
            /lockId: must not contain NUL \(at index 3\)/,
          ],
          [
            () => new Namespace(["hasp", "o\uD800"]),
            /^Namespace part 1 must be well-formed UTF-16 \(a lone surrogate at index 1\)/,
          ],
          [
            () => new Namespace(["hasp\0"]),
            /^Namespace part 0 must not contain NUL \(at index 4\)/,
          ],
          [
            () => newProvider({ providerId: "p\uDFFF" }),
            /providerId: must be well-formed UTF-16 \(a lone surrogate at index 1\)/,
          ],
          [
            () => newProvider({ providerId: "p\0" }),
            /providerId: must not contain NUL \(at index 1\)/,
          ],
        ];
        for (const [attempt, message] of cases) {
          expect(attempt).toThrow(InvalidArgumentError);
          expect(attempt).toThrow(message);
        }
        // A well-formed pair (one code point beyond the BMP) is fine.
        expect(create({ ttl: LONG }, "o\uD83D\uDE00").key.get()).toBe("o\u{1F600}");
        expect(calls).toEqual([]);
        // Nothing was stored: not under the key, nor under what a lone surrogate becomes in UTF-8.
        expect(await create().getState()).toEqual({ type: LOCK_STATE.EXPIRED });
        expect(await create({}, "o\uFFFD").getState()).toEqual({ type: LOCK_STATE.EXPIRED });
      });

      test('lock ids "o\\uD800" and "o\\uDC00" are refused: a backend storing UTF-8 sees both as "o\\uFFFD", so either would release the other\'s hold', async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const created = ["o\uDC00", "o\uD800"].map((lockId) => {
          try {
            return create({ ttl: LONG, lockId });
          } catch (error) {
            return error;
          }
        });
        const [holder, stranger] = created;
        if (isLock(holder) && isLock(stranger)) {
          // Accepted (the bug): at least ownership must hold.
          expect(await holder.acquire()).toBe(true);
          expect(await stranger.release(), "the stranger released the holder's hold").toBe(false);
          expect(await holder.getState()).toMatchObject({ type: LOCK_STATE.ACQUIRED });
        }
        for (const error of created) {
          expect(error).toBeInstanceOf(InvalidArgumentError);
          expect(String(error)).toMatch(/lockId: must be well-formed UTF-16/);
        }
        expect(await create({}, KEY).getState()).toEqual({ type: LOCK_STATE.EXPIRED });
      });

      test("a duration above 100 years, NaN, infinite or negative is refused naming the field, before the backend: the key is untouched", async (context) => {
        const { expect } = context;
        const { create, newProvider, calls } = await setup(context);
        const holder = create({ ttl: LONG }, "held");
        const token = await holder.acquireOrFail();
        const before = remainingMs(await holder.getState()) ?? 0;
        const lock = create({ ttl: LONG });
        const fn = vi.fn();
        const tooLong = /must be at most 100 years \(3153600000000 ms\)/;
        const badValues: Array<[value: number, message?: RegExp]> = [
          [1e17, tooLong],
          [MAX_DURATION_MS + 1, tooLong],
          [Number.NaN],
          [Number.POSITIVE_INFINITY],
          [-1],
        ];
        for (const [value, message] of badValues) {
          const span = rawSpan(value);
          const cases: Array<[call: () => unknown, field: RegExp]> = [
            [() => create({ ttl: span }), /ttl/],
            [() => newProvider({ defaultTtl: span }), /defaultTtl/],
            [() => newProvider({ defaultBlockingTime: span }), /defaultBlockingTime/],
            [() => newProvider({ defaultBlockingInterval: span }), /defaultBlockingInterval/],
            [() => holder.refresh(span), /ttl/],
            [() => holder.refreshOrFail(span), /ttl/],
            [() => lock.acquireBlocking({ time: span }), /time/],
            [() => lock.acquireBlockingOrFail({ interval: span }), /interval/],
            [() => lock.runBlocking(fn, { time: span }), /time/],
            [() => lock.runBlockingOrFail(fn, { interval: span }), /interval/],
            [() => lock.run(fn, { autoRefresh: { interval: span } }), /interval/],
            [() => lock.runOrFail(fn, { autoRefresh: { maxHoldTime: span } }), /maxHoldTime/],
          ];
          for (const [call, field] of cases) {
            expect(call, `${value}: ${call}`).toThrow(InvalidArgumentError);
            expect(call, `${value}: ${call}`).toThrow(field);
            if (message !== undefined) {
              expect(call, `${value}: ${call}`).toThrow(message);
            }
          }
        }
        expect(fn).not.toHaveBeenCalled();
        expect(calls).toEqual(["acquire", "getState"]);
        expect(await lock.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
        const after = await holder.getState();
        expect(after).toMatchObject({ type: LOCK_STATE.ACQUIRED, fencingToken: token });
        expect(remainingMs(after)).toBeLessThanOrEqual(before);
      });

      test("the provider rejects bad settings at construction, naming the field", async (context) => {
        const { expect } = context;
        const { adapter } = await setup(context);
        const cases: Array<[settings: unknown, field: RegExp]> = [
          [{}, /adapter/],
          [{ adapter: {} }, /adapter/],
          [{ adapter, defaultTtl: ms(-1) }, /defaultTtl/],
          [{ adapter, defaultTtl: TimeSpan.ZERO }, /defaultTtl/],
          [{ adapter, defaultTtl: rawSpan(Number.NaN) }, /defaultTtl/],
          [{ adapter, defaultBlockingTime: ms(-1) }, /defaultBlockingTime/],
          [{ adapter, defaultBlockingInterval: TimeSpan.ZERO }, /defaultBlockingInterval/],
          [{ adapter, namespace: "locks" }, /namespace/],
          [{ adapter, serde: {} }, /serde/],
          [{ adapter, eventBus: {} }, /eventBus/],
          [{ adapter, providerId: "" }, /providerId/],
          [{ adapter, defaultTTL: ms(1_000) }, /defaultTTL/],
        ];
        for (const [providerSettings, field] of cases) {
          const attempt = () => new LockProvider(providerSettings as LockProviderSettings);
          expect(attempt).toThrow(InvalidArgumentError);
          expect(attempt).toThrow(field);
        }
      });
    });

    describe("what others see of a holder is not its credential", () => {
      test("the adapter stores a generated lock as id.proof; getState, events and errors show the id only", async (context) => {
        const { expect } = context;
        const stored: string[] = [];
        const world = await setup(context, {
          intercept: (method, args, call) => {
            if (method === "acquire") stored.push(args[1] as string);
            return call();
          },
        });
        const acquiredHeard = world.provider.asPromise(LOCK_EVENTS.ACQUIRED);
        const holder = world.create({ ttl: LONG });
        await holder.acquireOrFail();
        expect(holder.id).toMatch(/^[0-9a-f]{32}$/);
        const credential = stored[0] ?? "";
        expect(credential).toMatch(new RegExp(`^${holder.id}\\.[0-9a-f]{32}$`));
        expect((await world.adapter.getState(world.storedKey()))?.owner).toBe(credential);
        expect(await acquiredHeard).toMatchObject({ lockId: holder.id });

        const other = world.create({ ttl: LONG });
        const unavailableHeard = world.provider.asPromise(LOCK_EVENTS.UNAVAILABLE);
        const error = await other.acquireOrFail().then(
          () => undefined,
          (reason: unknown) => reason,
        );
        expect(error).toBeInstanceOf(FailedAcquireLockError);
        expect(error).toMatchObject({ owner: holder.id });
        expect((error as Error).message).toContain(holder.id);
        expect((error as Error).message).not.toContain(credential);
        expect(await unavailableHeard).toMatchObject({ owner: holder.id });
        expect(await other.getState()).toMatchObject({
          type: LOCK_STATE.UNAVAILABLE,
          owner: holder.id,
        });
        expect(await holder.getState()).toMatchObject({ type: LOCK_STATE.ACQUIRED });

        // Given as a lockId, the whole credential is that owner, and shows as its id.
        const twin = world.create({ ttl: LONG, lockId: credential });
        expect(twin.id).toBe(holder.id);
        expect(await twin.refresh()).toBe(true);
        expect(await twin.getState()).toMatchObject({ type: LOCK_STATE.ACQUIRED });
      });

      test("an owner read from getState, an UNAVAILABLE event or a FailedAcquireLockError cannot release or refresh the hold", async (context) => {
        const { expect } = context;
        const serde = new Serde(new SuperJsonSerdeAdapter());
        const world = await setup(context, { provider: { serde } });
        const holder = world.create({ ttl: LONG });
        const token = await holder.acquireOrFail();

        const seen = new Set<string>();
        const state = await world.create({ ttl: LONG }).getState();
        if (state.type === LOCK_STATE.UNAVAILABLE) seen.add(state.owner);
        const unavailableHeard = world.provider.asPromise(LOCK_EVENTS.UNAVAILABLE);
        await world.create({ ttl: LONG }).acquire();
        seen.add((await unavailableHeard).owner);
        await world
          .create({ ttl: LONG })
          .acquireOrFail()
          .catch((error: unknown) => {
            if (error instanceof FailedAcquireLockError && error.owner !== undefined) {
              seen.add(error.owner);
            }
          });
        expect([...seen]).toEqual([holder.id]);

        const impostors = [...seen].flatMap((owner) => [
          world.create({ ttl: LONG, lockId: owner }),
          // The same owner, through the serde: the public id without a proof.
          serde.deserialize<ILock>(serde.serialize(world.create({ ttl: LONG, lockId: owner }))),
        ]);
        for (const impostor of impostors) {
          expect(await impostor.release()).toBe(false);
          expect(await impostor.refresh(ms(200))).toBe(false);
          expect(await impostor.acquire()).toBe(false);
          await expect(impostor.releaseOrFail()).rejects.toBeInstanceOf(FailedReleaseLockError);
          expect(await impostor.getState()).toMatchObject({
            type: LOCK_STATE.UNAVAILABLE,
            owner: holder.id,
          });
          expect(impostor.fencingToken).toBeNull();
        }
        const held = await holder.getState();
        expect(held).toMatchObject({ type: LOCK_STATE.ACQUIRED, fencingToken: token });
        expect(remainingMs(held)).toBeGreaterThan(LONG.toMilliseconds() / 2);
        expect(await holder.release()).toBe(true);
      });

      test("a serialized lock is a bearer credential: revived, it holds the hold; its token comes from the store", async (context) => {
        const { expect } = context;
        const serde = new Serde(new SuperJsonSerdeAdapter());
        const world = await setup(context, { provider: { serde } });
        // The receiving process: its own serde, a provider configured alike.
        const receiverSerde = new Serde(new SuperJsonSerdeAdapter());
        world.newProvider({ serde: receiverSerde });
        const holder = world.create({ ttl: LONG });
        const token = await holder.acquireOrFail();
        const text = serde.serialize(holder);

        const revived = receiverSerde.deserialize<ILock>(text);
        expect(revived.id).toBe(holder.id);
        expect(revived.fencingToken).toBeNull();
        expect(await revived.getState()).toMatchObject({
          type: LOCK_STATE.ACQUIRED,
          fencingToken: token,
        });
        expect(revived.fencingToken).toBe(token);
        // Re-taking its live hold answers the store's token, as the original's would.
        const again = receiverSerde.deserialize<ILock>(text);
        expect(await again.acquireOrFail()).toBe(token);
        expect(await revived.refresh()).toBe(true);
        expect(await revived.release()).toBe(true);
        expect(await holder.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
        expect(revived.fencingToken).toBeNull();

        // A guessed proof is another owner's: it holds nothing.
        await holder.acquireOrFail();
        const guessed = receiverSerde.deserialize<ILock>(
          tamperLock(serde.serialize(holder), (data) => {
            data.proof = "0".repeat(32);
          }),
        );
        expect(await guessed.release()).toBe(false);
        expect(await guessed.refresh()).toBe(false);
        expect((await holder.getState()).type).toBe(LOCK_STATE.ACQUIRED);
      });

      test("a serialized lock that names a fencing token is refused, and nothing changes", async (context) => {
        const { expect } = context;
        const serde = new Serde(new SuperJsonSerdeAdapter());
        const world = await setup(context, { provider: { serde } });
        const holder = world.create({ ttl: LONG });
        const token = await holder.acquireOrFail();
        const text = serde.serialize(holder);
        for (const forged of [token + 1_000, token, null]) {
          const tampered = tamperLock(text, (data) => {
            data.fencingToken = forged;
          });
          expect(() => serde.deserialize(tampered)).toThrow(SerdeError);
          expect(() => serde.deserialize(tampered)).toThrow(/fencingToken/);
        }
        expect(await holder.getState()).toMatchObject({
          type: LOCK_STATE.ACQUIRED,
          fencingToken: token,
        });
        expect(world.calls.filter((method) => method !== "getState")).toEqual(["acquire"]);
      });

      test("an explicit lockId is both what others see and the credential: a lock given it shares the hold", async (context) => {
        const { expect } = context;
        const { create } = await setup(context);
        const holder = create({ ttl: LONG, lockId: "cms-user-17" });
        const token = await holder.acquireOrFail();
        const state = await create({ ttl: LONG }).getState();
        expect(state).toMatchObject({ type: LOCK_STATE.UNAVAILABLE, owner: "cms-user-17" });
        const elsewhere = create({
          ttl: LONG,
          lockId: state.type === LOCK_STATE.UNAVAILABLE ? state.owner : "",
        });
        expect(await elsewhere.acquireOrFail()).toBe(token);
        expect(await elsewhere.release()).toBe(true);
        expect(await holder.getState()).toEqual({ type: LOCK_STATE.EXPIRED });
      });
    });
  });

  describe.concurrent("closing and disposing", () => {
    /** The adapter of `world`, with a `close` of its own that only counts (the real one stays open). */
    function withCountedClose(world: World) {
      const counted = { closes: 0 };
      const adapter: ILockAdapter = {
        ...instrument(world.adapter, (_method, _args, call) => call()),
        close: async () => {
          counted.closes += 1;
        },
      };
      return { adapter, counted };
    }

    test("provider.close() closes the bus it made and calls the adapter's close() once", async (context) => {
      const { expect } = context;
      const world = await setup(context);
      const { adapter, counted } = withCountedClose(world);
      const provider = new LockProvider({ adapter, namespace: world.namespace });
      const before: string[] = [];
      await provider.addListener(LOCK_EVENTS.ACQUIRED, ({ lockId }) => void before.push(lockId));
      await provider.close();
      expect(counted.closes).toBe(1);
      await provider.close();
      expect(counted.closes).toBe(1);

      // A listener added after close() hears the lock's events, which go out in order: by the
      // time it heard the release, the acquire went out too, to nobody of before close().
      const after: string[] = [];
      await provider.addListener(LOCK_EVENTS.ACQUIRED, ({ lockId }) => void after.push(lockId));
      const released = provider.asPromise(LOCK_EVENTS.RELEASED);
      const lock = provider.create(KEY, { ttl: LONG });
      expect(await lock.acquire()).toBe(true);
      expect(await lock.release()).toBe(true);
      await released;
      expect(after).toEqual([lock.id]);
      expect(before).toEqual([]);
    });

    test("provider.close() leaves a bus it was given open, with its listeners", async (context) => {
      const { expect } = context;
      const world = await setup(context);
      const { adapter, counted } = withCountedClose(world);
      const bus = new EventBus<LockEventMap>({
        adapter: new MemoryEventBusAdapter(),
        namespace: world.namespace.append("given-bus"),
      });
      const provider = new LockProvider({ adapter, namespace: world.namespace, eventBus: bus });
      const heard: string[] = [];
      await bus.addListener(LOCK_EVENTS.ACQUIRED, ({ lockId }) => void heard.push(lockId));
      await provider.close();
      expect(counted.closes).toBe(1);
      const lock = provider.create(KEY, { ttl: LONG });
      const acquired = bus.asPromise(LOCK_EVENTS.ACQUIRED);
      expect(await lock.acquire()).toBe(true);
      await acquired;
      expect(heard).toEqual([lock.id]);
      await lock.release();
    });

    test("await using a provider closes it at the end of the block", async (context) => {
      const { expect } = context;
      const world = await setup(context);
      const { adapter, counted } = withCountedClose(world);
      {
        await using provider = new LockProvider({ adapter, namespace: world.namespace });
        expect(await provider.create(KEY, { ttl: LONG }).run(() => "ran")).toEqual([true, "ran"]);
        expect(counted.closes).toBe(0);
      }
      expect(counted.closes).toBe(1);
    });

    test("await using a lock releases its hold when the block ends, also when it throws", async (context) => {
      const { expect } = context;
      const { create, events } = await setup(context);
      let id = "";
      {
        await using lock = create({ ttl: LONG });
        id = lock.id;
        expect(await lock.acquire()).toBe(true);
        expect((await lock.getState()).type).toBe(LOCK_STATE.ACQUIRED);
      }
      expect((await create().getState()).type).toBe(LOCK_STATE.EXPIRED);
      await vi.waitFor(() => expect(eventsOf(events, LOCK_EVENTS.RELEASED, id)).toHaveLength(1));

      const failure = new Error("the block failed");
      const block = async () => {
        await using lock = create({ ttl: LONG });
        await lock.acquireOrFail();
        throw failure;
      };
      await expect(block()).rejects.toBe(failure);
      expect((await create().getState()).type).toBe(LOCK_STATE.EXPIRED);
    });

    test("[Symbol.asyncDispose]() releases only a hold this instance took, and never throws", async (context) => {
      const { expect } = context;
      const { create, calls } = await setup(context);
      const idle = create({ ttl: LONG });
      await idle[Symbol.asyncDispose]();
      expect(calls).toEqual([]);

      const lock = create({ ttl: LONG });
      await lock.acquireOrFail();
      await lock[Symbol.asyncDispose]();
      expect(lock.fencingToken).toBeNull();
      expect((await lock.getState()).type).toBe(LOCK_STATE.EXPIRED);
      // Released already: nothing to do.
      const before = calls.length;
      await lock[Symbol.asyncDispose]();
      expect(calls).toHaveLength(before);

      // Its hold was taken over: the new owner keeps it.
      const stale = create({ ttl: LONG });
      await stale.acquireOrFail();
      await create().forceRelease();
      const owner = create({ ttl: LONG });
      await owner.acquireOrFail();
      await expect(stale[Symbol.asyncDispose]()).resolves.toBeUndefined();
      expect(await owner.getState()).toMatchObject({ type: LOCK_STATE.ACQUIRED });
      await owner.release();
    });

    test("a dispose whose release fails does not throw: it reports it and frees the key in the background", async (context) => {
      const { expect } = context;
      const { create, events } = await setup(context, { intercept: failingReleases({ left: 1 }) });
      const lock = create({ ttl: LONG });
      await lock.acquireOrFail();
      await expect(lock[Symbol.asyncDispose]()).resolves.toBeUndefined();
      await vi.waitFor(
        async () => expect((await create().getState()).type).toBe(LOCK_STATE.EXPIRED),
        { timeout: 3_000, interval: 20 },
      );
      await vi.waitFor(() =>
        expect(eventsOf(events, LOCK_EVENTS.UNEXPECTED_ERROR, lock.id)).toEqual([
          expect.objectContaining({ operation: "release" }),
        ]),
      );
    });
  });

  describe("many operations on one signal", () => {
    const COUNT = 50;

    for (const shared of [true, false]) {
      const how = shared
        ? "sharing one AbortSignal"
        : "without a signal (the run's own, never aborted)";
      test(`${COUNT} blocking acquires and ${COUNT} runs ${how} print no MaxListenersExceededWarning`, async (context) => {
        const { expect } = context;
        const warnings: string[] = [];
        const onWarning = (warning: Error) => {
          if (warning.name === "MaxListenersExceededWarning") {
            warnings.push(warning.message);
          }
        };
        process.on("warning", onWarning);
        context.onTestFinished(() => {
          process.off("warning", onWarning);
        });
        const waiterIds = new Set<string>();
        const started = { acquires: new Set<string>(), waits: 0 };
        const world = await setup(context, {
          intercept: (method, args, call) => {
            if (method === "acquire" && waiterIds.has(args[1] as string)) {
              started.acquires.add(args[1] as string);
            } else if (method === "waitForRelease") {
              started.waits += 1;
            }
            return call();
          },
        });
        const { create, adapter } = world;
        const controller = new AbortController();
        const holder = create({ ttl: LONG });
        await holder.acquireOrFail();

        let finish = () => {};
        const finished = new Promise<void>((resolve) => {
          finish = resolve;
        });
        let entered = 0;
        const runs = Array.from({ length: COUNT }, (_, index) => {
          const task = create({ ttl: LONG }, `${KEY}-run-${index}`).runOrFail(
            async ({ signal }) => {
              entered += signal.aborted ? 0 : 1;
              await finished;
            },
          );
          return Promise.resolve(shared ? task.withSignal(controller.signal) : task);
        });
        const waiters = Array.from({ length: COUNT }, (_, index) => {
          // An explicit id: the adapter is given the id itself (a generated lock's is id.proof).
          const lock = create({ ttl: LONG, lockId: `waiter-${index}` });
          waiterIds.add(lock.id);
          const task = lock.runBlockingOrFail(() => "served", { time: LONG, interval: ms(50) });
          return Promise.resolve(shared ? task.withSignal(controller.signal) : task);
        });
        await vi.waitFor(
          () => {
            expect(entered).toBe(COUNT);
            // Every waiter is waiting: in a wait of the adapter, or polling after its attempt.
            if (adapter.waitForRelease === undefined) {
              expect(started.acquires.size).toBe(COUNT);
            } else {
              expect(started.waits).toBeGreaterThanOrEqual(COUNT);
            }
          },
          { timeout: 8_000, interval: 20 },
        );
        // Warnings are emitted on the next tick.
        await new Promise((resolve) => setImmediate(resolve));
        expect(warnings).toEqual([]);

        if (shared) {
          const reason = new Error("shut down");
          controller.abort(reason);
          for (const outcome of await Promise.allSettled([...runs, ...waiters])) {
            expect(outcome).toEqual({ status: "rejected", reason });
          }
          finish();
        } else {
          finish();
          await Promise.all(runs);
          await holder.releaseOrFail();
          expect(await Promise.all(waiters)).toEqual(Array.from({ length: COUNT }, () => "served"));
        }
        await new Promise((resolve) => setImmediate(resolve));
        expect(warnings).toEqual([]);
      }, 20_000);
    }
  });
}
