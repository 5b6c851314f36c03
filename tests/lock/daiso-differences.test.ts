// One test per row of "Where hasp deliberately differs" in docs/migrating.md: daiso-core's
// behaviour (v0.49.1) → hasp's. Each test asserts hasp's side, so that a change of it fails here
// and the table is revisited.
import { describe, expect, test, vi } from "vitest";
import { InvalidArgumentError } from "../../src/errors/invalid-argument-error.js";
import { MemoryLockAdapter } from "../../src/lock/adapters/memory/memory-lock-adapter.js";
import type { LockAcquireResult } from "../../src/lock/contracts/lock-adapter.js";
import {
  FailedAcquireLockError,
  isFailedAcquireLockError,
  LockAdapterResultError,
} from "../../src/lock/contracts/lock-errors.js";
import { LOCK_EVENTS, type LockEventName } from "../../src/lock/contracts/lock-events.js";
import { LOCK_STATE } from "../../src/lock/contracts/lock-state.js";
import { LockProvider } from "../../src/lock/lock-provider.js";
import { TimeSpan } from "../../src/time-span/time-span.js";

const LONG = TimeSpan.fromSeconds(10);

/** A provider on a fresh memory adapter, and the names of the events of `lockId`, in order. */
async function setup(settings: Partial<ConstructorParameters<typeof LockProvider>[0]> = {}) {
  const adapter = new MemoryLockAdapter();
  const provider = new LockProvider({ adapter, ...settings });
  const heard: Array<{ name: LockEventName; lockId: string }> = [];
  for (const name of Object.values(LOCK_EVENTS)) {
    await provider.addListener(name, ({ lockId }) => void heard.push({ name, lockId }));
  }
  const eventsOf = (lockId: string) =>
    heard.filter((event) => event.lockId === lockId).map((event) => event.name);
  return { adapter, provider, eventsOf };
}

