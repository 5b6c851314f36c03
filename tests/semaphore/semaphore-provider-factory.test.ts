import { describe, expect, test } from "vitest";
import { InvalidArgumentError } from "../../src/errors/invalid-argument-error.js";
import { Namespace } from "../../src/namespace/namespace.js";
import { MemorySemaphoreAdapter } from "../../src/semaphore/adapters/memory/memory-semaphore-adapter.js";
import type { ISemaphore } from "../../src/semaphore/contracts/semaphore.js";
import { SemaphoreProviderFactory } from "../../src/semaphore/semaphore-provider-factory.js";
import { SuperJsonSerdeAdapter } from "../../src/serde/adapters/super-json/super-json-serde-adapter.js";
import { Serde } from "../../src/serde/serde.js";

describe("SemaphoreProviderFactory", () => {
  test("no adapters, or an unknown default, fail at construction and name the configured ones", () => {
    expect(() => new SemaphoreProviderFactory({ adapters: {} })).toThrow(InvalidArgumentError);
    expect(
      () =>
        new SemaphoreProviderFactory({
          adapters: { memory: new MemorySemaphoreAdapter() },
          // @ts-expect-error A name written in the code that is none of the adapters fails to compile, naming it.
          defaultAdapter: "redis",
        }),
    ).toThrow(/"redis" is not one of the configured adapters \("memory"\)/);
  });

  test("use() gives the same provider per name; the only adapter is the default", () => {
    const factory = new SemaphoreProviderFactory({
      adapters: { memory: new MemorySemaphoreAdapter() },
    });
    expect(factory.use()).toBe(factory.use("memory"));
    expect(() => factory.use("other")).toThrow(InvalidArgumentError);
    const two = new SemaphoreProviderFactory({
      adapters: { a: new MemorySemaphoreAdapter(), b: new MemorySemaphoreAdapter() },
    });
    expect(() => two.use()).toThrow(/no adapter named and no defaultAdapter/);
    expect(two.use("a")).not.toBe(two.use("b"));
  });

  test("a semaphore serialized through a factory revives on its set… copy, and releases", async () => {
    const serde = new Serde(new SuperJsonSerdeAdapter());
    const adapter = new MemorySemaphoreAdapter();
    const namespace = new Namespace(["factory-test", String(process.pid)]);
    const factory = new SemaphoreProviderFactory({
      adapters: { memory: adapter },
      serde,
      namespace,
    });
    const semaphore = factory.use().create("exports", { limit: 2 });
    expect(await semaphore.acquire()).toBe(true);
    const copy = factory.setDefaultBlockingTime({ toMilliseconds: () => 1_000 });
    const revived = serde.deserialize<ISemaphore>(serde.serialize(semaphore));
    expect(await revived.release()).toBe(true);
    expect(await copy.use().create("exports", { limit: 2 }).getState()).toEqual({
      type: "EXPIRED",
    });
    await factory.close();
  });
});
