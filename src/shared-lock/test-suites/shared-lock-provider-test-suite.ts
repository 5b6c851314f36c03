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
import type { ISharedLock } from "../contracts/shared-lock.js";
import type {
  ISharedLockAdapter,
  SharedLockReaderAcquireResult,
  SharedLockWaitClaim,
  SharedLockWriterAcquireResult,
} from "../contracts/shared-lock-adapter.js";
import {
  FailedAcquireWriterLockError,
  FailedRefreshReaderSemaphoreError,
  FailedRefreshWriterLockError,
  FailedReleaseReaderSemaphoreError,
  FailedReleaseWriterLockError,
  LimitReachedReaderSemaphoreError,
  SharedLockAdapterResultError,
  SharedLockBackendError,
  SharedLockLostError,
} from "../contracts/shared-lock-errors.js";
import {
  SHARED_LOCK_EVENTS,
  type SharedLockEventMap,
  type SharedLockEventName,
} from "../contracts/shared-lock-events.js";
import type { SharedLockCreateSettings } from "../contracts/shared-lock-provider.js";
import { type ISharedLockState, SHARED_LOCK_STATE } from "../contracts/shared-lock-state.js";
import { SharedLockProvider, type SharedLockProviderSettings } from "../shared-lock-provider.js";

/** Settings of {@link sharedLockProviderTestSuite}: how to get the adapter under test. */
export type SharedLockProviderTestSuiteSettings = {
  /** A fresh adapter (or one shared by the suite) for each test. */
  createAdapter: () => ISharedLockAdapter | Promise<ISharedLockAdapter>;
  /** Called after each test with what `createAdapter` returned. */
  destroyAdapter?: (adapter: ISharedLockAdapter) => void | Promise<void>;
  /**
   * How many waits the backend has queued on `key` (as the adapter is given it), for an
   * adapter whose `waitForRelease` queues asynchronously. See `lockProviderTestSuite`.
   */
  queuedWaits?: (key: string) => Promise<number>;
};

type AdapterMethod = keyof Required<ISharedLockAdapter>;

/** Sees every adapter call; returns what the adapter should answer (usually `call()`). */
type Interceptor = (
  method: AdapterMethod,
  args: readonly unknown[],
  call: () => Promise<unknown>,
) => Promise<unknown>;

type RecordedEvent = {
  [TName in SharedLockEventName]: { name: TName; payload: SharedLockEventMap[TName] };
}[SharedLockEventName];

type World = {
  /** The adapter as created: bypasses interception, for arranging and inspecting state. */
  adapter: ISharedLockAdapter;
  provider: SharedLockProvider;
  /** Every event of `provider`, in the order heard. */
  events: RecordedEvent[];
  create(settings: SharedLockCreateSettings, key?: string): ISharedLock;
  newProvider(settings?: Partial<Omit<SharedLockProviderSettings, "adapter">>): SharedLockProvider;
  storedKey(key?: string): string;
  /**
   * Resolves once `sharedLock` waits (a wait sent to the adapter, or on a polling adapter an
   * attempt refused), and its wait is queued when the suite can count them.
   */
  untilWaiting(sharedLock: ISharedLock, queued?: number): Promise<void>;
};

const KEY = "resource";
const ms = (milliseconds: number) => TimeSpan.fromMilliseconds(milliseconds);
const LONG = TimeSpan.fromSeconds(10);
const HEX_32 = /^[0-9a-f]{32}$/;
const uniqueNamespace = () => namespaceUnder("hasp-shared-lock-suite");

