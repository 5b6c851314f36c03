import { describe, expect, test, vi } from "vitest";
import { InvalidArgumentError } from "../../src/errors/invalid-argument-error.js";
import { MemoryEventBusAdapter } from "../../src/event-bus/adapters/memory/memory-event-bus-adapter.js";
import { EventBus } from "../../src/event-bus/event-bus.js";
import { MemoryLockAdapter } from "../../src/lock/adapters/memory/memory-lock-adapter.js";
import type { ILock } from "../../src/lock/contracts/lock.js";
import { LOCK_EVENTS, type LockEventMap } from "../../src/lock/contracts/lock-events.js";
import { LockProvider } from "../../src/lock/lock-provider.js";
import {
  LockProviderFactory,
  type LockProviderFactorySettings,
} from "../../src/lock/lock-provider-factory.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { SuperJsonSerdeAdapter } from "../../src/serde/adapters/super-json/super-json-serde-adapter.js";
import { Serde } from "../../src/serde/serde.js";
import { TimeSpan } from "../../src/time-span/time-span.js";

function stores() {
  return { memory: new MemoryLockAdapter(), redis: new MemoryLockAdapter() };
}

/** What `new LockProviderFactory(settings)` throws, or null. */
function constructionError(
  settings: ConstructorParameters<typeof LockProviderFactory<string>>[0],
): unknown {
  try {
    new LockProviderFactory(settings);
    return null;
  } catch (error) {
    return error;
  }
}

