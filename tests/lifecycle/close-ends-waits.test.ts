// Closing a provider ends its blocking acquires at once on every adapter (the end of this
// file). Closing an adapter that queues waits (Redis, PostgreSQL with a listener) ends its waits at
// once too: its listener, the only way a release reaches them, is gone. A blocking acquire waiting
// at close() fails promptly with the primitive's backend error naming close(), leaving the
// queue as an aborted wait does; one started after close() fails at once; the adapter's plain
// operations on the application's client keep working.

import Database from "better-sqlite3";
import type { Redis } from "ioredis";
import { Kysely, PostgresDialect, SqliteDialect, sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, onTestFinished, test, vi } from "vitest";
import { storedKey } from "../../src/backends/kysely/stored-key.js";
import { KyselyLockAdapter } from "../../src/lock/adapters/kysely/kysely-lock-adapter.js";
import { MemoryLockAdapter } from "../../src/lock/adapters/memory/memory-lock-adapter.js";
import { RedisLockAdapter } from "../../src/lock/adapters/redis/redis-lock-adapter.js";
import { LockBackendError } from "../../src/lock/contracts/lock-errors.js";
import { LOCK_STATE } from "../../src/lock/contracts/lock-state.js";
import { LockProvider } from "../../src/lock/lock-provider.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { KyselySemaphoreAdapter } from "../../src/semaphore/adapters/kysely/kysely-semaphore-adapter.js";
import { MemorySemaphoreAdapter } from "../../src/semaphore/adapters/memory/memory-semaphore-adapter.js";
import { RedisSemaphoreAdapter } from "../../src/semaphore/adapters/redis/redis-semaphore-adapter.js";
import { SemaphoreBackendError } from "../../src/semaphore/contracts/semaphore-errors.js";
import { SEMAPHORE_STATE } from "../../src/semaphore/contracts/semaphore-state.js";
import { SemaphoreProvider } from "../../src/semaphore/semaphore-provider.js";
import { TimeSpan } from "../../src/time-span/time-span.js";
import {
  type BackendName,
  createPgPool,
  createRedisClient,
  describeWithBackend,
  uniqueName,
} from "../harness/backends.js";
import { sqliteFile } from "../harness/kysely-databases.js";

const LONG = TimeSpan.fromSeconds(10);
/** The blocking acquires' time: a closed wait must settle well before it. */
const WAIT = TimeSpan.fromSeconds(8);
const CLOSED = /closed \(`close\(\)` was called\)/;

/** One primitive's face here: a lock, or a semaphore of limit 1 (so one waiter is served). */
type Holder = {
  readonly id: string;
  acquire(): PromiseLike<boolean>;
  acquireBlocking(settings: { time: TimeSpan }): PromiseLike<boolean>;
  release(): PromiseLike<boolean>;
  /** Whether it holds the key (its getState(), on the backend). */
  holds(): Promise<boolean>;
};

/** A primitive on one backend: providers on adapters that share the application's client. */
type Subject = {
  readonly errorType: typeof LockBackendError | typeof SemaphoreBackendError;
  /** A provider on a new adapter, closed at the end of the test. */
  provider(namespace: Namespace): {
    create(key: string): Holder;
    close(): Promise<void>;
  };
  /** How many waits are queued on the full key. */
  queued(fullKey: string): Promise<number>;
};

/** How long `promise` takes to settle, from now, and how (`fulfilled` or the error). */
async function timed(promise: PromiseLike<unknown>): Promise<{ ms: number; outcome: unknown }> {
  const from = performance.now();
  const outcome = await Promise.resolve(promise).then(
    (value) => ({ fulfilled: value }),
    (error: unknown) => error,
  );
  return { ms: performance.now() - from, outcome };
}

/** The ids of those among `list` that hold the key. */
async function holders(list: readonly Holder[]): Promise<string[]> {
  const holding = await Promise.all(list.map((each) => each.holds()));
  return list.filter((_, index) => holding[index]).map((each) => each.id);
}

/**
 * One test's start: two providers in a fresh namespace (`closing`, which the test closes, and
 * `open`), and `holder`, of `open`, holding the key.
 */
async function arranged(subject: Subject, label: string) {
  const { provider, queued, errorType } = subject;
  const namespace = new Namespace(uniqueName(label));
  const key = "key";
  const full = namespace.create(key).toString();
  const closing = provider(namespace);
  const open = provider(namespace);
  onTestFinished(() => open.close());
  const holder = open.create(key);
  expect(await holder.acquire()).toBe(true);
  return {
    key,
    closing,
    open,
    holder,
    errorType,
    /** How many waits are queued on the key. */
    queued: () => queued(full),
  };
}