describe("where hasp deliberately differs from daiso-core", () => {
  test("acquireOrFail resolves to the fencing token (daiso: void)", async () => {
    const { provider } = await setup();
    const lock = provider.create("a", { ttl: LONG });
    const token = await lock.acquireOrFail();
    expect(typeof token).toBe("number");
    expect(token).toBe(lock.fencingToken);
    await lock.release();
    expect(await lock.acquireBlockingOrFail()).toBe(lock.fencingToken);
  });

  test("refresh() without a TTL uses the lock's own TTL, and lock.ttl stays (daiso: defaultRefreshTime, 5 min, and lock.ttl becomes it)", async () => {
    const { provider, adapter } = await setup();
    const lock = provider.create("a", { ttl: TimeSpan.fromSeconds(2) });
    await lock.acquire();
    await lock.refresh();
    const state = await adapter.getState("hasp:lock:a");
    expect(state?.remainingTime?.toMilliseconds()).toBeLessThanOrEqual(2_000);
    await lock.refresh(TimeSpan.fromMinutes(1));
    expect(lock.ttl?.toMilliseconds()).toBe(2_000);
  });

  test("a re-acquire by the same owner restarts the TTL and keeps the token", async () => {
    const { provider, adapter } = await setup();
    const lock = provider.create("a", { ttl: TimeSpan.fromSeconds(2) });
    const token = await lock.acquireOrFail();
    await lock.refresh(TimeSpan.fromMinutes(1));
    expect(await lock.acquireOrFail()).toBe(token);
    const state = await adapter.getState("hasp:lock:a");
    expect(state?.remainingTime?.toMilliseconds()).toBeLessThanOrEqual(2_000);
  });

  test("a TTL of 0 is refused (daiso takes TimeSpan.fromMilliseconds(0))", async () => {
    const { provider } = await setup();
    expect(() => provider.create("a", { ttl: TimeSpan.fromMilliseconds(0) })).toThrow(
      InvalidArgumentError,
    );
    expect(
      () => new LockProvider({ adapter: new MemoryLockAdapter(), defaultTtl: TimeSpan.ZERO }),
    ).toThrow(/defaultTtl: must be positive/);
  });

  test("one UNAVAILABLE per blocking acquire that fails, not one per attempt", async () => {
    const { provider, eventsOf } = await setup({
      defaultBlockingInterval: TimeSpan.fromMilliseconds(5),
    });
    await provider.create("a", { ttl: LONG }).acquire();
    const waiter = provider.create("a", { ttl: LONG });
    expect(await waiter.acquireBlocking({ time: TimeSpan.fromMilliseconds(100) })).toBe(false);
    await vi.waitFor(() => expect(eventsOf(waiter.id)).toContain(LOCK_EVENTS.UNAVAILABLE));
    // A later event of the same lock: every earlier one has been heard by then (in order).
    await waiter.forceRelease();
    await vi.waitFor(() => expect(eventsOf(waiter.id)).toContain(LOCK_EVENTS.FORCE_RELEASED));
    expect(eventsOf(waiter.id)).toEqual([LOCK_EVENTS.UNAVAILABLE, LOCK_EVENTS.FORCE_RELEASED]);
  });

  test("runOrFail that cannot acquire sends no FAILED_RELEASE (daiso releases in a finally anyway)", async () => {
    const { provider, eventsOf } = await setup();
    await provider.create("a", { ttl: LONG }).acquire();
    const lock = provider.create("a", { ttl: LONG });
    await expect(lock.runOrFail(() => "never")).rejects.toThrow(FailedAcquireLockError);
    await lock.forceRelease();
    await vi.waitFor(() => expect(eventsOf(lock.id)).toContain(LOCK_EVENTS.FORCE_RELEASED));
    expect(eventsOf(lock.id)).toEqual([LOCK_EVENTS.UNAVAILABLE, LOCK_EVENTS.FORCE_RELEASED]);
  });

  test("createLockId names the owner; the credential adds a secret proof, so two locks given the same id do not share a hold (daiso: the id is the whole credential)", async () => {
    const { provider } = await setup({ createLockId: () => "worker" });
    const first = provider.create("a", { ttl: LONG });
    const second = provider.create("a", { ttl: LONG });
    expect(first.id).toBe(second.id);
    expect(await first.acquire()).toBe(true);
    expect(await second.acquire()).toBe(false);
    // To share a hold on purpose, give both the same lockId (daiso's way too).
    const shared = provider.create("b", { lockId: "editor-17" });
    expect(await shared.acquire()).toBe(true);
    expect(await provider.create("b", { lockId: "editor-17" }).release()).toBe(true);
  });

  test("an adapter written to daiso's contract (acquire answers a boolean) fails loudly, naming the adapter", async () => {
    // daiso's ILockAdapter: acquire resolves to true/false, getState to { owner, expiration }.
    class DaisoStyleLockAdapter extends MemoryLockAdapter {
      // @ts-expect-error: daiso's answer, which hasp's contract does not allow
      override async acquire(...args: Parameters<MemoryLockAdapter["acquire"]>): Promise<boolean> {
        const result: LockAcquireResult = await super.acquire(...args);
        return result.acquired;
      }
    }
    // A JavaScript caller (or an `as never`) gets it past the types.
    const provider = new LockProvider({ adapter: new DaisoStyleLockAdapter() as never });
    const lock = provider.create("a");
    const error = await lock.acquire().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(LockAdapterResultError);
    expect(error).toMatchObject({
      adapter: "DaisoStyleLockAdapter",
      operation: "acquire",
      returned: true,
    });
    expect((error as Error).message).toMatch(
      /^Lock "a": DaisoStyleLockAdapter\.acquire\(\) returned true; the ILockAdapter contract expects \{ acquired: true, fencingToken: number \}/,
    );
  });

  test("an adapter's getState answers the time left on the store's clock and the token (daiso: an absolute expiration Date)", async () => {
    const adapter = new MemoryLockAdapter();
    const acquired = await adapter.acquire("k", "owner-1", TimeSpan.fromSeconds(10));
    const forever = await adapter.acquire("n", "owner-2", null);
    expect(await adapter.getState("k")).toEqual({
      owner: "owner-1",
      remainingTime: expect.any(TimeSpan),
      fencingToken: acquired.acquired ? acquired.fencingToken : Number.NaN,
    });
    expect(await adapter.getState("n")).toEqual({
      owner: "owner-2",
      remainingTime: null,
      fencingToken: forever.acquired ? forever.fencingToken : Number.NaN,
    });
  });

  test("a TimeSpan can be negative (daiso clamps it to 0); APIs that need a positive one refuse it", async () => {
    const start = new Date("2026-01-01T00:01:00Z");
    const end = new Date("2026-01-01T00:00:00Z");
    expect(TimeSpan.fromDateRange({ start, end }).toMilliseconds()).toBe(-60_000);
    expect(TimeSpan.fromStr("0s").toMilliseconds()).toBe(0);
    const { provider } = await setup();
    expect(() => provider.create("a", { ttl: TimeSpan.fromStr("-5s") })).toThrow(
      /must be positive/,
    );
  });
  test("getState says more: ACQUIRED has the fencing token, UNAVAILABLE the holder's remaining time", async () => {
    const { provider } = await setup();
    const holder = provider.create("a", { ttl: LONG });
    const token = await holder.acquireOrFail();
    expect(await holder.getState()).toEqual({
      type: LOCK_STATE.ACQUIRED,
      remainingTime: expect.any(TimeSpan),
      fencingToken: token,
    });
    expect(await provider.create("a").getState()).toEqual({
      type: LOCK_STATE.UNAVAILABLE,
      owner: holder.id,
      remainingTime: expect.any(TimeSpan),
    });
  });

  test("errors and TimeSpans are hasp's own classes; the is…Error guards recognise them across copies", async () => {
    const { provider } = await setup();
    await provider.create("a", { ttl: LONG }).acquire();
    const lock = provider.create("a", { ttl: LONG });
    expect(lock.ttl).toBeInstanceOf(TimeSpan);
    const error = await lock.acquireOrFail().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(isFailedAcquireLockError(error)).toBe(true);
    expect(isFailedAcquireLockError({ ...(error as object), name: "FailedAcquireLockError" })).toBe(
      false,
    );
  });

  test("in-process listeners have heard an operation's events when its await resumes (daiso: a few microtasks later)", async () => {
    const { provider, eventsOf } = await setup();
    const lock = provider.create("a", { ttl: LONG });
    await lock.acquire();
    expect(eventsOf(lock.id)).toEqual([LOCK_EVENTS.ACQUIRED]);
    await lock.release();
    expect(eventsOf(lock.id)).toEqual([LOCK_EVENTS.ACQUIRED, LOCK_EVENTS.RELEASED]);
  });

  test("the listen methods of provider.events take effect when called, without an await (daiso: lazy tasks)", async () => {
    const { provider } = await setup();
    const heard: string[] = [];
    void provider.events.addListener(LOCK_EVENTS.ACQUIRED, ({ key }) => void heard.push(key));
    await provider.create("a", { ttl: LONG }).acquire();
    expect(heard).toEqual(["a"]);
  });

  test("a listener is a function: an { invoke } object is refused when added (daiso takes it)", async () => {
    const { provider } = await setup();
    await expect(
      provider.events.addListener(LOCK_EVENTS.ACQUIRED, { invoke() {} } as never),
    ).rejects.toThrow(/The listener of ".*" must be a function, got object/);
  });

  test("run* does not call the lock's public acquireOrFail and release (daiso does; a spy on them sees nothing)", async () => {
    const { provider, eventsOf } = await setup();
    const lock = provider.create("a", { ttl: LONG });
    const acquireOrFail = vi.spyOn(lock, "acquireOrFail");
    const release = vi.spyOn(lock, "release");
    expect(await lock.runOrFail(async () => "done")).toBe("done");
    expect(acquireOrFail).not.toHaveBeenCalled();
    expect(release).not.toHaveBeenCalled();
    expect(eventsOf(lock.id)).toEqual([LOCK_EVENTS.ACQUIRED, LOCK_EVENTS.RELEASED]);
  });
});