/** Routes every call of `adapter` through `interceptor`, keeping its optional members as they are. */
function instrument(adapter: ISharedLockAdapter, interceptor: Interceptor): ISharedLockAdapter {
  const through = <T>(method: AdapterMethod, args: unknown[], call: () => Promise<T>) =>
    interceptor(method, args, call) as Promise<T>;
  const instrumented: ISharedLockAdapter = {
    ...(adapter.waitAcquires === undefined ? {} : { waitAcquires: adapter.waitAcquires }),
    ...(adapter.waitsPastExpiry === undefined ? {} : { waitsPastExpiry: adapter.waitsPastExpiry }),
    acquireWriter: (key, lockId, ttl, intent) =>
      through<SharedLockWriterAcquireResult>("acquireWriter", [key, lockId, ttl, intent], () =>
        adapter.acquireWriter(key, lockId, ttl, intent),
      ),
    releaseWriter: (key, lockId) =>
      through<boolean>("releaseWriter", [key, lockId], () => adapter.releaseWriter(key, lockId)),
    forceReleaseWriter: (key) =>
      through<boolean>("forceReleaseWriter", [key], () => adapter.forceReleaseWriter(key)),
    refreshWriter: (key, lockId, ttl) =>
      through<boolean>("refreshWriter", [key, lockId, ttl], () =>
        adapter.refreshWriter(key, lockId, ttl),
      ),
    acquireReader: (key, lockId, limit, ttl) =>
      through<SharedLockReaderAcquireResult>("acquireReader", [key, lockId, limit, ttl], () =>
        adapter.acquireReader(key, lockId, limit, ttl),
      ),
    releaseReader: (key, lockId) =>
      through<boolean>("releaseReader", [key, lockId], () => adapter.releaseReader(key, lockId)),
    forceReleaseAllReaders: (key) =>
      through<boolean>("forceReleaseAllReaders", [key], () => adapter.forceReleaseAllReaders(key)),
    refreshReader: (key, lockId, ttl) =>
      through<boolean>("refreshReader", [key, lockId, ttl], () =>
        adapter.refreshReader(key, lockId, ttl),
      ),
    forceRelease: (key) => through<boolean>("forceRelease", [key], () => adapter.forceRelease(key)),
    getState: (key, lockId) =>
      through("getState", [key, lockId], () => adapter.getState(key, lockId)),
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

function eventsOf<TName extends SharedLockEventName>(
  events: readonly RecordedEvent[],
  name: TName,
  lockId?: string,
): SharedLockEventMap[TName][] {
  return events
    .filter((event) => event.name === name)
    .map((event) => event.payload as SharedLockEventMap[TName])
    .filter((payload) => lockId === undefined || payload.lockId === lockId);
}

/** Throws unless `state` is the given type; returns it narrowed. */
function stateOf<TType extends ISharedLockState["type"]>(
  state: ISharedLockState,
  type: TType,
): Extract<ISharedLockState, { type: TType }> {
  expect(state.type).toBe(type);
  return state as Extract<ISharedLockState, { type: TType }>;
}

/**
 * The behaviour of `SharedLockProvider` and `SharedLock` on top of an adapter, specified once:
 * identity and validation, the six states through both sides, every method and its `…OrFail`
 * error, fencing across both sides, a crashed reader that keeps no writer out past its TTL,
 * blocking on both sides with aborts, writer preference under a stream of readers, hand-off
 * order where the adapter signals, `run*` with keep-alive and abort on loss, events in order,
 * backend failures, serialization, and a client clock shifted by a minute. Every test makes its
 * own provider under a unique namespace. It uses real time, with TTLs of 100 ms and more and no
 * tight upper bounds.
 *
 * @example
 * sharedLockProviderTestSuite({ createAdapter: () => new MemorySharedLockAdapter() });
 */
export function sharedLockProviderTestSuite(settings: SharedLockProviderTestSuiteSettings): void {
  const { createAdapter, destroyAdapter, queuedWaits } = settings;

  async function setup(
    context: TestContext,
    options: { intercept?: Interceptor; provider?: Partial<SharedLockProviderSettings> } = {},
  ): Promise<World> {
    const adapter = await createAdapter();
    const intercept: Interceptor = options.intercept ?? ((_method, _args, call) => call());
    const waiting = new Set<string>();
    const providerAdapter = instrument(adapter, (method, args, call) => {
      if (method === "waitForRelease") {
        const claim = args[3] as SharedLockWaitClaim | undefined;
        waiting.add(publicOwner(claim?.lockId ?? ""));
      }
      return intercept(method, args, call).then((value) => {
        if (
          (method === "acquireWriter" || method === "acquireReader") &&
          adapter.waitForRelease === undefined &&
          (value as { acquired?: unknown } | undefined)?.acquired === false
        ) {
          waiting.add(publicOwner(args[1] as string));
        }
        return value;
      });
    });
    const namespace = uniqueNamespace();
    const storedKeys = new Set<string>();
    const newProvider = (overrides: Partial<Omit<SharedLockProviderSettings, "adapter">> = {}) => {
      const provider = new SharedLockProvider({
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
    for (const name of Object.values(SHARED_LOCK_EVENTS)) {
      await provider.addListener(name, (payload) => {
        events.push({ name, payload } as RecordedEvent);
      });
    }
    context.onTestFinished(async () => {
      await Promise.all([...storedKeys].map((key) => adapter.forceRelease(key).catch(() => {})));
      await provider.close();
      await destroyAdapter?.(adapter);
    });
    return {
      adapter,
      provider,
      events,
      newProvider,
      create: (sharedLockSettings, key = KEY) => {
        storedKeys.add(namespace.create(key).toString());
        return provider.create(key, sharedLockSettings);
      },
      storedKey: (key = KEY) => namespace.create(key).toString(),
      untilWaiting: async (sharedLock, queued = 1) => {
        await eventually(`${sharedLock.id} waiting`, () => {
          if (!waiting.has(sharedLock.id)) {
            throw new Error("not waiting yet");
          }
        });
        if (queuedWaits !== undefined && adapter.waitForRelease !== undefined) {
          const key = sharedLock.key.toString();
          await eventually(`${queued} wait(s) queued`, async () => {
            if ((await queuedWaits(key)) < queued) {
              throw new Error("not queued yet");
            }
          });
        }
      },
    };
  }

  describe.concurrent("shared lock provider conformance", () => {
    describe("identity and validation", () => {
      test("create: the key, a generated lock id, the limit and the provider's TTL", async (context) => {
        const world = await setup(context, { provider: { defaultTtl: ms(30_000) } });
        const sharedLock = world.create({ limit: 3 });
        expect(sharedLock.key.get()).toBe(KEY);
        expect(sharedLock.key.toString()).toBe(world.storedKey());
        expect(sharedLock.id).toMatch(HEX_32);
        expect(sharedLock.limit).toBe(3);
        expect(sharedLock.ttl?.toMilliseconds()).toBe(30_000);
        expect(sharedLock.fencingToken).toBeNull();
        expect(world.create({ limit: 1, ttl: null }).ttl).toBeNull();
        expect(world.create({ limit: 1 }).id).not.toBe(sharedLock.id);
      });

      test.for([
        ["0", 0],
        ["a fraction", 1.5],
        ["NaN", Number.NaN],
        ["a string", "3"],
        ["above 1,000,000", 1_000_001],
        ["missing", undefined],
      ] as const)(
        "a limit that is %s is an InvalidArgumentError naming `limit`",
        async ([, limit], context) => {
          const world = await setup(context);
          const create = () => world.create({ limit } as unknown as SharedLockCreateSettings);
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
        expect(() => world.create({ limit: 2, lockId: "" })).toThrow(/lockId/);
        expect(() =>
          world.create({ limit: 2, extra: 1 } as unknown as SharedLockCreateSettings),
        ).toThrow(/extra/);
        expect(() => world.provider.create("", { limit: 2 })).toThrow(InvalidArgumentError);
        const sharedLock = world.create({ limit: 2 });
        expect(() => sharedLock.acquireWriterBlocking({ time: ms(-1) })).toThrow(
          InvalidArgumentError,
        );
        expect(() => sharedLock.acquireReaderBlocking({ interval: ms(0) })).toThrow(
          InvalidArgumentError,
        );
        expect(() => sharedLock.refreshWriter(ms(0))).toThrow(InvalidArgumentError);
        expect(() => sharedLock.refreshReader(ms(0))).toThrow(InvalidArgumentError);
        expect(() => new SharedLockProvider({ adapter: {} as ISharedLockAdapter })).toThrow(
          /shared lock adapter/,
        );
        expect(calls).toEqual([]);
      });

      test("two shared locks given one lock id share their holds", async (context) => {
        const world = await setup(context);
        const first = world.create({ limit: 2, lockId: "worker-7" });
        const second = world.create({ limit: 2, lockId: "worker-7" });
        expect(second.id).toBe("worker-7");
        const token = await first.acquireWriterOrFail();
        expect(await second.acquireWriterOrFail()).toBe(token);
        expect(await second.releaseWriter()).toBe(true);
        expect(await first.releaseWriter()).toBe(false);
      });
    });

    describe("the six states, through both sides", () => {
      test("EXPIRED, WRITER_ACQUIRED and WRITER_UNAVAILABLE (the writer's public id)", async (context) => {
        const world = await setup(context);
        const writer = world.create({ limit: 2, ttl: LONG });
        const other = world.create({ limit: 2 });
        expect(await other.getState()).toEqual({ type: SHARED_LOCK_STATE.EXPIRED });
        const token = await writer.acquireWriterOrFail();
        const own = stateOf(await writer.getState(), SHARED_LOCK_STATE.WRITER_ACQUIRED);
        expect(own.fencingToken).toBe(token);
        expect(own.remainingTime?.toMilliseconds()).toBeGreaterThan(LONG.toMilliseconds() / 2);
        const seen = stateOf(await other.getState(), SHARED_LOCK_STATE.WRITER_UNAVAILABLE);
        expect(seen.owner).toBe(writer.id);
        expect(seen.remainingTime?.toMilliseconds()).toBeGreaterThan(0);
        await writer.releaseWriter();
        expect(await other.getState()).toEqual({ type: SHARED_LOCK_STATE.EXPIRED });
      });

      test("READER_ACQUIRED, READER_UNACQUIRED and READER_LIMIT_REACHED as slots are taken", async (context) => {
        const world = await setup(context);
        const [a, b, c] = [1, 2, 3].map(() => world.create({ limit: 2, ttl: LONG })) as [
          ISharedLock,
          ISharedLock,
          ISharedLock,
        ];
        const token = await a.acquireReaderOrFail();
        expect(await c.getState()).toEqual({
          type: SHARED_LOCK_STATE.READER_UNACQUIRED,
          limit: 2,
          acquiredSlotsCount: 1,
          freeSlotsCount: 1,
          writerWaiting: false,
        });
        expect(await b.acquireReader()).toBe(true);
        expect(await c.getState()).toEqual({
          type: SHARED_LOCK_STATE.READER_LIMIT_REACHED,
          limit: 2,
          acquiredSlotsCount: 2,
          writerWaiting: false,
        });
        expect(await a.getState()).toMatchObject({
          type: SHARED_LOCK_STATE.READER_ACQUIRED,
          limit: 2,
          acquiredSlotsCount: 2,
          freeSlotsCount: 0,
          fencingToken: token,
          writerWaiting: false,
        });
        // A smaller limit of its own is the one in force for this shared lock.
        expect(await world.create({ limit: 1 }).getState()).toMatchObject({
          type: SHARED_LOCK_STATE.READER_LIMIT_REACHED,
          limit: 1,
        });
      });

      test("writerWaiting: once a writer waits, the reader states say so, and no new reader enters", async (context) => {
        const world = await setup(context);
        const reader = world.create({ limit: 3, ttl: LONG });
        await reader.acquireReaderOrFail();
        const writer = world.create({ limit: 3 });
        const writing = started(writer.acquireWriterBlocking({ time: LONG, interval: ms(50) }));
        await world.untilWaiting(writer);
        const newcomer = world.create({ limit: 3 });
        await eventually("the waiting writer is seen", async () =>
          expect(await newcomer.getState()).toMatchObject({
            type: SHARED_LOCK_STATE.READER_UNACQUIRED,
            writerWaiting: true,
          }),
        );
        const refusal = await newcomer.acquireReaderOrFail().catch((caught: unknown) => caught);
        expect(refusal).toBeInstanceOf(LimitReachedReaderSemaphoreError);
        expect(refusal).toMatchObject({ blockedBy: "waiters", lockId: newcomer.id });
        // The reader already inside keeps its slot: it refreshes and re-acquires.
        expect(await reader.refreshReader()).toBe(true);
        expect(await reader.acquireReader()).toBe(true);
        expect(await reader.getState()).toMatchObject({
          type: SHARED_LOCK_STATE.READER_ACQUIRED,
          writerWaiting: true,
        });
        await reader.releaseReader();
        expect(await writing).toBe(true);
        expect(await writer.getState()).toMatchObject({ type: SHARED_LOCK_STATE.WRITER_ACQUIRED });
      });
    });

    describe("the writer's methods", () => {
      test("acquireWriterOrFail resolves to the token; refusals name blockedBy, the writer's public id", async (context) => {
        const world = await setup(context);
        const writer = world.create({ limit: 2 });
        const token = await writer.acquireWriterOrFail();
        expect(writer.fencingToken).toBe(token);
        const other = world.create({ limit: 2 });
        const error = await other.acquireWriterOrFail().catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(FailedAcquireWriterLockError);
        expect(error).toMatchObject({
          key: KEY,
          lockId: other.id,
          blockedBy: "writer",
          owner: writer.id,
        });
        expect(String((error as Error).message)).not.toContain(".");
        await writer.releaseWriter();
        const reader = world.create({ limit: 2 });
        await reader.acquireReaderOrFail();
        await expect(other.acquireWriterOrFail()).rejects.toMatchObject({
          blockedBy: "readers",
          owner: undefined,
        });
      });

      test("one side at a time: a reader is never made a writer, a writer never a reader", async (context) => {
        const world = await setup(context);
        const sharedLock = world.create({ limit: 2 });
        await sharedLock.acquireReaderOrFail();
        await expect(sharedLock.acquireWriterOrFail()).rejects.toMatchObject({
          blockedBy: "readers",
        });
        await sharedLock.releaseReader();
        await sharedLock.acquireWriterOrFail();
        await expect(sharedLock.acquireReaderOrFail()).rejects.toMatchObject({
          blockedBy: "writer",
          owner: sharedLock.id,
        });
      });

      test("re-acquiring its own writer hold keeps the token", async (context) => {
        const world = await setup(context);
        const writer = world.create({ limit: 1 });
        const token = await writer.acquireWriterOrFail();
        expect(await writer.acquireWriterOrFail()).toBe(token);
      });

      test("releaseWriter and releaseWriterOrFail: only the writer, and only its side", async (context) => {
        const world = await setup(context);
        const writer = world.create({ limit: 2 });
        const stranger = world.create({ limit: 2 });
        await writer.acquireWriterOrFail();
        expect(await stranger.releaseWriter()).toBe(false);
        await expect(stranger.releaseWriterOrFail()).rejects.toBeInstanceOf(
          FailedReleaseWriterLockError,
        );
        expect(await writer.releaseReader()).toBe(false);
        expect(await writer.getState()).toMatchObject({ type: SHARED_LOCK_STATE.WRITER_ACQUIRED });
        expect(await writer.releaseWriter()).toBe(true);
        expect(writer.fencingToken).toBeNull();
        expect(await writer.releaseWriter()).toBe(false);
        await expect(writer.releaseWriterOrFail()).rejects.toMatchObject({
          key: KEY,
          lockId: writer.id,
        });
      });

      test("refreshWriter and refreshWriterOrFail: the writer's TTL restarts; a stranger or no TTL fails", async (context) => {
        const world = await setup(context);
        await unlessStalled(async () => {
          const writer = world.create({ limit: 1, ttl: ms(1_000) });
          await writer.forceRelease();
          const acquiredAt = performance.now();
          await writer.acquireWriterOrFail();
          await sleep(500);
          const refreshedAt = performance.now();
          const refreshed = await writer.refreshWriter();
          const state = await writer.getState();
          within(acquiredAt, 900, "acquire, pause and refresh");
          within(refreshedAt, 250, "refresh and getState");
          expect(refreshed).toBe(true);
          const own = stateOf(state, SHARED_LOCK_STATE.WRITER_ACQUIRED);
          expect(own.remainingTime?.toMilliseconds()).toBeGreaterThan(750);
          expect(await writer.refreshReader()).toBe(false);
          await writer.releaseWriter();
        });
        const stranger = world.create({ limit: 1 });
        expect(await stranger.refreshWriter()).toBe(false);
        await expect(stranger.refreshWriterOrFail()).rejects.toBeInstanceOf(
          FailedRefreshWriterLockError,
        );
        const forever = world.create({ limit: 1, ttl: null });
        await forever.acquireWriterOrFail();
        expect(await forever.refreshWriter()).toBe(false);
      });

      test("forceReleaseWriter frees only a writer: readers stay; the former writer's release fails", async (context) => {
        const world = await setup(context);
        const reader = world.create({ limit: 2 });
        await reader.acquireReaderOrFail();
        expect(await world.create({ limit: 2 }).forceReleaseWriter()).toBe(false);
        expect(await reader.getState()).toMatchObject({ type: SHARED_LOCK_STATE.READER_ACQUIRED });
        await reader.releaseReader();
        const writer = world.create({ limit: 2 });
        await writer.acquireWriterOrFail();
        expect(await world.create({ limit: 2 }).forceReleaseWriter()).toBe(true);
        expect(await writer.getState()).toEqual({ type: SHARED_LOCK_STATE.EXPIRED });
        expect(await writer.releaseWriter()).toBe(false);
      });
    });

    describe("the readers' methods", () => {
      test("acquireReaderOrFail resolves to the token; refusals name blockedBy, the writer, the limit", async (context) => {
        const world = await setup(context);
        const first = world.create({ limit: 1 });
        const token = await first.acquireReaderOrFail();
        expect(first.fencingToken).toBe(token);
        const second = world.create({ limit: 1 });
        const full = await second.acquireReaderOrFail().catch((caught: unknown) => caught);
        expect(full).toBeInstanceOf(LimitReachedReaderSemaphoreError);
        expect(full).toMatchObject({ key: KEY, lockId: second.id, blockedBy: "limit", limit: 1 });
        await first.releaseReader();
        const writer = world.create({ limit: 1 });
        await writer.acquireWriterOrFail();
        await expect(second.acquireReaderOrFail()).rejects.toMatchObject({
          blockedBy: "writer",
          owner: writer.id,
          limit: undefined,
        });
      });

      test("up to `limit` readers hold together; a holder re-acquiring keeps its token, even at the limit", async (context) => {
        const world = await setup(context);
        const readers = [1, 2, 3].map(() => world.create({ limit: 3 }));
        const tokens = [];
        for (const reader of readers) {
          tokens.push(await reader.acquireReaderOrFail());
        }
        expect(new Set(tokens).size).toBe(3);
        expect(await readers[0]?.acquireReaderOrFail()).toBe(tokens[0]);
        expect(await world.create({ limit: 3 }).acquireReader()).toBe(false);
      });

      test("releaseReader, refreshReader and their OrFail forms: only the slot's holder", async (context) => {
        const world = await setup(context);
        const reader = world.create({ limit: 2, ttl: LONG });
        const stranger = world.create({ limit: 2 });
        await reader.acquireReaderOrFail();
        expect(await stranger.releaseReader()).toBe(false);
        await expect(stranger.releaseReaderOrFail()).rejects.toBeInstanceOf(
          FailedReleaseReaderSemaphoreError,
        );
        expect(await stranger.refreshReader()).toBe(false);
        await expect(stranger.refreshReaderOrFail()).rejects.toBeInstanceOf(
          FailedRefreshReaderSemaphoreError,
        );
        expect(await reader.releaseWriter()).toBe(false);
        expect(await reader.refreshWriter()).toBe(false);
        expect(await reader.refreshReader(ms(20_000))).toBe(true);
        const state = stateOf(await reader.getState(), SHARED_LOCK_STATE.READER_ACQUIRED);
        expect(state.remainingTime?.toMilliseconds()).toBeGreaterThan(LONG.toMilliseconds());
        expect(await reader.releaseReader()).toBe(true);
        expect(reader.fencingToken).toBeNull();
        await expect(reader.releaseReaderOrFail()).rejects.toMatchObject({ lockId: reader.id });
        const forever = world.create({ limit: 2, ttl: null });
        await forever.acquireReaderOrFail();
        expect(await forever.refreshReader()).toBe(false);
      });

      test("forceReleaseAllReaders frees every slot and no writer; forceRelease frees everyone", async (context) => {
        const world = await setup(context);
        const [a, b] = [world.create({ limit: 2 }), world.create({ limit: 2 })];
        await a.acquireReaderOrFail();
        await b.acquireReaderOrFail();
        expect(await world.create({ limit: 2 }).forceReleaseAllReaders()).toBe(true);
        expect(await a.getState()).toEqual({ type: SHARED_LOCK_STATE.EXPIRED });
        expect(await b.releaseReader()).toBe(false);
        const writer = world.create({ limit: 2 });
        await writer.acquireWriterOrFail();
        expect(await a.forceReleaseAllReaders()).toBe(false);
        expect(await writer.getState()).toMatchObject({ type: SHARED_LOCK_STATE.WRITER_ACQUIRED });
        expect(await writer.forceRelease()).toBe(true);
        expect(writer.fencingToken).toBeNull();
        expect(await writer.getState()).toEqual({ type: SHARED_LOCK_STATE.EXPIRED });
        await a.acquireReaderOrFail();
        expect(await b.forceRelease()).toBe(true);
        expect(await a.getState()).toEqual({ type: SHARED_LOCK_STATE.EXPIRED });
        expect(await b.forceRelease()).toBe(false);
      });

      test("Symbol.asyncDispose releases whichever side this instance holds, and does nothing without one", async (context) => {
        const world = await setup(context);
        const sharedLock = world.create({ limit: 1 });
        await sharedLock[Symbol.asyncDispose]();
        await sharedLock.acquireReaderOrFail();
        await sharedLock[Symbol.asyncDispose]();
        expect(await sharedLock.getState()).toEqual({ type: SHARED_LOCK_STATE.EXPIRED });
        await sharedLock.acquireWriterOrFail();
        await sharedLock[Symbol.asyncDispose]();
        expect(await sharedLock.getState()).toEqual({ type: SHARED_LOCK_STATE.EXPIRED });
        await eventually("both releases told", () =>
          expect(
            world.events
              .filter((event) => event.payload.lockId === sharedLock.id)
              .map((event) => event.name)
              .filter((name) => name.endsWith("RELEASED") || name.endsWith("FAILED_RELEASE")),
          ).toEqual([SHARED_LOCK_EVENTS.READER_RELEASED, SHARED_LOCK_EVENTS.WRITER_RELEASED]),
        );
      });
    });

    describe("expiry", () => {
      test("a crashed reader keeps no writer out past its TTL: acquireWriter alone, no other call", async (context) => {
        const calls: string[] = [];
        const world = await setup(context, {
          intercept: (method, _args, call) => {
            calls.push(method);
            return call();
          },
        });
        const crashed = world.create({ limit: 2, ttl: ms(100) });
        await crashed.acquireReaderOrFail();
        const writer = world.create({ limit: 2 });
        calls.length = 0;
        await eventually("the writer admitted after the reader's TTL", async () =>
          expect(await writer.acquireWriter()).toBe(true),
        );
        expect(new Set(calls)).toEqual(new Set(["acquireWriter"]));
      });

      test("a blocking writer behind a crashed reader is served as the reader's TTL passes", async (context) => {
        const world = await setup(context);
        await unlessStalled(async () => {
          const key = `${KEY}-${Math.random()}`;
          const crashed = world.create({ limit: 2, ttl: ms(300) }, key);
          const acquiredAt = performance.now();
          await crashed.acquireReaderOrFail();
          within(acquiredAt, 250, "the reader's acquire");
          const writer = world.create({ limit: 2 }, key);
          // The interval is far longer than the TTL: the wait must end at the reader's expiry.
          const took = await outcomeWithin(
            writer.acquireWriterBlocking({ time: LONG, interval: ms(5_000) }),
          );
          expect(took.value).toBe(true);
          expect(took.took).toBeLessThan(2_000);
        });
      });

      test("a crashed writer keeps no reader out past its TTL", async (context) => {
        const world = await setup(context);
        const crashed = world.create({ limit: 2, ttl: ms(100) });
        await crashed.acquireWriterOrFail();
        const reader = world.create({ limit: 2 });
        await eventually("the reader admitted after the writer's TTL", async () =>
          expect(await reader.acquireReader()).toBe(true),
        );
        expect(await crashed.releaseWriter()).toBe(false);
        expect(await crashed.refreshWriter()).toBe(false);
      });
    });

    describe("fencing tokens", () => {
      test("one counter for both sides: a writer's token is above every reader's before it, and on", async (context) => {
        const world = await setup(context);
        const tokens: number[] = [];
        const readers = [1, 2, 3].map(() => world.create({ limit: 3, ttl: ms(150) }));
        for (const reader of readers) {
          tokens.push(await reader.acquireReaderOrFail());
        }
        await readers[0]?.releaseReader();
        await readers[1]?.forceReleaseAllReaders();
        const writer = world.create({ limit: 3, ttl: ms(150) });
        tokens.push(await writer.acquireWriterOrFail());
        await writer.releaseWriter();
        tokens.push((await readers[2]?.acquireReaderOrFail()) ?? Number.NaN);
        await readers[2]?.forceRelease();
        tokens.push(await writer.acquireWriterOrFail());
        await eventually("the writer expired", async () =>
          expect(await writer.getState()).toEqual({ type: SHARED_LOCK_STATE.EXPIRED }),
        );
        tokens.push(await writer.acquireWriterOrFail());
        for (const [index, token] of tokens.entries()) {
          if (index > 0) {
            expect(token).toBeGreaterThan(tokens[index - 1] ?? Number.NaN);
          }
        }
        expect(await writer.getState()).toMatchObject({ fencingToken: tokens.at(-1) });
      });
    });

    describe("blocking acquires", () => {
      test("a writer waits for the readers to leave; readers wait for the writer", async (context) => {
        const world = await setup(context);
        const reader = world.create({ limit: 2 });
        const readerToken = await reader.acquireReaderOrFail();
        const writer = world.create({ limit: 2 });
        const writing = started(
          writer.acquireWriterBlockingOrFail({ time: LONG, interval: ms(20) }),
        );
        await world.untilWaiting(writer);
        await reader.releaseReader();
        const writerToken = await writing;
        expect(writerToken).toBeGreaterThan(readerToken);
        const later = world.create({ limit: 2 });
        const reading = started(
          later.acquireReaderBlockingOrFail({ time: LONG, interval: ms(20) }),
        );
        await world.untilWaiting(later);
        await writer.releaseWriter();
        expect(await reading).toBeGreaterThan(writerToken);
      });

      test("gives up after its time: false, or the side's error naming what blocked it", async (context) => {
        const world = await setup(context);
        const writer = world.create({ limit: 1 });
        await writer.acquireWriterOrFail();
        const other = world.create({ limit: 1 });
        const quick = { time: ms(200), interval: ms(50) };
        expect(await other.acquireWriterBlocking(quick)).toBe(false);
        await expect(other.acquireWriterBlockingOrFail(quick)).rejects.toMatchObject({
          name: "FailedAcquireWriterLockError",
          blockedBy: "writer",
        });
        expect(await other.acquireReaderBlocking(quick)).toBe(false);
        await expect(other.acquireReaderBlockingOrFail(quick)).rejects.toMatchObject({
          name: "LimitReachedReaderSemaphoreError",
          blockedBy: "writer",
        });
      });

      test("an abort mid-wait rejects with the reason and leaves no claim: the release goes elsewhere", async (context) => {
        const world = await setup(context);
        const reader = world.create({ limit: 1 });
        await reader.acquireReaderOrFail();
        const quitter = world.create({ limit: 1 });
        const controller = new AbortController();
        const waiting = started(
          quitter
            .acquireWriterBlocking({ time: LONG, interval: ms(20) })
            .withSignal(controller.signal),
        );
        await world.untilWaiting(quitter);
        const reason = new Error("gave up");
        controller.abort(reason);
        expect((await outcomeWithin(waiting)).error).toBe(reason);
        await reader.releaseReader();
        await eventually("the aborted claim holds nothing", async () =>
          expect(await quitter.getState()).toEqual({ type: SHARED_LOCK_STATE.EXPIRED }),
        );
        const next = world.create({ limit: 1 });
        if (world.adapter.waitForRelease === undefined) {
          // A polling writer's recorded intent outlives its abort until its deadline (its
          // interval plus 1 s), no longer.
          await eventually("the aborted writer's intent lapsed", async () =>
            expect(await next.acquireWriter()).toBe(true),
          );
        } else {
          expect(await next.acquireWriter()).toBe(true);
        }
      });

      test("a one-shot acquireWriter records no intent; a blocking one on a polling adapter asks for its interval plus a grace", async (context) => {
        const intents: (number | null)[] = [];
        const world = await setup(context, {
          intercept: (method, args, call) => {
            if (method === "acquireWriter") {
              intents.push((args[3] as TimeSpan | null)?.toMilliseconds() ?? null);
            }
            return call();
          },
        });
        const reader = world.create({ limit: 1 });
        await reader.acquireReaderOrFail();
        const writer = world.create({ limit: 1 });
        expect(await writer.acquireWriter()).toBe(false);
        expect(intents).toEqual([null]);
        expect(await writer.acquireWriterBlocking({ time: ms(300), interval: ms(100) })).toBe(
          false,
        );
        const blocking = intents.slice(1);
        expect(blocking.length).toBeGreaterThan(0);
        if (world.adapter.waitForRelease === undefined) {
          // Each attempt asks its intent to last until its next attempt (at most the interval,
          // or the time left), plus 1 s; an attempt with no time left after it asks for none.
          expect(blocking[0]).toBe(1_100);
          for (const intent of blocking) {
            expect(intent === null || (intent >= 1_000 && intent <= 1_100)).toBe(true);
          }
        } else {
          expect(blocking.every((intent) => intent === null)).toBe(true);
        }
      });
      test.for([
        ["writer", "acquireWriter", "releaseWriter"],
        ["reader", "acquireReader", "releaseReader"],
      ] as const)(
        "a %s acquire aborted while its request is in flight: the hold granted late is released on its side",
        async ([side, acquire, release], context) => {
          const releases: string[] = [];
          const world = await setup(context, {
            intercept: async (method, _args, call) => {
              if (method === acquire) {
                // The request is on the wire: the backend grants it after the caller gave up.
                await sleep(200);
              }
              if (method === "releaseWriter" || method === "releaseReader") {
                releases.push(method);
              }
              return call();
            },
          });
          const sharedLock = world.create({ limit: 2, ttl: LONG });
          const controller = new AbortController();
          setTimeout(() => controller.abort(new Error("gave up")), 50);
          const task = side === "writer" ? sharedLock.acquireWriter() : sharedLock.acquireReader();
          await expect(task.withSignal(controller.signal)).rejects.toThrow("gave up");
          await eventually("the late grant let go", async () => {
            expect(releases).toEqual([release]);
            expect(await world.adapter.getState(world.storedKey(), "nobody")).toBeNull();
          });
          expect(sharedLock.fencingToken).toBeNull();
        },
      );

      test("a backend that does not answer: the blocking acquire ends at its cut-off, with a TimeoutError cause", async (context) => {
        let hanging = true;
        const world = await setup(context, {
          intercept: async (method, _args, call) => {
            if (hanging && (method === "acquireWriter" || method === "waitForRelease")) {
              await sleep(1_000);
            }
            return call();
          },
        });
        const writer = world.create({ limit: 1, ttl: LONG });
        const outcome = await outcomeWithin(
          writer.acquireWriterBlockingOrFail({ time: ms(100), interval: ms(50) }),
        );
        hanging = false;
        expect(outcome.took).toBeLessThan(900);
        expect(outcome.error).toBeInstanceOf(FailedAcquireWriterLockError);
        expect(outcome.error).toMatchObject({
          blockedBy: undefined,
          cause: { name: "TimeoutError" },
        });
        await eventually("UNEXPECTED_ERROR", () =>
          expect(
            eventsOf(world.events, SHARED_LOCK_EVENTS.UNEXPECTED_ERROR, writer.id)[0],
          ).toMatchObject({
            operation: expect.stringMatching(/^(acquireWriter|waitForRelease)$/),
            error: { name: "TimeoutError" },
          }),
        );
        // The late answer's grant is let go: the key ends free.
        await eventually("the late grant let go", async () =>
          expect(await world.create({ limit: 1 }).getState()).toEqual({
            type: SHARED_LOCK_STATE.EXPIRED,
          }),
        );
      });
    });

    describe("writer preference", () => {
      test("a writer is served while four readers keep coming (20 ms reads, reader TTL 2 s)", async (context) => {
        const world = await setup(context);
        const readerTtl = 2_000;
        let writing = true;
        let inside = 0;
        let writerInside = false;
        let overlapped = false;
        const readerLoop = async (index: number) => {
          const reader = world.create({ limit: 8, ttl: ms(readerTtl) });
          while (writing) {
            await reader.runReaderBlockingOrFail(
              async () => {
                inside += 1;
                overlapped ||= writerInside;
                await sleep(20);
                inside -= 1;
              },
              { time: LONG, interval: ms(10 + index) },
            );
          }
        };
        const loops = [0, 1, 2, 3].map((index) => readerLoop(index));
        await eventually("the readers are in", () => expect(inside).toBeGreaterThan(0));
        const writer = world.create({ limit: 8, ttl: LONG });
        const from = performance.now();
        const ran = await writer.runWriterBlockingOrFail(
          async () => {
            writerInside = true;
            overlapped ||= inside > 0;
            await sleep(5);
            writerInside = false;
            return performance.now() - from;
          },
          { time: LONG, interval: ms(20) },
        );
        writing = false;
        await Promise.all(loops);
        expect(overlapped).toBe(false);
        // Served within one reader TTL however busy the machine (in practice, within a read).
        expect(ran).toBeLessThan(readerTtl);
      });

      test("where the adapter signals, the key passes in arrival order: W1, then R2 and R3 together, then W2", async (context) => {
        const world = await setup(context);
        if (world.adapter.waitForRelease === undefined) {
          context.skip();
        }
        const first = world.create({ limit: 4 });
        await first.acquireReaderOrFail();
        const granted: string[] = [];
        const grant = (name: string, sharedLock: ISharedLock, task: PromiseLike<boolean>) =>
          started(
            Promise.resolve(task).then((taken) => {
              granted.push(name);
              return { taken, sharedLock };
            }),
          );
        const blocking = { time: LONG, interval: ms(20) };
        const w1 = world.create({ limit: 4 });
        const w1Granted = grant("W1", w1, w1.acquireWriterBlocking(blocking));
        await world.untilWaiting(w1, 1);
        const r2 = world.create({ limit: 4 });
        const r2Granted = grant("R2", r2, r2.acquireReaderBlocking(blocking));
        await world.untilWaiting(r2, 2);
        const r3 = world.create({ limit: 4 });
        const r3Granted = grant("R3", r3, r3.acquireReaderBlocking(blocking));
        await world.untilWaiting(r3, 3);
        const w2 = world.create({ limit: 4 });
        const w2Granted = grant("W2", w2, w2.acquireWriterBlocking(blocking));
        await world.untilWaiting(w2, 4);
        await first.releaseReader();
        expect((await w1Granted).taken).toBe(true);
        const w1Token = w1.fencingToken;
        expect(await world.create({ limit: 4 }).acquireReader()).toBe(false);
        await w1.releaseWriter();
        expect((await r2Granted).taken).toBe(true);
        expect((await r3Granted).taken).toBe(true);
        expect(await r2.getState()).toMatchObject({
          type: SHARED_LOCK_STATE.READER_ACQUIRED,
          acquiredSlotsCount: 2,
          writerWaiting: true,
        });
        const r3Token = r3.fencingToken;
        expect(r3Token).toBeGreaterThan(w1Token ?? Number.NaN);
        await r2.releaseReader();
        expect(granted).toEqual(["W1", "R2", "R3"]);
        await r3.releaseReader();
        expect((await w2Granted).taken).toBe(true);
        expect(granted).toEqual(["W1", "R2", "R3", "W2"]);
        expect(w2.fencingToken).toBeGreaterThan(r3Token ?? Number.NaN);
      });
    });

    describe("run, runOrFail, runBlocking, runBlockingOrFail on both sides", () => {
      test("runWriter and runReader give the token, answer [true, value] and release; [false, null] when refused", async (context) => {
        const world = await setup(context);
        const sharedLock = world.create({ limit: 1 });
        const [wrote, writerToken] = await sharedLock.runWriter(({ fencingToken, signal }) => {
          expect(signal.aborted).toBe(false);
          return fencingToken;
        });
        expect(wrote).toBe(true);
        expect(writerToken).toEqual(expect.any(Number));
        const [read, readerToken] = await sharedLock.runReader(({ fencingToken }) => fencingToken);
        expect(read).toBe(true);
        expect(readerToken).toBeGreaterThan(writerToken ?? Number.NaN);
        expect(await sharedLock.getState()).toEqual({ type: SHARED_LOCK_STATE.EXPIRED });
        await world.create({ limit: 1 }).acquireWriterOrFail();
        expect(await sharedLock.runReader(() => "ran")).toEqual([false, null]);
        expect(await sharedLock.runWriter(() => "ran")).toEqual([false, null]);
        await expect(sharedLock.runWriterOrFail(() => "ran")).rejects.toBeInstanceOf(
          FailedAcquireWriterLockError,
        );
        await expect(sharedLock.runReaderOrFail(() => "ran")).rejects.toBeInstanceOf(
          LimitReachedReaderSemaphoreError,
        );
      });

      test("the function's error is thrown, and the hold is released all the same", async (context) => {
        const world = await setup(context);
        const sharedLock = world.create({ limit: 1 });
        const failure = new Error("the work failed");
        await expect(
          sharedLock.runWriterBlockingOrFail(() => {
            throw failure;
          }),
        ).rejects.toBe(failure);
        await expect(
          sharedLock.runReaderBlockingOrFail(() => {
            throw failure;
          }),
        ).rejects.toBe(failure);
        expect(await sharedLock.getState()).toEqual({ type: SHARED_LOCK_STATE.EXPIRED });
      });

      test("runReaderBlocking and runWriterBlocking wait for the other side, then run", async (context) => {
        const world = await setup(context);
        const writer = world.create({ limit: 2 });
        await writer.acquireWriterOrFail();
        const reader = world.create({ limit: 2 });
        const reading = started(
          reader.runReaderBlocking(() => "read", { time: LONG, interval: ms(20) }),
        );
        await world.untilWaiting(reader);
        await writer.releaseWriter();
        expect(await reading).toEqual([true, "read"]);
        await reader.acquireReaderOrFail();
        const writing = started(
          writer.runWriterBlocking(() => "wrote", { time: LONG, interval: ms(20) }),
        );
        await world.untilWaiting(writer);
        await reader.releaseReader();
        expect(await writing).toEqual([true, "wrote"]);
      });

      test("auto-refresh keeps a 900 ms writer hold alive through a 1.5 s function", async (context) => {
        const world = await setup(context);
        let attempt = 0;
        let writer = world.create({ limit: 1 });
        let seen = { attempts: [] as boolean[], state: {}, aborted: true };
        await unlessStalled(async () => {
          attempt += 1;
          const key = `${KEY}-${attempt}`;
          writer = world.create({ limit: 1, ttl: ms(900) }, key);
          const competitor = world.create({ limit: 1 }, key);
          seen = await writer.runWriterOrFail(async ({ signal }) => {
            const attempts: boolean[] = [];
            for (let i = 0; i < 5; i++) {
              const stepAt = performance.now();
              await sleep(300);
              attempts.push(await competitor.acquireReader());
              within(stepAt, 600, "a step of 300 ms and an acquire");
            }
            return { attempts, state: await writer.getState(), aborted: signal.aborted };
          });
        });
        expect(seen.attempts).toEqual([false, false, false, false, false]);
        expect(seen.state).toMatchObject({ type: SHARED_LOCK_STATE.WRITER_ACQUIRED });
        expect(seen.aborted).toBe(false);
        await eventually("two refreshes and the release", () => {
          expect(
            eventsOf(world.events, SHARED_LOCK_EVENTS.WRITER_REFRESHED, writer.id).length,
          ).toBeGreaterThanOrEqual(2);
          expect(
            eventsOf(world.events, SHARED_LOCK_EVENTS.WRITER_RELEASED, writer.id),
          ).toHaveLength(1);
        });
      });

      test.for([
        ["writer", "WRITER_FAILED_REFRESH"],
        ["reader", "READER_FAILED_REFRESH"],
      ] as const)(
        "aborts the function's signal with SharedLockLostError (side %s) when the hold is lost",
        async ([side, failed], context) => {
          const world = await setup(context);
          const sharedLock = world.create({ limit: 2, ttl: ms(300) });
          const fn = async ({ signal }: { signal: AbortSignal }) => {
            await world.create({ limit: 2 }).forceRelease();
            return { aborted: await abortedWithin(signal), reason: signal.reason as unknown };
          };
          const outcome = await (side === "writer"
            ? sharedLock.runWriterOrFail(fn)
            : sharedLock.runReaderOrFail(fn));
          expect(outcome.aborted).toBe(true);
          expect(outcome.reason).toBeInstanceOf(SharedLockLostError);
          expect(outcome.reason).toMatchObject({ side, lockId: sharedLock.id });
          await eventually(failed, () =>
            expect(
              eventsOf(world.events, SHARED_LOCK_EVENTS[failed], sharedLock.id).length,
            ).toBeGreaterThan(0),
          );
        },
      );
    });

    describe("events", () => {
      test("each operation's event, in order, carrying the shared lock, key and public id", async (context) => {
        const world = await setup(context);
        const a = world.create({ limit: 1, ttl: LONG });
        const b = world.create({ limit: 1, ttl: LONG });
        await a.acquireWriter();
        await b.acquireWriter();
        await b.acquireReader();
        await a.refreshWriter();
        await b.releaseWriter();
        await b.refreshWriter();
        await a.releaseWriter();
        await a.forceReleaseWriter();
        await b.acquireReader();
        await a.acquireReader();
        await b.refreshReader();
        await a.releaseReader();
        await a.refreshReader();
        await b.releaseReader();
        await a.forceReleaseAllReaders();
        await a.forceRelease();
        const names = (lockId: string, count: number) =>
          eventually(`the events of ${lockId}`, () => {
            const heard = world.events
              .filter((event) => event.payload.lockId === lockId)
              .map((event) => event.name);
            expect(heard.length).toBeGreaterThanOrEqual(count);
            return heard;
          });
        expect(await names(a.id, 9)).toEqual([
          SHARED_LOCK_EVENTS.WRITER_ACQUIRED,
          SHARED_LOCK_EVENTS.WRITER_REFRESHED,
          SHARED_LOCK_EVENTS.WRITER_RELEASED,
          SHARED_LOCK_EVENTS.WRITER_FORCE_RELEASED,
          SHARED_LOCK_EVENTS.READER_UNAVAILABLE,
          SHARED_LOCK_EVENTS.READER_FAILED_RELEASE,
          SHARED_LOCK_EVENTS.READER_FAILED_REFRESH,
          SHARED_LOCK_EVENTS.READER_ALL_FORCE_RELEASED,
          SHARED_LOCK_EVENTS.FORCE_RELEASED,
        ]);
        expect(await names(b.id, 7)).toEqual([
          SHARED_LOCK_EVENTS.WRITER_UNAVAILABLE,
          SHARED_LOCK_EVENTS.READER_UNAVAILABLE,
          SHARED_LOCK_EVENTS.WRITER_FAILED_RELEASE,
          SHARED_LOCK_EVENTS.WRITER_FAILED_REFRESH,
          SHARED_LOCK_EVENTS.READER_ACQUIRED,
          SHARED_LOCK_EVENTS.READER_REFRESHED,
          SHARED_LOCK_EVENTS.READER_RELEASED,
        ]);
        expect(eventsOf(world.events, SHARED_LOCK_EVENTS.WRITER_ACQUIRED, a.id)[0]).toMatchObject({
          sharedLock: a,
          key: KEY,
          lockId: a.id,
          fencingToken: expect.any(Number),
          ttl: LONG,
        });
        expect(eventsOf(world.events, SHARED_LOCK_EVENTS.WRITER_UNAVAILABLE, b.id)[0]).toEqual(
          expect.objectContaining({
            blockedBy: "writer",
            owner: a.id,
            acquiredSlotsCount: null,
          }),
        );
        expect(eventsOf(world.events, SHARED_LOCK_EVENTS.READER_UNAVAILABLE, b.id)[0]).toEqual(
          expect.objectContaining({ blockedBy: "writer", owner: a.id, limit: null }),
        );
        expect(eventsOf(world.events, SHARED_LOCK_EVENTS.READER_UNAVAILABLE, a.id)[0]).toEqual(
          expect.objectContaining({
            blockedBy: "limit",
            owner: null,
            limit: 1,
            acquiredSlotsCount: 1,
          }),
        );
        expect(eventsOf(world.events, SHARED_LOCK_EVENTS.READER_ACQUIRED, b.id)[0]).toMatchObject({
          limit: 1,
        });
        expect(
          eventsOf(world.events, SHARED_LOCK_EVENTS.WRITER_FORCE_RELEASED, a.id)[0],
        ).toMatchObject({ hasReleased: false });
        expect(eventsOf(world.events, SHARED_LOCK_EVENTS.FORCE_RELEASED, a.id)[0]).toMatchObject({
          hasReleased: false,
        });
      });

      test("a misspelt event name is an InvalidArgumentError", async (context) => {
        const world = await setup(context);
        await expect(
          world.provider.addListener("ACQUIRED" as SharedLockEventName, () => {}),
        ).rejects.toThrow(/is not a shared lock event/);
      });
    });

    describe("backend failures", () => {
      test.for([
        ["acquireWriter", (sharedLock: ISharedLock) => sharedLock.acquireWriter()],
        ["acquireReader", (sharedLock: ISharedLock) => sharedLock.acquireReader()],
        ["releaseReader", (sharedLock: ISharedLock) => sharedLock.releaseReader()],
        ["refreshWriter", (sharedLock: ISharedLock) => sharedLock.refreshWriter()],
        ["forceRelease", (sharedLock: ISharedLock) => sharedLock.forceRelease()],
        ["getState", (sharedLock: ISharedLock) => sharedLock.getState()],
      ] as const)(
        "a failing %s: SharedLockBackendError naming it, with its cause, and UNEXPECTED_ERROR",
        async ([operation, act], context) => {
          const cause = new Error("connection reset");
          const world = await setup(context, {
            intercept: (method, _args, call) =>
              method === operation ? Promise.reject(cause) : call(),
          });
          const sharedLock = world.create({ limit: 1 });
          const error = await Promise.resolve(act(sharedLock)).catch((caught: unknown) => caught);
          expect(error).toBeInstanceOf(SharedLockBackendError);
          expect(error).toMatchObject({ key: KEY, operation, cause });
          await eventually("UNEXPECTED_ERROR", () =>
            expect(
              eventsOf(world.events, SHARED_LOCK_EVENTS.UNEXPECTED_ERROR, sharedLock.id)[0],
            ).toMatchObject({ operation, error: cause }),
          );
        },
      );

      test("an answer of the wrong shape: SharedLockAdapterResultError, never a refusal", async (context) => {
        const world = await setup(context, {
          intercept: (method, _args, call) =>
            method === "acquireReader"
              ? Promise.resolve({ acquired: false, blockedBy: "nobody", remainingTime: null })
              : method === "getState"
                ? Promise.resolve({ heldBy: "readers", limit: 0 })
                : call(),
        });
        const sharedLock = world.create({ limit: 1 });
        await expect(sharedLock.acquireReader()).rejects.toBeInstanceOf(
          SharedLockAdapterResultError,
        );
        await expect(sharedLock.getState()).rejects.toMatchObject({
          name: "SharedLockAdapterResultError",
          operation: "getState",
        });
      });
    });

    describe("serialization", () => {
      test("a serialized shared lock revives in another provider and can release the reader slot it holds", async (context) => {
        const serde = new Serde(new SuperJsonSerdeAdapter());
        const world = await setup(context);
        const provider = world.newProvider({ serde, providerId: "shared" });
        const sharedLock = provider.create(KEY, { limit: 2, ttl: LONG });
        const token = await sharedLock.acquireReaderOrFail();
        const text = serde.serialize(sharedLock);
        expect(JSON.parse(text).body.json).not.toHaveProperty("fencingToken");
        const elsewhere = new Serde(new SuperJsonSerdeAdapter());
        world.newProvider({ serde: elsewhere, providerId: "shared" });
        const revived = elsewhere.deserialize<ISharedLock>(text);
        expect(revived).toMatchObject({ id: sharedLock.id, limit: 2 });
        expect(revived.key.get()).toBe(KEY);
        expect(revived.ttl?.toMilliseconds()).toBe(LONG.toMilliseconds());
        expect(revived.fencingToken).toBeNull();
        expect(await revived.getState()).toMatchObject({
          type: SHARED_LOCK_STATE.READER_ACQUIRED,
          fencingToken: token,
        });
        expect(revived.fencingToken).toBe(token);
        expect(await revived.releaseReader()).toBe(true);
        expect(await sharedLock.getState()).toEqual({ type: SHARED_LOCK_STATE.EXPIRED });
      });

      test("a tampered document is refused, or acts as a stranger that holds nothing", async (context) => {
        const serde = new Serde(new SuperJsonSerdeAdapter());
        const world = await setup(context);
        const provider = world.newProvider({ serde, providerId: "tamper" });
        const sharedLock = provider.create(KEY, { limit: 2 });
        await sharedLock.acquireWriterOrFail();
        const text = serde.serialize(sharedLock);
        const forged = serde.deserialize<ISharedLock>(
          tamper(text, (data) => {
            data.proof = "0".repeat(32);
          }),
        );
        expect(await forged.releaseWriter()).toBe(false);
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
        ]) {
          expect(() => serde.deserialize(tamper(text, edit))).toThrow(SerdeError);
        }
        expect(await sharedLock.getState()).toMatchObject({
          type: SHARED_LOCK_STATE.WRITER_ACQUIRED,
        });
      });

      test("a serde the provider was not given refuses the shared lock", async (context) => {
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
    ] as const)("shifted %s changes neither exclusion nor expiry", async ([, shift], context) => {
      const world = await setup(context);
      const realNow = Date.now.bind(Date);
      const spy = vi.spyOn(Date, "now").mockImplementation(() => realNow() + shift);
      context.onTestFinished(() => spy.mockRestore());
      let writer = world.create({ limit: 1 });
      let attempt = 0;
      await unlessStalled(async () => {
        attempt += 1;
        const key = `${KEY}-${attempt}`;
        writer = world.create({ limit: 1, ttl: ms(400) }, key);
        const acquiredAt = performance.now();
        await writer.acquireWriterOrFail();
        const state = await writer.getState();
        const reader = await world.create({ limit: 1 }, key).acquireReader();
        within(acquiredAt, 300, "acquire, getState and a reader's acquire");
        const own = stateOf(state, SHARED_LOCK_STATE.WRITER_ACQUIRED);
        expect(own.remainingTime?.toMilliseconds()).toBeGreaterThan(0);
        expect(own.remainingTime?.toMilliseconds()).toBeLessThanOrEqual(400);
        expect(reader).toBe(false);
      });
      await eventually("the writer expired on the backend's clock", async () =>
        expect((await writer.getState()).type).toBe(SHARED_LOCK_STATE.EXPIRED),
      );
      expect(await world.create({ limit: 1 }, writer.key.get()).acquireReader()).toBe(true);
    });
  });
}
