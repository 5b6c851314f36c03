// Property-based tests over the public API and the lock deserializer: every input either works
// or throws a typed error (a HaspError), and none of them corrupts another lock or crashes the
// process. Each property runs on real backends, beside a sentinel lock that must stay as it was.

import Database from "better-sqlite3";
import fc from "fast-check";
import type { Redis } from "ioredis";
import { Kysely, SqliteDialect } from "kysely";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { isHaspError } from "../../src/errors/hasp-error.js";
import { KyselyLockAdapter } from "../../src/lock/adapters/kysely/kysely-lock-adapter.js";
import { MemoryLockAdapter } from "../../src/lock/adapters/memory/memory-lock-adapter.js";
import { RedisLockAdapter } from "../../src/lock/adapters/redis/redis-lock-adapter.js";
import type { ILock } from "../../src/lock/contracts/lock.js";
import type { ILockAdapter } from "../../src/lock/contracts/lock-adapter.js";
import { LOCK_STATE } from "../../src/lock/contracts/lock-state.js";
import { LockProvider } from "../../src/lock/lock-provider.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { SuperJsonSerdeAdapter } from "../../src/serde/adapters/super-json/super-json-serde-adapter.js";
import { Serde } from "../../src/serde/serde.js";
import { type ITimeSpan, TimeSpan } from "../../src/time-span/time-span.js";
import { createRedisClient, describeWithBackend, uniqueName } from "../harness/backends.js";

/** Runs per property and backend; `HASP_PROPERTY_RUNS` raises it for a long run. */
const RUNS = Number(process.env.HASP_PROPERTY_RUNS ?? 60);

/** Resolves to what `fn` gave, or to the error it threw, which must be a HaspError. */
async function typedOutcome<T>(
  fn: () => T | PromiseLike<T>,
): Promise<{ value?: T; error?: unknown }> {
  try {
    return { value: await fn() };
  } catch (error) {
    expect(isHaspError(error), `an untyped error: ${String(error)}`).toBe(true);
    return { error };
  }
}

/** Anything a caller might pass where a TimeSpan belongs. */
const spanLike: fc.Arbitrary<unknown> = fc.oneof(
  fc.double().map((ms) => ({ toMilliseconds: () => ms }) satisfies ITimeSpan),
  fc.integer({ min: 1, max: 5_000 }).map((ms) => TimeSpan.fromMilliseconds(ms)),
  fc.constantFrom(null, undefined, 0, -1, Number.NaN, "1s", {}, [], () => 5),
  fc.anything(),
);

const keyLike: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.constantFrom("", " ", ":", "*", "{x}", "'; DROP TABLE hasp_locks; --", "$owner", "\u0000"),
  fc.anything(),
);

const lockIdLike: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 300 }),
  fc.constantFrom("", "$$NOW", "a:b:c", "x".repeat(256)),
  fc.anything(),
);

/** A copy of `value` with the node at one random path replaced. */
function mutateJson(value: unknown, path: number[], replacement: unknown): unknown {
  if (path.length === 0 || value === null || typeof value !== "object") {
    return replacement;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) {
    return replacement;
  }
  const [head, ...rest] = path as [number, ...number[]];
  const [name, child] = entries[head % entries.length] as [string, unknown];
  const copy: Record<string, unknown> = Array.isArray(value) ? ([...value] as never) : { ...value };
  copy[name] = mutateJson(child, rest, replacement);
  return copy;
}

/** A serialized lock `text` replaced, mutated at one JSON path, or with a few characters changed. */
function mutatedSerializations(text: string): fc.Arbitrary<string> {
  const document = JSON.parse(text) as unknown;
  return fc.oneof(
    fc.string({ maxLength: 200 }),
    fc
      .tuple(fc.array(fc.nat(), { minLength: 1, maxLength: 5 }), fc.jsonValue())
      .map(([path, replacement]) => JSON.stringify(mutateJson(document, path, replacement))),
    fc
      .tuple(fc.nat({ max: text.length - 1 }), fc.string({ minLength: 1, maxLength: 3 }))
      .map(([at, chars]) => text.slice(0, at) + chars + text.slice(at + 1)),
  );
}

type Backend = { name: string; adapter: () => ILockAdapter; close?: () => Promise<void> };