function closeEndsWaits(subject: () => Subject): void {
  test("a blocking acquire waiting at close() fails at once with the backend error naming close(); the key goes to the next waiter, never the closed one", async () => {
    const { key, closing, open, holder, errorType, queued } = await arranged(
      subject(),
      "i20-close",
    );
    const closedWaiter = closing.create(key);
    const waiting = timed(closedWaiter.acquireBlocking({ time: WAIT }));
    await vi.waitFor(async () => expect(await queued()).toBe(1));
    const next = open.create(key);
    // A task runs once awaited: `timed` starts it.
    const nextWaiting = timed(next.acquireBlocking({ time: WAIT }));
    await vi.waitFor(async () => expect(await queued()).toBe(2));

    const closed = closing.close();
    const { ms, outcome } = await waiting;
    expect(outcome).toBeInstanceOf(errorType);
    expect((outcome as Error).message).toMatch(CLOSED);
    expect(ms).toBeLessThan(WAIT.toMilliseconds() / 4);
    await closed;
    // Its entry left the queue: the release serves the next waiter.
    expect(await queued()).toBe(1);
    expect(await holder.release()).toBe(true);
    expect((await nextWaiting).outcome).toEqual({ fulfilled: true });
    expect(await holders([closedWaiter, next, holder])).toEqual([next.id]);

    // After close(): a blocking acquire fails at once; plain operations keep working.
    const late = closing.create(key);
    const after = await timed(late.acquireBlocking({ time: WAIT }));
    expect(after.outcome).toBeInstanceOf(errorType);
    expect((after.outcome as Error).message).toMatch(CLOSED);
    expect(after.ms).toBeLessThan(WAIT.toMilliseconds() / 4);
    expect(await next.release()).toBe(true);
    expect(await late.acquire()).toBe(true);
    expect(await late.release()).toBe(true);
    expect(await queued()).toBe(0);
    expect(await holders([closedWaiter, next, holder, late])).toEqual([]);
  });

  test("close() in the tick a release hands the key to the waiting acquire: it either got the key before close(), or fails and the key is given back", async () => {
    const { key, closing, open, holder, errorType, queued } = await arranged(
      subject(),
      "i20-close-race",
    );
    const closedWaiter = closing.create(key);
    const waiting = timed(closedWaiter.acquireBlocking({ time: WAIT }));
    await vi.waitFor(async () => expect(await queued()).toBe(1));
    // The release hands the key to the queued claim in its own script / statement; close()
    // follows before the wait can have heard the message of it.
    expect(await holder.release()).toBe(true);
    const closed = closing.close();
    const { ms, outcome } = await waiting;
    await closed;
    expect(ms).toBeLessThan(WAIT.toMilliseconds() / 4);
    expect(await queued()).toBe(0);
    if (outcome instanceof Error) {
      expect(outcome).toBeInstanceOf(errorType);
      expect(outcome.message).toMatch(CLOSED);
      expect(await holders([closedWaiter])).toEqual([]);
      const other = open.create(key);
      expect(await other.acquire()).toBe(true);
      expect(await other.release()).toBe(true);
    } else {
      // Granted before close() ended it: the key is its caller's, as any acquired hold.
      expect(outcome).toEqual({ fulfilled: true });
      expect(await holders([closedWaiter])).toEqual([closedWaiter.id]);
      expect(await closedWaiter.release()).toBe(true);
    }
  });

  test("close() as a blocking acquire starts (its listener still being set up): it fails at once and leaves no queue entry", async () => {
    const { key, closing, holder, errorType, queued } = await arranged(
      subject(),
      "i20-close-early",
    );
    const waiting = timed(closing.create(key).acquireBlocking({ time: WAIT }));
    const closed = closing.close();
    const { ms, outcome } = await waiting;
    await closed;
    expect(outcome).toBeInstanceOf(errorType);
    expect((outcome as Error).message).toMatch(CLOSED);
    expect(ms).toBeLessThan(WAIT.toMilliseconds() / 4);
    expect(await queued()).toBe(0);
    expect(await holder.release()).toBe(true);
  });
}

type LockAdapter = RedisLockAdapter | KyselyLockAdapter;
type SemaphoreAdapter = RedisSemaphoreAdapter | KyselySemaphoreAdapter;