describe("LockProviderFactory", () => {
  test("use(name) returns that adapter's provider, the same one every time", async () => {
    const adapters = stores();
    const factory = new LockProviderFactory({ adapters, defaultAdapter: "memory" });
    const memory = factory.use("memory");
    expect(memory).toBeInstanceOf(LockProvider);
    expect(factory.use("memory")).toBe(memory);
    expect(factory.use("redis")).toBe(factory.use("redis"));
    expect(factory.use("redis")).not.toBe(memory);

    await factory.use("redis").create("k").acquire();
    expect(await adapters.redis.getState("hasp:lock:k")).not.toBeNull();
    expect(await adapters.memory.getState("hasp:lock:k")).toBeNull();
  });

  test("use() without a name returns the default adapter's provider", () => {
    const factory = new LockProviderFactory({ adapters: stores(), defaultAdapter: "redis" });
    expect(factory.use()).toBe(factory.use("redis"));
  });

  test("the only adapter is the default", () => {
    const factory = new LockProviderFactory({ adapters: { memory: new MemoryLockAdapter() } });
    expect(factory.use()).toBe(factory.use("memory"));
  });

  test("several adapters and no default: use() without a name fails, naming the choices", () => {
    const factory = new LockProviderFactory({ adapters: stores() });
    expect(() => factory.use()).toThrow(InvalidArgumentError);
    expect(() => factory.use()).toThrow(/"memory", "redis"/);
    expect(factory.use("memory")).toBeInstanceOf(LockProvider);
  });

  test("a defaultAdapter written in the code that is none of the adapters fails to compile, naming it (not the adapters)", () => {
    const error = (() => {
      try {
        // @ts-expect-error '"reddis"' is not assignable to '"\"reddis\" is not one of the names in adapters"'
        new LockProviderFactory({ adapters: stores(), defaultAdapter: "reddis" });
        return null;
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(InvalidArgumentError);
    // Any string (an environment variable) compiles, and is checked at construction.
    const fromEnv: string | undefined = process.env.HASP_TEST_UNSET_STORE ?? "memory";
    const factory = new LockProviderFactory({ adapters: stores(), defaultAdapter: fromEnv });
    expect(factory.use()).toBe(factory.use("memory"));
    // Typed by its names only (settings written beside it, a factory injected as a dependency).
    const settings: LockProviderFactorySettings<"memory" | "redis"> = {
      adapters: stores(),
      defaultAdapter: fromEnv,
    };
    const injected: LockProviderFactory<"memory" | "redis"> = new LockProviderFactory(settings);
    expect(injected.use()).toBe(injected.use("memory"));
  });

  test("an unknown defaultAdapter (a mistyped LOCK_STORE) fails at construction, naming the valid names", () => {
    const error = constructionError({ adapters: stores(), defaultAdapter: "reddis" });
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(String((error as Error).message)).toMatch(/defaultAdapter/);
    expect(String((error as Error).message)).toMatch(/"reddis"/);
    expect(String((error as Error).message)).toMatch(/"memory", "redis"/);
    expect(constructionError({ adapters: stores(), defaultAdapter: "" })).toBeInstanceOf(
      InvalidArgumentError,
    );
  });

  test("an unknown use(name) fails the same way", () => {
    const factory = new LockProviderFactory({ adapters: stores(), defaultAdapter: "memory" });
    expect(() => factory.use("mongodb")).toThrow(InvalidArgumentError);
    expect(() => factory.use("mongodb")).toThrow(/"mongodb".*"memory", "redis"/);
  });

  test("no adapters fails at construction", () => {
    expect(constructionError({ adapters: {} })).toBeInstanceOf(InvalidArgumentError);
    expect(String((constructionError({ adapters: {} }) as Error).message)).toMatch(/adapters/);
    expect(
      constructionError({ adapters: undefined as unknown as Record<string, MemoryLockAdapter> }),
    ).toBeInstanceOf(InvalidArgumentError);
  });

  test("bad shared provider settings, or a bad adapter, fail at construction naming the field", () => {
    const bad: Array<[settings: unknown, field: RegExp]> = [
      [{ adapters: stores(), defaultTtl: TimeSpan.fromMilliseconds(-1) }, /defaultTtl/],
      [{ adapters: { memory: {} } }, /adapter/],
      [{ adapters: stores(), defaultTTL: TimeSpan.fromSeconds(1) }, /defaultTTL/],
    ];
    for (const [settings, field] of bad) {
      const error = constructionError(
        settings as ConstructorParameters<typeof LockProviderFactory<string>>[0],
      );
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(String((error as Error).message)).toMatch(field);
    }
  });

  test("providers of different adapters are independent: the same key is held on each at once", async () => {
    const factory = new LockProviderFactory({ adapters: stores(), defaultAdapter: "memory" });
    const onMemory = factory.use("memory").create("invoice:1");
    const onRedis = factory.use("redis").create("invoice:1");
    expect(await onMemory.acquire()).toBe(true);
    expect(await onRedis.acquire()).toBe(true);
    expect(await factory.use("memory").create("invoice:1").acquire()).toBe(false);
    expect(await onRedis.release()).toBe(true);
    expect((await onMemory.getState()).type).toBe("ACQUIRED");

    const heard: string[] = [];
    await factory.use("memory").addListener("RELEASED", ({ lockId }) => {
      heard.push(lockId);
    });
    const heardOnRedis: string[] = [];
    await factory.use("redis").addListener("RELEASED", ({ lockId }) => {
      heardOnRedis.push(lockId);
    });
    await onRedis.acquire();
    await onRedis.release();
    await onMemory.release();
    // Once the Redis provider has heard its release, a shared bus would have told the memory
    // provider's listener too.
    await vi.waitFor(
      () => {
        expect(heardOnRedis).toContain(onRedis.id);
        expect(heard).toContain(onMemory.id);
      },
      { timeout: 10_000, interval: 5 },
    );
    expect(heard).toEqual([onMemory.id]);
  });

  test("shared settings reach every provider: namespace and default TTL", async () => {
    const adapters = stores();
    const factory = new LockProviderFactory({
      adapters,
      defaultAdapter: "memory",
      namespace: new Namespace(["billing", "locks"]),
      defaultTtl: TimeSpan.fromSeconds(7),
    });
    for (const name of ["memory", "redis"] as const) {
      const lock = factory.use(name).create("order:42");
      expect(lock.ttl?.toMilliseconds()).toBe(7_000);
      await lock.acquire();
      expect(await adapters[name].getState("billing:locks:order:42")).not.toBeNull();
    }
  });

  test("with a serde, each adapter's locks round-trip to their own provider", async () => {
    const serde = new Serde(new SuperJsonSerdeAdapter());
    const adapters = stores();
    const factory = new LockProviderFactory({ adapters, defaultAdapter: "memory", serde });
    for (const name of ["memory", "redis"] as const) {
      const lock = factory.use(name).create("report");
      await lock.acquire();
      const revived = serde.deserialize<ILock>(serde.serialize(lock));
      expect(revived.id).toBe(lock.id);
      expect(await revived.release()).toBe(true);
      expect(await adapters[name].getState("hasp:lock:report")).toBeNull();
    }
  });

  test("close() and await using close every provider's adapter once", async () => {
    const closed: string[] = [];
    const closing = (name: string) =>
      Object.assign(new MemoryLockAdapter(), {
        close: async () => {
          closed.push(name);
        },
      });
    {
      await using factory = new LockProviderFactory({
        adapters: { a: closing("a"), b: closing("b") },
      });
      expect(await factory.use("b").create("report").acquire()).toBe(true);
      expect(closed).toEqual([]);
    }
    expect(closed.sort()).toEqual(["a", "b"]);

    const factory = new LockProviderFactory({ adapters: { c: closing("c") } });
    await factory.close();
    await factory.close();
    expect(closed.sort()).toEqual(["a", "b", "c"]);
  });
  test("set… methods (daiso-core's) return a new factory with one setting replaced; the original is unchanged", async () => {
    const adapters = stores();
    const factory = new LockProviderFactory({ adapters, defaultAdapter: "memory" });
    const longer = factory.setDefaultTtl(TimeSpan.fromSeconds(30));
    expect(longer).not.toBe(factory);
    expect(longer.use().create("k").ttl?.toMilliseconds()).toBe(30_000);
    expect(factory.use().create("k").ttl?.toMilliseconds()).toBe(5 * 60_000);
    expect(factory.setDefaultTtl(null).use().create("k").ttl).toBeNull();

    expect(factory.setDefaultAdapter("redis").use()).not.toBe(factory.use());
    // @ts-expect-error A name written in the code that is not one of `adapters` fails to compile.
    expect(() => factory.setDefaultAdapter("nope")).toThrow(/"nope" is not one of/);
    const named = factory
      .setCreateLockId(() => "worker")
      .use()
      .create("k");
    expect(named.id).toBe("worker");

    const other = factory.setNamespace(new Namespace("other"));
    await other.use().create("k").acquire();
    expect(await adapters.memory.getState("other:k")).not.toBeNull();
    expect(await adapters.memory.getState("hasp:lock:k")).toBeNull();

    const refreshing = factory.setDefaultRefreshTime(TimeSpan.fromMinutes(10)).use().create("r");
    await refreshing.acquire();
    await refreshing.refresh();
    const state = await adapters.memory.getState("hasp:lock:r");
    expect(state?.remainingTime?.toMilliseconds()).toBeGreaterThan(9 * 60_000);

    const eventBus = new EventBus<LockEventMap>({ adapter: new MemoryEventBusAdapter() });
    const heard: string[] = [];
    await eventBus.addListener(LOCK_EVENTS.ACQUIRED, ({ key }) => void heard.push(key));
    await factory.setEventBus(eventBus).use().create("e").acquire();
    await vi.waitFor(() => expect(heard).toEqual(["e"]));
    const polling = factory.setDefaultBlockingInterval(TimeSpan.fromMilliseconds(10));
    const quick = polling.setDefaultBlockingTime(TimeSpan.fromMilliseconds(50));
    await quick.use().create("q").acquire();
    expect(await quick.use().create("q").acquireBlocking()).toBe(false);
    expect(() => factory.setDefaultBlockingTime(TimeSpan.fromMilliseconds(-1))).toThrow(
      InvalidArgumentError,
    );
  });

  test("a set… copy on a serde takes over its providers' ids: locks revive on the copy", async () => {
    const adapters = stores();
    const serde = new Serde(new SuperJsonSerdeAdapter());
    const factory = new LockProviderFactory({ adapters, defaultAdapter: "memory", serde });
    const lock = factory.use().create("k", { ttl: TimeSpan.fromSeconds(10) });
    await lock.acquire();
    const copy = factory.setDefaultBlockingTime(TimeSpan.fromSeconds(1));
    const revived = serde.deserialize<ILock>(serde.serialize(lock));
    expect(revived.id).toBe(lock.id);
    expect(await revived.release()).toBe(true);
    expect(copy.use().providerId).toBe(factory.use().providerId);
    // Another factory on other adapters still may not take the ids.
    expect(() => new LockProviderFactory({ adapters: stores(), serde })).toThrow(/providerId/);
  });
});