function properties(backend: () => Backend | Promise<Backend>): void {
  let provider: LockProvider;
  let serde: Serde;
  let sentinel: ILock;
  let sentinelToken: number;
  let current: Backend;

  beforeAll(async () => {
    current = await backend();
    serde = new Serde(new SuperJsonSerdeAdapter());
    provider = new LockProvider({
      adapter: current.adapter(),
      namespace: new Namespace(uniqueName("props")),
      serde,
    });
    sentinel = provider.create("sentinel", { ttl: TimeSpan.fromMinutes(10) });
    sentinelToken = await sentinel.acquireOrFail();
  });

  afterAll(async () => {
    await sentinel?.forceRelease();
    await current.close?.();
  });

  /** The sentinel is still held, by the same hold. */
  async function expectSentinelIntact(): Promise<void> {
    const state = await sentinel.getState();
    expect(state).toMatchObject({ type: LOCK_STATE.ACQUIRED, fencingToken: sentinelToken });
  }

  test("create, acquire, refresh, release with any key, TTL and lock id: works or a typed error", async () => {
    await fc.assert(
      fc.asyncProperty(
        keyLike,
        fc.record({ ttl: spanLike, lockId: lockIdLike }, { requiredKeys: [] }),
        async (key, settings) => {
          const created = await typedOutcome(() =>
            provider.create(key as string, settings as never),
          );
          const lock = created.value;
          if (lock !== undefined) {
            const acquired = await typedOutcome(() => lock.acquire());
            if (acquired.value === true) {
              await typedOutcome(() => lock.refresh());
              // Ours, or already expired (a TTL of a fraction of a millisecond is allowed).
              expect([LOCK_STATE.ACQUIRED, LOCK_STATE.EXPIRED]).toContain(
                (await lock.getState()).type,
              );
              await typedOutcome(() => lock.release());
            }
            await typedOutcome(() => lock.forceRelease());
          }
          await expectSentinelIntact();
        },
      ),
      { numRuns: RUNS },
    );
  });

  test("blocking acquires with any time and interval: works or a typed error, never hangs", async () => {
    await fc.assert(
      fc.asyncProperty(spanLike, spanLike, fc.boolean(), async (time, interval, onSentinel) => {
        // On the sentinel's key a blocking acquire must give up (bounded here by a timeout of
        // the test runner); on a fresh key it gets it at once.
        const lock = provider.create(onSentinel ? "sentinel" : uniqueName("blocking"), {
          ttl: TimeSpan.fromSeconds(5),
        });
        const bounded = {
          time: onSentinel ? TimeSpan.fromMilliseconds(20) : time,
          interval,
        } as never;
        const outcome = await typedOutcome(() => lock.acquireBlocking(bounded));
        if (outcome.value === true) {
          expect(onSentinel).toBe(false);
          await lock.release();
        }
        await expectSentinelIntact();
      }),
      { numRuns: RUNS },
    );
  });

  test("deserializing random or mutated serialized locks: a working lock or a typed error", async () => {
    const original = provider.create("serialized", { ttl: TimeSpan.fromSeconds(30) });
    await original.acquireOrFail();
    const mutated = mutatedSerializations(serde.serialize(original));

    await fc.assert(
      fc.asyncProperty(mutated, async (candidate) => {
        const revived = await typedOutcome(() => serde.deserialize<unknown>(candidate));
        const lock = revived.value as ILock | undefined;
        if (lock !== null && typeof lock === "object" && typeof lock.getState === "function") {
          await typedOutcome(() => lock.getState());
          await typedOutcome(() => lock.release());
          await typedOutcome(() => lock.refresh());
        }
        await expectSentinelIntact();
      }),
      { numRuns: RUNS * 3 },
    );
    await original.release();
  });
}

describe("memory", () => {
  properties(() => ({ name: "memory", adapter: () => new MemoryLockAdapter() }));
});

describe("SQLite", () => {
  properties(async () => {
    const kysely = new Kysely({
      dialect: new SqliteDialect({ database: new Database(":memory:") }),
    });
    const adapter = new KyselyLockAdapter({ kysely });
    await adapter.init();
    return { name: "sqlite", adapter: () => adapter, close: () => kysely.destroy() };
  });
});

describeWithBackend("redis", (url) => {
  let client: Redis;
  beforeAll(() => {
    client = createRedisClient(url);
  });
  properties(() => {
    const adapter = new RedisLockAdapter(client);
    return {
      name: "redis",
      adapter: () => adapter,
      close: async () => {
        await adapter.close();
        await client.quit();
      },
    };
  });
});