/** A backend whose waits are queued, opened once per file: its adapters of each primitive. */
type OpenedBackend = {
  lockAdapter(): LockAdapter;
  semaphoreAdapter(): SemaphoreAdapter;
  /** How many waits are queued on a full key, per primitive. */
  queued: Record<Primitive["name"], (fullKey: string) => Promise<number>>;
  close(): Promise<void>;
};

type Primitive = {
  name: "lock" | "semaphore";
  subject(backend: OpenedBackend): Subject;
};

const PRIMITIVES: readonly Primitive[] = [
  {
    name: "lock",
    subject: (backend) => ({
      errorType: LockBackendError,
      queued: backend.queued.lock,
      provider: (namespace) => {
        const provider = new LockProvider({ adapter: backend.lockAdapter(), namespace });
        return {
          create: (key: string): Holder => {
            const lock = provider.create(key, { ttl: LONG });
            return {
              id: lock.id,
              acquire: () => lock.acquire(),
              acquireBlocking: (settings: { time: TimeSpan }) => lock.acquireBlocking(settings),
              release: () => lock.release(),
              holds: async () => (await lock.getState()).type === LOCK_STATE.ACQUIRED,
            };
          },
          close: () => provider.close(),
        };
      },
    }),
  },
  {
    name: "semaphore",
    subject: (backend) => ({
      errorType: SemaphoreBackendError,
      queued: backend.queued.semaphore,
      provider: (namespace) => {
        const provider = new SemaphoreProvider({ adapter: backend.semaphoreAdapter(), namespace });
        return {
          create: (key: string): Holder => {
            const semaphore = provider.create(key, { limit: 1, ttl: LONG });
            return {
              id: semaphore.slotId,
              acquire: () => semaphore.acquire(),
              acquireBlocking: (settings: { time: TimeSpan }) =>
                semaphore.acquireBlocking(settings),
              release: () => semaphore.release(),
              holds: async () => (await semaphore.getState()).type === SEMAPHORE_STATE.ACQUIRED,
            };
          },
          close: () => provider.close(),
        };
      },
    }),
  },
];

async function openRedis(url: string): Promise<OpenedBackend> {
  const client: Redis = createRedisClient(url);
  const queued = async (full: string) => {
    const queue = `{${full}}:queue`;
    const type = await client.type(queue);
    return type === "none" ? 0 : type === "zset" ? client.zcard(queue) : client.llen(queue);
  };
  return {
    lockAdapter: () => new RedisLockAdapter(client),
    semaphoreAdapter: () => new RedisSemaphoreAdapter(client),
    queued: { lock: queued, semaphore: queued },
    close: async () => {
      await client.quit();
    },
  };
}

async function openPostgres(url: string): Promise<OpenedBackend> {
  const lockTable = uniqueName("i20_close_lock");
  const semaphoreTable = uniqueName("i20_close_sem");
  const kysely = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: createPgPool(url) }) });
  const listener = new pg.Pool({ connectionString: url, max: 8 });
  await new KyselyLockAdapter({ kysely, tableName: lockTable }).init();
  await new KyselySemaphoreAdapter({ kysely, tableName: semaphoreTable }).init();
  const queuedIn = (table: string, column: string) => async (full: string) => {
    const { rows } = await sql<{ queued: number | null }>`
      SELECT cardinality(waiters) AS queued FROM ${sql.table(table)}
      WHERE ${sql.ref(column)} = ${storedKey(full)}`.execute(kysely);
    return Number(rows[0]?.queued ?? 0);
  };
  return {
    lockAdapter: () => new KyselyLockAdapter({ kysely, tableName: lockTable, listener }),
    semaphoreAdapter: () =>
      new KyselySemaphoreAdapter({ kysely, tableName: semaphoreTable, listener }),
    queued: {
      lock: queuedIn(lockTable, "lock_key"),
      semaphore: queuedIn(semaphoreTable, "sem_key"),
    },
    close: async () => {
      await new KyselyLockAdapter({ kysely, tableName: lockTable }).dropSchema();
      await new KyselySemaphoreAdapter({ kysely, tableName: semaphoreTable }).dropSchema();
      await kysely.destroy();
      await listener.end();
    },
  };
}

/** The backends whose waits are queued: Redis, and PostgreSQL with a listener. */
const BACKENDS: ReadonlyArray<{ name: BackendName; open(url: string): Promise<OpenedBackend> }> = [
  { name: "redis", open: openRedis },
  { name: "postgres", open: openPostgres },
];

