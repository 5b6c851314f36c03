import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, test, vi } from "vitest";
import {
  RedisLockAdapter,
  type RedisLockAdapterSettings,
  redisHoldKey,
} from "../../src/lock/adapters/redis/redis-lock-adapter.js";
import type { LockWaitClaim } from "../../src/lock/contracts/lock-adapter.js";
import { LockBackendError, LockLostError } from "../../src/lock/contracts/lock-errors.js";
import {
  LOCK_EVENTS,
  type LockAcquiredEvent,
  type LockUnexpectedErrorEvent,
} from "../../src/lock/contracts/lock-events.js";
import { LOCK_STATE } from "../../src/lock/contracts/lock-state.js";
import { LockProvider } from "../../src/lock/lock-provider.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { TimeoutError } from "../../src/resilience/resilience-errors.js";
import { timeout } from "../../src/resilience/timeout.js";
import type { ITask } from "../../src/task/task.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import { describeWithBackend, uniqueName } from "../harness/backends.js";
import { PrivateRedisServer } from "../harness/private-redis.js";

/** Sees the adapter's waits: how many are under way, and how long each took of its maximum. */
class ObservedRedisLockAdapter extends RedisLockAdapter {
  waiting = 0;
  readonly waits: Array<{ maxWait: number; elapsed: number }> = [];

  override async waitForRelease(
    key: string,
    maxWait: TimeSpan,
    signal: AbortSignal,
    claim?: LockWaitClaim,
  ) {
    const startedAt = performance.now();
    this.waiting += 1;
    try {
      return await super.waitForRelease(key, maxWait, signal, claim);
    } finally {
      this.waiting -= 1;
      this.waits.push({
        maxWait: maxWait.toMilliseconds(),
        elapsed: performance.now() - startedAt,
      });
    }
  }
}

