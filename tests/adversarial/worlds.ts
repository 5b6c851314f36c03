/**
 * Where the adversarial scenarios run: memory, Redis, and PostgreSQL with a `listener` (the
 * backends whose blocking acquires queue and are handed the key at a release). A world gives
 * providers that contend for one namespace as separate processes would (on Redis and PostgreSQL
 * each provider has its own adapter, so its own inbox), and a view of the backend's queue.
 */
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, onTestFinished, vi } from "vitest";
import { decodeWaitEntry } from "../../src/backends/wait-queue/wait-entry.js";
import {
  KyselyLockAdapter,
  storedKey,
} from "../../src/lock/adapters/kysely/kysely-lock-adapter.js";
import { MemoryLockAdapter } from "../../src/lock/adapters/memory/memory-lock-adapter.js";
import {
  RedisLockAdapter,
  redisHoldKey,
} from "../../src/lock/adapters/redis/redis-lock-adapter.js";
import type { ILockAdapter } from "../../src/lock/contracts/lock-adapter.js";
import { LockProvider } from "../../src/lock/lock-provider.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { createRedisClient, describeWithBackend, uniqueName } from "../harness/backends.js";

export type WorldName = "memory" | "redis" | "postgres";

/** One test's view of a backend; everything it makes is closed when the test ends. */
export type World = {
  name: WorldName;
  url: string | undefined;
  /** PostgreSQL: the lock table. */
  table: string | undefined;
  /** A provider on an adapter of its own (memory: the one in-process adapter), in the test's namespace. */
  provider(): LockProvider;
  /** The key a user key is stored under (what the adapter is given). */
  storedKey(key: string): string;
  /** How many waits are queued on a user key. */
  queued(key: string): Promise<number>;
  /**
   * The entries queued on a user key as the backend keeps them,
   * `<deadline ms>:<ttl>:<inbox>:<wait id>:<owner>` (Redis and PostgreSQL; memory: none).
   */
  entries(key: string): Promise<string[]>;
  /** Resolves once `count` waits are queued on a user key (fails after 10 s). */
  untilQueued(key: string, count: number): Promise<void>;
};

/** Generous: a loaded CI host may be slow, but what never happens still fails. */
export const PATIENCE_MS = 10_000;

/** Resolves once `check` passes; fails the test with its last error after PATIENCE_MS. */
export async function eventually<T>(check: () => T | Promise<T>): Promise<T> {
  return vi.waitFor(check, { timeout: PATIENCE_MS, interval: 5 });
}

/** A memory adapter counting the waits under way per key (it queues a wait in the call). */
function countingWaits(adapter: MemoryLockAdapter): {
  adapter: ILockAdapter;
  waiting: Map<string, number>;
} {
  const waiting = new Map<string, number>();
  const counted: ILockAdapter = {
    acquire: (key, lockId, ttl) => adapter.acquire(key, lockId, ttl),
    release: (key, lockId) => adapter.release(key, lockId),
    forceRelease: (key) => adapter.forceRelease(key),
    refresh: (key, lockId, ttl) => adapter.refresh(key, lockId, ttl),
    getState: (key) => adapter.getState(key),
    waitsPastExpiry: adapter.waitsPastExpiry,
    waitForRelease: (key, maxWait, signal, claim) => {
      const wait = adapter.waitForRelease(key, maxWait, signal, claim);
      waiting.set(key, (waiting.get(key) ?? 0) + 1);
      const done = () => waiting.set(key, (waiting.get(key) ?? 1) - 1);
      wait.then(done, done);
      return wait;
    },
  };
  return { adapter: counted, waiting };
}

type Backend = {
  newAdapter(): ILockAdapter;
  queued(stored: string): Promise<number>;
  entries(stored: string): Promise<string[]>;
};

function world(
  name: WorldName,
  url: string | undefined,
  backend: () => Backend,
  table?: string,
): World {
  const namespace = new Namespace(uniqueName(`adv ${name}`));
  const stored = (key: string) => namespace.create(key).toString();
  const current = backend();
  const self: World = {
    name,
    url,
    table,
    provider: () => new LockProvider({ adapter: current.newAdapter(), namespace }),
    storedKey: stored,
    queued: (key) => current.queued(stored(key)),
    entries: (key) => current.entries(stored(key)),
    untilQueued: async (key, count) => {
      await eventually(async () => {
        const queued = await current.queued(stored(key));
        if (queued < count) {
          throw new Error(`${count} wait(s) queued on ${key} expected, ${queued} are`);
        }
      });
    },
  };
  return self;
}

/**
 * Runs `body` on memory, Redis and PostgreSQL (with a listener); `fresh()` gives a world for
 * one test (call it in the test: its adapters are closed when the test ends).
 */
export function describeWorlds(body: (fresh: () => World) => void): void {
  describe("memory", () => {
    body(() => {
      const counting = countingWaits(new MemoryLockAdapter());
      return world("memory", undefined, () => ({
        newAdapter: () => counting.adapter,
        queued: async (stored) => counting.waiting.get(stored) ?? 0,
        entries: async () => [],
      }));
    });
  });

  describeWithBackend("redis", (url) => {
    let client: ReturnType<typeof createRedisClient>;
    beforeAll(() => {
      client = createRedisClient(url);
    });
    afterAll(async () => {
      await client.quit();
    });
    body(() =>
      world("redis", url, () => ({
        newAdapter: () => {
          const adapter = new RedisLockAdapter(client);
          onTestFinished(() => adapter.close());
          return adapter;
        },
        queued: (stored) => client.llen(`${redisHoldKey(stored)}:queue`),
        entries: (stored) => client.lrange(`${redisHoldKey(stored)}:queue`, 0, -1),
      })),
    );
  });

  describeWithBackend("postgres", (url) => {
    let pool: pg.Pool;
    let listener: pg.Pool;
    let kysely: Kysely<unknown>;
    const table = uniqueName("adversarial");
    beforeAll(async () => {
      pool = new pg.Pool({ connectionString: url, max: 10 });
      listener = new pg.Pool({ connectionString: url, max: 10 });
      kysely = new Kysely({ dialect: new PostgresDialect({ pool }) });
      await new KyselyLockAdapter({ kysely, tableName: table }).init();
    });
    afterAll(async () => {
      await new KyselyLockAdapter({ kysely, tableName: table }).dropSchema();
      await kysely.destroy();
      await listener.end();
    });
    const waiters = async (stored: string) => {
      const { rows } = await sql<{ waiters: string[] | null }>`
        SELECT waiters FROM ${sql.table(table)} WHERE lock_key = ${storedKey(stored)}`.execute(
        kysely,
      );
      return rows[0]?.waiters ?? [];
    };
    body(() =>
      world(
        "postgres",
        url,
        () => ({
          newAdapter: () => {
            const adapter = new KyselyLockAdapter({ kysely, tableName: table, listener });
            onTestFinished(() => adapter.close());
            return adapter;
          },
          queued: async (stored) => (await waiters(stored)).length,
          entries: waiters,
        }),
        table,
      ),
    );
  });
}

/** A queue entry's parts (wait-entry.ts's format). */
export function parseEntry(entry: string): { inbox: string; waitId: string; owner: string } {
  const decoded = decodeWaitEntry(entry);
  if (decoded === undefined) {
    throw new Error(`not a queue entry: ${entry}`);
  }
  const { inbox, waitId, claim } = decoded;
  return { inbox, waitId, owner: claim?.owner ?? "" };
}