for (const backend of BACKENDS) {
  describeWithBackend(backend.name, (url) => {
    let opened: OpenedBackend;
    beforeAll(async () => {
      opened = await backend.open(url);
    });
    afterAll(() => opened.close());
    for (const primitive of PRIMITIVES) {
      describe(primitive.name, () => {
        closeEndsWaits(() => primitive.subject(opened));
      });
    }
  });
}

// A provider's own close() ends its blocking acquires on every adapter, not only where the
// adapter queues waits in the store: a polling wait between attempts, a memory adapter's
// in-process waiter, an attempt in flight. None of them takes the key after the close (a late
// grant is let go), and one started after close() fails at once.

/**
 * The closing provider's view of a shared adapter (memory adapters share state only through one
 * instance): every method delegated, its acquire and waitForRelease calls counted, and no
 * close() (the adapter is the other provider's too).
 */
type Counted = { adapter: LockAdapterOf | SemaphoreAdapterOf; attempts(): number };
type LockAdapterOf = MemoryLockAdapter | KyselyLockAdapter;
type SemaphoreAdapterOf = MemorySemaphoreAdapter | KyselySemaphoreAdapter;

function counted(adapter: LockAdapterOf | SemaphoreAdapterOf): Counted {
  let attempts = 0;
  const source = adapter as unknown as Record<string, unknown>;
  const view: Record<string, unknown> = {};
  const names = new Set<string>(Object.keys(adapter));
  for (let proto = Object.getPrototypeOf(adapter); proto !== Object.prototype; ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      names.add(name);
    }
    proto = Object.getPrototypeOf(proto);
  }
  names.delete("constructor");
  names.delete("close");
  for (const name of names) {
    const value = source[name];
    if (typeof value !== "function") {
      view[name] = value;
      continue;
    }
    const counts = name === "acquire" || name === "waitForRelease";
    view[name] = (...args: unknown[]) => {
      attempts += counts ? 1 : 0;
      return (value as (...a: unknown[]) => unknown).apply(adapter, args);
    };
  }
  return { adapter: view as unknown as typeof adapter, attempts: () => attempts };
}

type PollingWorld = {
  lockAdapter(): LockAdapterOf;
  semaphoreAdapter(): SemaphoreAdapterOf;
  close(): Promise<void>;
};

function providerCloseEndsWaits(primitive: "lock" | "semaphore", world: () => PollingWorld): void {
  test(`${primitive}: a provider's close() ends a blocking acquire under way at once; the key never goes to it`, async () => {
    const opened = world();
    const namespace = new Namespace(uniqueName("i20-close-poll"));
    const make = (adapter: LockAdapterOf | SemaphoreAdapterOf) =>
      primitive === "lock"
        ? lockFaces(new LockProvider({ adapter: adapter as LockAdapterOf, namespace }))
        : semaphoreFaces(
            new SemaphoreProvider({ adapter: adapter as SemaphoreAdapterOf, namespace }),
          );
    const shared = primitive === "lock" ? opened.lockAdapter() : opened.semaphoreAdapter();
    const open = make(shared);
    onTestFinished(() => open.close());
    const watched = counted(shared);
    const closing = make(watched.adapter);
    const holder = open.create("key");
    expect(await holder.acquire()).toBe(true);
    const closedWaiter = closing.create("key");
    const waiting = timed(closedWaiter.acquireBlocking({ time: WAIT }));
    // Waiting: refused once, then a pause between polls; or (memory, whose claimed wait is its
    // first attempt) queued as a waiter.
    const waitingAfter = shared.waitAcquires === true ? 1 : 2;
    await vi.waitFor(() => expect(watched.attempts()).toBeGreaterThanOrEqual(waitingAfter));
    const before = watched.attempts();
    const closed = closing.close();
    const { ms, outcome } = await waiting;
    await closed;
    const errorType = primitive === "lock" ? LockBackendError : SemaphoreBackendError;
    expect(outcome).toBeInstanceOf(errorType);
    expect((outcome as Error).message).toMatch(CLOSED);
    expect(ms).toBeLessThan(WAIT.toMilliseconds() / 4);

    // The holder releases: the key goes to the next waiter, never to the closed one.
    const next = open.create("key");
    const nextWaiting = timed(next.acquireBlocking({ time: WAIT }));
    expect(await holder.release()).toBe(true);
    expect((await nextWaiting).outcome).toEqual({ fulfilled: true });
    expect(await holders([closedWaiter, next])).toEqual([next.id]);
    // No attempt of the closed provider after its close (a memory waiter handed the key then
    // gives it back through its release, which is not an attempt).
    expect(watched.attempts()).toBe(before);

    const late = closing.create("key");
    const after = await timed(late.acquireBlocking({ time: WAIT }));
    expect(after.outcome).toBeInstanceOf(errorType);
    expect((after.outcome as Error).message).toMatch(CLOSED);
    expect(watched.attempts()).toBe(before);
    expect(await next.release()).toBe(true);
    expect(await late.acquire()).toBe(true);
    expect(await late.release()).toBe(true);
  });
}

