import { describe, expect, test } from "vitest";
import { InvalidArgumentError } from "../../src/errors/invalid-argument-error.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { SuperJsonSerdeAdapter } from "../../src/serde/adapters/super-json/super-json-serde-adapter.js";
import { Serde } from "../../src/serde/serde.js";
import { MemorySharedLockAdapter } from "../../src/shared-lock/adapters/memory/memory-shared-lock-adapter.js";
import type { ISharedLock } from "../../src/shared-lock/contracts/shared-lock.js";
import { SharedLockProviderFactory } from "../../src/shared-lock/shared-lock-provider-factory.js";

describe("SharedLockProviderFactory", () => {
  test("no adapters, or an unknown default, fail at construction and name the configured ones", () => {
    expect(() => new SharedLockProviderFactory({ adapters: {} })).toThrow(InvalidArgumentError);
    expect(
      () =>
        new SharedLockProviderFactory({
          adapters: { memory: new MemorySharedLockAdapter() },
          // @ts-expect-error A name written in the code that is none of the adapters fails to compile, naming it.
          defaultAdapter: "redis",
        }),
    ).toThrow(/"redis" is not one of the configured adapters \("memory"\)/);
  });

  test("use() gives the same provider per name; the only adapter is the default", () => {
    const factory = new SharedLockProviderFactory({
      adapters: { memory: new MemorySharedLockAdapter() },
    });
    expect(factory.use()).toBe(factory.use("memory"));
    expect(() => factory.use("other")).toThrow(InvalidArgumentError);
    const two = new SharedLockProviderFactory({
      adapters: { a: new MemorySharedLockAdapter(), b: new MemorySharedLockAdapter() },
    });
    expect(() => two.use()).toThrow(/no adapter named and no defaultAdapter/);
    expect(two.use("a")).not.toBe(two.use("b"));
  });

  test("a shared lock serialized through a factory revives on its set… copy, and releases", async () => {
    const serde = new Serde(new SuperJsonSerdeAdapter());
    const adapter = new MemorySharedLockAdapter();
    const namespace = new Namespace(["factory-test", String(process.pid)]);
    const factory = new SharedLockProviderFactory({
      adapters: { memory: adapter },
      serde,
      namespace,
    });
    const sharedLock = factory.use().create("catalog", { limit: 2 });
    expect(await sharedLock.acquireWriter()).toBe(true);
    const copy = factory.setDefaultBlockingTime({ toMilliseconds: () => 1_000 });
    const revived = serde.deserialize<ISharedLock>(serde.serialize(sharedLock));
    expect(revived.limit).toBe(2);
    expect(await revived.releaseWriter()).toBe(true);
    expect(await copy.use().create("catalog", { limit: 2 }).getState()).toEqual({
      type: "EXPIRED",
    });
    await factory.close();
  });
});