// Only the binary is needed, but a run limited to other backends (HASP_BACKENDS) skips this too.
describeWithBackend("redis", () => {
  let redis: PrivateRedisServer;
  let port: number;
  const opened: Array<{ client: Redis; adapter: RedisLockAdapter }> = [];

  const startRedis = () => redis.start();
  const stopRedis = () => redis.stop();

  /**
   * A client as an application that must not hang on a dead Redis would configure it:
   * - `maxRetriesPerRequest: 1`: a command issued while the connection is down waits for two
   *   reconnect attempts (here about 200 ms), then fails with ioredis's
   *   `MaxRetriesPerRequestError`, which the lock turns into a `LockBackendError`. The ioredis
   *   default (20) makes each lock call wait through 20 attempts (seconds, with its default
   *   back-off); `null` makes it wait until Redis returns, and only a `timeout` on the lock call
   *   (or `commandTimeout`) ends it.
   * - `retryStrategy: () => 100`: reconnect every 100 ms, forever, so the client and the
   *   adapter's subscriber (a `duplicate()`, same settings) come back by themselves.
   * - `enableOfflineQueue: true` (the default): calls made while reconnecting are queued for
   *   the next connection (within the limit above) instead of failing at once.
   */
  function setup(
    settings: {
      maxRetriesPerRequest?: number | null;
      connectionName?: string;
    } & Omit<RedisLockAdapterSettings, "database"> = {},
  ) {
    const { maxRetriesPerRequest = 1, connectionName, ...adapterSettings } = settings;
    const client = new Redis({
      host: "127.0.0.1",
      port,
      maxRetriesPerRequest,
      retryStrategy: () => 100,
      enableOfflineQueue: true,
      ...(connectionName === undefined ? {} : { connectionName }),
    });
    // Connection errors are expected here; without a listener ioredis prints each one.
    client.on("error", () => {});
    const adapter = new ObservedRedisLockAdapter({ database: client, ...adapterSettings });
    const namespace = new Namespace(uniqueName("faults"));
    const provider = new LockProvider({ adapter, namespace });
    const hold = (key: string) => redisHoldKey(namespace.create(key).toString());
    opened.push({ client, adapter });
    return { client, adapter, provider, hold };
  }

  /** Kills the server and waits until `clients` noticed, so their next calls meet a dead Redis. */
  async function killRedis(...clients: Redis[]): Promise<void> {
    await stopRedis();
    await vi.waitFor(
      () => {
        for (const client of clients) {
          expect(client.status).not.toBe("ready");
        }
      },
      { timeout: 10_000 },
    );
  }

  async function restartRedis(...clients: Redis[]): Promise<void> {
    await startRedis();
    await vi.waitFor(
      () => {
        for (const client of clients) {
          expect(client.status).toBe("ready");
        }
      },
      { timeout: 10_000 },
    );
  }

  beforeAll(async () => {
    redis = await PrivateRedisServer.start();
    port = redis.port;
  });

  afterAll(async () => {
    for (const { client, adapter } of opened) {
      await adapter.close();
      client.disconnect();
    }
    await stopRedis();
  });

  test("while Redis is down every operation rejects with a LockBackendError carrying the ioredis error, dispatches UNEXPECTED_ERROR, and reports no acquire", async () => {
    const { client, provider, hold } = setup();
    const unexpected: LockUnexpectedErrorEvent[] = [];
    const acquired: LockAcquiredEvent[] = [];
    await provider.addListener(LOCK_EVENTS.UNEXPECTED_ERROR, (event) => {
      unexpected.push(event);
    });
    await provider.addListener(LOCK_EVENTS.ACQUIRED, (event) => {
      acquired.push(event);
    });
    const lock = provider.create("job", { ttl: TimeSpan.fromSeconds(5) });
    const work = vi.fn();
    // The backstop: should the client wait for Redis after all, a call fails in 5 s.
    const outcome = <T>(task: ITask<T>): Promise<unknown> =>
      Promise.resolve(task.pipe(timeout({ waitTime: TimeSpan.fromSeconds(5) }))).then(
        (value) => ({ resolved: value }),
        (error: unknown) => error,
      );
    const blocking = { time: TimeSpan.fromSeconds(30) };
    const cases: Array<[name: string, operation: string, call: () => Promise<unknown>]> = [
      ["acquire", "acquire", () => outcome(lock.acquire())],
      ["acquireOrFail", "acquire", () => outcome(lock.acquireOrFail())],
      // A failed attempt ends a blocking acquire at once: it is not "held, try again". On Redis
      // a blocking acquire starts with its wait, which takes a free key (waitAcquires).
      ["acquireBlocking", "waitForRelease", () => outcome(lock.acquireBlocking(blocking))],
      ["runOrFail", "acquire", () => outcome(lock.runOrFail(work))],
      ["runBlocking", "waitForRelease", () => outcome(lock.runBlocking(work, blocking))],
      ["release", "release", () => outcome(lock.release())],
      ["refresh", "refresh", () => outcome(lock.refresh())],
      ["forceRelease", "forceRelease", () => outcome(lock.forceRelease())],
      ["getState", "getState", () => outcome(lock.getState())],
    ];
    await client.ping();
    await killRedis(client);
    const causes: unknown[] = [];
    try {
      for (const [name, operation, call] of cases) {
        const error = await call();
        expect(error, name).toBeInstanceOf(LockBackendError);
        const backendError = error as LockBackendError;
        expect(backendError.operation, name).toBe(operation);
        expect(backendError.key, name).toBe("job");
        expect(backendError.cause, name).toMatchObject({ name: "MaxRetriesPerRequestError" });
        expect(backendError.message, name).toContain("max retries per request");
        causes.push(backendError.cause);
      }
      expect(work).not.toHaveBeenCalled();
      expect(lock.fencingToken).toBeNull();
      await vi.waitFor(() => expect(unexpected).toHaveLength(cases.length), { timeout: 10_000 });
      expect(unexpected.map((event) => event.operation)).toEqual(cases.map(([, op]) => op));
      unexpected.forEach((event, i) => {
        expect(event.error).toBe(causes[i]);
        expect(event.key).toBe("job");
      });
    } finally {
      await restartRedis(client);
    }

    // The rejected calls were dropped, not sent once Redis was back: no acquire script ran on the
    // new server (it would have left the fence key). Had they waited in the client's offline
    // queue, they would have gone out on reconnecting, before this command on the same client.
    expect(await client.exists(`${hold("job")}:fence`)).toBe(0);
    // The same client and adapter work again.
    expect(await lock.acquire()).toBe(true);
    expect(await lock.release()).toBe(true);
    await vi.waitFor(() => expect(acquired).toHaveLength(1), { timeout: 10_000 });
  });

  test("an acquire that timed out while Redis was down, and reached Redis once it returned, is released again", async () => {
    // No retry limit: the call waits in the client's offline queue until Redis is back.
    const { client, provider, hold } = setup({ maxRetriesPerRequest: null });
    const acquired: LockAcquiredEvent[] = [];
    await provider.addListener(LOCK_EVENTS.ACQUIRED, (event) => {
      acquired.push(event);
    });
    const failedReleases: unknown[] = [];
    await provider.addListener(LOCK_EVENTS.FAILED_RELEASE, (event) => {
      failedReleases.push(event);
    });
    const lock = provider.create("late", { ttl: TimeSpan.fromSeconds(30) });
    await client.ping();
    await killRedis(client);
    try {
      await expect(
        lock.acquire().pipe(timeout({ waitTime: TimeSpan.fromMilliseconds(300) })),
      ).rejects.toBeInstanceOf(TimeoutError);
    } finally {
      await restartRedis(client);
    }
    // The queued script ran on the new server (the fence key is its trace) and the hold it made
    // for a caller who had given up is gone again, long before its 30 s TTL.
    await vi.waitFor(
      async () => {
        expect(await client.exists(`${hold("late")}:fence`)).toBe(1);
        expect(await client.exists(hold("late"))).toBe(0);
      },
      { timeout: 5_000, interval: 50 },
    );
    expect(lock.fencingToken).toBeNull();
    // A later event of the lock (events of one lock go out in order): an ACQUIRED would be first.
    expect(await lock.release()).toBe(false);
    await vi.waitFor(() => expect(failedReleases).toHaveLength(1), { timeout: 10_000 });
    expect(acquired).toHaveLength(0);
  });

  test("killed and restarted while one worker holds and three wait: work resumes, no lost update, no overlapping holds, later tokens above earlier ones", async () => {
    const { client, adapter, provider } = setup();
    const failedReleases: unknown[] = [];
    await provider.addListener(LOCK_EVENTS.FAILED_RELEASE, (event) => {
      failedReleases.push(event);
    });
    const WORKERS = 4;
    const BEFORE = 3;
    const AFTER = 3;
    // The shared counter lives in this process, not in Redis: the restart empties Redis, which
    // would reset a counter kept there and hide a lost update across the restart. Here it
    // counts every section that completed, before, across and after the restart.
    let counter = 0;
    const holds: Array<{ worker: number; token: number; start: number; end: number }> = [];
    let backendErrors = 0;

    /** One critical section: read, pause (or wait at `gate`), write; retried after a backend failure. */
    async function section(worker: number, gate?: { reached: () => void; open: Promise<void> }) {
      for (let attempt = 1; ; attempt++) {
        try {
          await provider.create("counter", { ttl: TimeSpan.fromSeconds(5) }).runBlockingOrFail(
            async ({ fencingToken, signal }) => {
              const start = performance.now();
              const read = counter;
              if (gate === undefined) {
                await sleep(1 + Math.floor(Math.random() * 3));
              } else {
                gate.reached();
                await gate.open;
              }
              // A holder told its hold is gone (LockLostError) does not write.
              signal.throwIfAborted();
              counter = read + 1;
              holds.push({ worker, token: fencingToken, start, end: performance.now() });
            },
            { time: TimeSpan.fromSeconds(30) },
          );
          return;
        } catch (error) {
          const retriable = error instanceof LockBackendError || error instanceof LockLostError;
          if (!retriable || attempt >= 50) {
            throw error;
          }
          backendErrors += 1;
          await sleep(100);
        }
      }
    }

    const sections = async (worker: number, count: number) => {
      for (let i = 0; i < count; i++) {
        await section(worker);
      }
    };

    // Before the restart: all four contend.
    await Promise.all(Array.from({ length: WORKERS }, (_, worker) => sections(worker, BEFORE)));
    expect(counter).toBe(WORKERS * BEFORE);

    // Worker 0 takes the key and holds it; the three others block on it.
    let reached!: () => void;
    const isHolding = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let open!: () => void;
    const gate = { reached, open: new Promise<void>((resolve) => (open = resolve)) };
    const holder = section(0, gate).then(() => sections(0, AFTER - 1));
    await isHolding;
    const waiters = [1, 2, 3].map((worker) => sections(worker, AFTER));
    try {
      await vi.waitFor(() => expect(adapter.waiting).toBe(3), { timeout: 5_000 });
      const killedAt = performance.now();
      await killRedis(client);
      await restartRedis(client);
      open();
      await Promise.all([holder, ...waiters]);

      // Work resumed: every worker completed all its sections, and none was lost.
      expect(counter).toBe(WORKERS * (BEFORE + AFTER));
      for (let worker = 0; worker < WORKERS; worker++) {
        expect(
          holds.filter((hold) => hold.worker === worker),
          `worker ${worker}`,
        ).toHaveLength(BEFORE + AFTER);
      }
      // No two holds overlapped in time, the one across the restart included.
      const byStart = [...holds].sort((a, b) => a.start - b.start);
      byStart.forEach((hold, i) => {
        const previous = byStart[i - 1];
        if (previous !== undefined) {
          expect(hold.start, `hold ${i}`).toBeGreaterThan(previous.end);
          expect(hold.token, `hold ${i}`).toBeGreaterThan(previous.token);
        }
      });
      // The restart emptied Redis (the fence counter too), yet later tokens are above every
      // earlier one: the server's clock in µs is their floor.
      const before = holds.filter((hold) => hold.start < killedAt).map((hold) => hold.token);
      const after = holds.filter((hold) => hold.start > killedAt).map((hold) => hold.token);
      // (The held section counts here unless a refresh found its hold gone first: then it was
      // retried after the restart.)
      expect(before.length).toBeGreaterThanOrEqual(WORKERS * BEFORE);
      expect(Math.min(...after)).toBeGreaterThan(Math.max(...before));
      // The holder learned at its release that Redis had forgotten its hold.
      await vi.waitFor(() => expect(failedReleases.length).toBeGreaterThanOrEqual(1), {
        timeout: 10_000,
      });
      console.log(
        `[redis faults] restart: ${holds.length} sections, ${backendErrors} retried after a backend error or a lost hold`,
      );
    } finally {
      open();
      await Promise.allSettled([holder, ...waiters]);
    }
  }, 40_000);

  test("a restart forgets the holds: a newcomer gets the key at once with a higher token, and the old holder learns it at its next refresh", async () => {
    const { client, provider } = setup();
    const failedRefreshes: unknown[] = [];
    await provider.addListener(LOCK_EVENTS.FAILED_REFRESH, (event) => {
      failedRefreshes.push(event);
    });
    // runOrFail refreshes the 3 s hold every second while the function runs.
    const holder = provider.create("lease", { ttl: TimeSpan.fromSeconds(3) });
    let holding!: (token: number) => void;
    const held = new Promise<number>((resolve) => {
      holding = resolve;
    });
    const run = Promise.resolve(
      holder.runOrFail(async ({ fencingToken, signal }) => {
        holding(fencingToken);
        // Works until told that the hold is gone (at most 10 s).
        await new Promise((_, reject) => {
          const timer = setTimeout(
            () => reject(new Error("the hold was never reported lost")),
            10_000,
          );
          signal.addEventListener("abort", () => {
            clearTimeout(timer);
            reject(signal.reason);
          });
        });
      }),
    );
    run.catch(() => {});
    const oldToken = await held;

    await killRedis(client);
    await restartRedis(client);
    // Mutual exclusion does not survive a restart of a Redis that keeps nothing: the key is free
    // while the old holder still runs. The fencing token does: the newcomer's is higher, so the
    // resource the lock protects can refuse the old holder's writes.
    const newcomer = provider.create("lease", { ttl: TimeSpan.fromSeconds(3) });
    try {
      const newToken = await newcomer.acquireOrFail();
      expect(newToken).toBeGreaterThan(oldToken);
      // The old holder's next refresh is refused: its function's signal aborts with LockLostError.
      await expect(run).rejects.toBeInstanceOf(LockLostError);
      await vi.waitFor(() => expect(failedRefreshes).toHaveLength(1), { timeout: 10_000 });
      expect(await newcomer.getState()).toMatchObject({ type: LOCK_STATE.ACQUIRED });
    } finally {
      await newcomer.release();
    }
  }, 20_000);

  test("the subscriber reconnects after a restart: a waiter blocked afterwards is handed the key by the release, not woken by its timer", async () => {
    const { client, adapter, provider, hold } = setup();
    // Hand-offs are published on the adapter's inbox channel: the one this test adds.
    const inboxes = async () =>
      (await client.call("PUBSUB", "CHANNELS", "hasp-lock-inbox-*")) as string[];
    const before = await inboxes();
    const numsub = async (channel: string) =>
      Number(((await client.call("PUBSUB", "NUMSUB", channel)) as [string, number])[1]);
    const settings = { time: TimeSpan.fromSeconds(5), interval: TimeSpan.fromSeconds(10) };

    const blockedRelease = async () => {
      const holder = provider.create("wake", { ttl: TimeSpan.fromSeconds(30) });
      expect(await holder.acquire()).toBe(true);
      const waiter = provider.create("wake", { ttl: TimeSpan.fromSeconds(30) });
      const acquired = Promise.resolve(waiter.acquireBlocking(settings));
      // Once the waiter's claim is in the key's queue (the key still held), only the release's
      // hand-off message can end its wait before its time is up.
      await vi.waitFor(async () => expect(await client.llen(`${hold("wake")}:queue`)).toBe(1), {
        timeout: 5_000,
      });
      expect(adapter.waiting).toBe(1);
      expect(await holder.release()).toBe(true);
      expect(await acquired).toBe(true);
      expect(await waiter.release()).toBe(true);
      const wait = adapter.waits.at(-1);
      // Handed the key by the release: far from the 5 s it would sleep otherwise (the holder's
      // TTL is 30 s, and the 10 s interval plays no part with a signalling adapter).
      expect(wait?.elapsed).toBeLessThan((wait?.maxWait ?? 0) / 2);
    };

    await blockedRelease();
    const inbox = (await inboxes()).filter((channel) => !before.includes(channel));
    expect(inbox).toHaveLength(1);
    expect(await numsub(inbox[0] ?? "")).toBe(1);
    await killRedis(client);
    await restartRedis(client);
    // The subscriber connection is back and subscribed again, by ioredis alone.
    await vi.waitFor(async () => expect(await numsub(inbox[0] ?? "")).toBe(1), {
      timeout: 10_000,
    });
    await blockedRelease();
  }, 30_000);

  test("close() closes the subscriber connection and leaves the caller's client open", async () => {
    const name = uniqueName("close");
    const { client, adapter, provider } = setup({ connectionName: name });
    const connections = async () => {
      const list = (await client.call("CLIENT", "LIST")) as string;
      return list.split("\n").filter((line) => line.includes(` name=${name} `)).length;
    };
    await client.ping();
    expect(await connections()).toBe(1);

    const holder = provider.create("shut", { ttl: TimeSpan.fromSeconds(30) });
    await holder.acquireOrFail();
    const waiter = provider.create("shut", { ttl: TimeSpan.fromSeconds(30) });
    const acquired = Promise.resolve(waiter.acquireBlocking({ time: TimeSpan.fromSeconds(5) }));
    await vi.waitFor(() => expect(adapter.waiting).toBe(1), { timeout: 5_000 });
    await vi.waitFor(async () => expect(await connections()).toBe(2), { timeout: 5_000 });
    await holder.release();
    expect(await acquired).toBe(true);
    await waiter.release();

    await adapter.close();
    await vi.waitFor(async () => expect(await connections()).toBe(1), { timeout: 5_000 });
    expect(client.status).toBe("ready");
    expect(await client.ping()).toBe("PONG");
    // One-shot operations keep working on the caller's client; closing twice is harmless.
    const after = provider.create("shut", { ttl: TimeSpan.fromSeconds(5) });
    expect(await after.acquire()).toBe(true);
    expect(await after.release()).toBe(true);
    await adapter.close();
    expect(await connections()).toBe(1);
  });

  // After close(), a waiter still blocked must not open a new subscriber connection (nothing
  // would close it, and a process that then quits its client would not exit).
  test("close() while a waiter is blocked: the waiter fails at once, and the adapter opens no new connection afterwards", async () => {
    const name = uniqueName("closing");
    const { client, adapter, provider } = setup({ connectionName: name });
    const connections = async () => {
      const list = (await client.call("CLIENT", "LIST")) as string;
      return list.split("\n").filter((line) => line.includes(` name=${name} `)).length;
    };
    const holder = provider.create("shut", { ttl: TimeSpan.fromSeconds(1) });
    await holder.acquireOrFail();
    const waiter = provider.create("shut", { ttl: TimeSpan.fromSeconds(5) });
    const acquired = Promise.resolve(waiter.acquireBlocking({ time: TimeSpan.fromSeconds(5) }));
    const failed = expect(acquired).rejects.toThrow(LockBackendError);
    try {
      await vi.waitFor(() => expect(adapter.waiting).toBe(1), { timeout: 5_000 });
      await adapter.close();
      // Its subscriber is gone: the waiter fails rather than wait for a release it cannot hear.
      await failed;
      await expect(acquired).rejects.toThrow(/closed \(`close\(\)` was called\)/);
      // So does a later one, at once, without a new subscriber; the client still works.
      await expect(waiter.acquireBlocking({ time: TimeSpan.fromSeconds(5) })).rejects.toThrow(
        LockBackendError,
      );
      expect(await holder.release()).toBe(true);
      expect(await connections()).toBe(1);
    } finally {
      await Promise.allSettled([acquired]);
      await adapter.close();
    }
  });
});