function lockFaces(provider: LockProvider) {
  return {
    create: (key: string): Holder => {
      const lock = provider.create(key, { ttl: LONG });
      return {
        id: lock.id,
        acquire: () => lock.acquire(),
        acquireBlocking: (settings: { time: TimeSpan }) =>
          lock.acquireBlocking({ ...settings, interval: TimeSpan.fromMilliseconds(20) }),
        release: () => lock.release(),
        holds: async () => (await lock.getState()).type === LOCK_STATE.ACQUIRED,
      };
    },
    close: () => provider.close(),
  };
}

function semaphoreFaces(provider: SemaphoreProvider) {
  return {
    create: (key: string): Holder => {
      const semaphore = provider.create(key, { limit: 1, ttl: LONG });
      return {
        id: semaphore.slotId,
        acquire: () => semaphore.acquire(),
        acquireBlocking: (settings: { time: TimeSpan }) =>
          semaphore.acquireBlocking({ ...settings, interval: TimeSpan.fromMilliseconds(20) }),
        release: () => semaphore.release(),
        holds: async () => (await semaphore.getState()).type === SEMAPHORE_STATE.ACQUIRED,
      };
    },
    close: () => provider.close(),
  };
}

describe("memory", () => {
  const world = (): PollingWorld => ({
    lockAdapter: () => new MemoryLockAdapter(),
    semaphoreAdapter: () => new MemorySemaphoreAdapter(),
    close: async () => {},
  });
  providerCloseEndsWaits("lock", world);
  providerCloseEndsWaits("semaphore", world);
});

describe("sqlite (polling)", () => {
  let kysely: Kysely<unknown>;
  const lockTable = uniqueName("i20_close_poll_lock");
  const semaphoreTable = uniqueName("i20_close_poll_sem");
  beforeAll(async () => {
    kysely = new Kysely({
      dialect: new SqliteDialect({ database: new Database(sqliteFile(uniqueName("close"))) }),
    });
    await new KyselyLockAdapter({ kysely, tableName: lockTable }).init();
    await new KyselySemaphoreAdapter({ kysely, tableName: semaphoreTable }).init();
  });
  afterAll(() => kysely.destroy());
  const world = (): PollingWorld => ({
    lockAdapter: () => new KyselyLockAdapter({ kysely, tableName: lockTable }),
    semaphoreAdapter: () => new KyselySemaphoreAdapter({ kysely, tableName: semaphoreTable }),
    close: async () => {},
  });
  providerCloseEndsWaits("lock", world);
  providerCloseEndsWaits("semaphore", world);
});

describeWithBackend("postgres", (url) => {
  describe("without a listener (polling)", () => {
    let kysely: Kysely<unknown>;
    const lockTable = uniqueName("i20_close_poll_lock");
    const semaphoreTable = uniqueName("i20_close_poll_sem");
    beforeAll(async () => {
      kysely = new Kysely({ dialect: new PostgresDialect({ pool: createPgPool(url) }) });
      await new KyselyLockAdapter({ kysely, tableName: lockTable }).init();
      await new KyselySemaphoreAdapter({ kysely, tableName: semaphoreTable }).init();
    });
    afterAll(async () => {
      await new KyselyLockAdapter({ kysely, tableName: lockTable }).dropSchema();
      await new KyselySemaphoreAdapter({ kysely, tableName: semaphoreTable }).dropSchema();
      await kysely.destroy();
    });
    const world = (): PollingWorld => ({
      lockAdapter: () => new KyselyLockAdapter({ kysely, tableName: lockTable }),
      semaphoreAdapter: () => new KyselySemaphoreAdapter({ kysely, tableName: semaphoreTable }),
      close: async () => {},
    });
    providerCloseEndsWaits("lock", world);
    providerCloseEndsWaits("semaphore", world);
  });
});
