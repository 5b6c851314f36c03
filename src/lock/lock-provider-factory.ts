import { InvalidArgumentError } from "../errors/invalid-argument-error.js";
import type { ILockAdapter } from "./contracts/lock-adapter.js";
import { LockProvider, type LockProviderSettings } from "./lock-provider.js";
import { LOCK_DEFAULTS } from "./lock-settings.js";

/**
 * Settings of {@link LockProviderFactory}: named adapters, a default, and the
 * {@link LockProviderSettings} every provider shares (all but `adapter` and `providerId`).
 */
export type LockProviderFactorySettings<TName extends string> = Omit<
  LockProviderSettings,
  "adapter" | "providerId"
> & {
  /** The configured stores by name: `{ memory: new MemoryLockAdapter(), redis: … }`. */
  adapters: Record<TName, ILockAdapter>;
  /**
   * The adapter `use()` returns without a name; often `process.env.LOCK_STORE`. An unknown
   * name fails at construction, listing the configured ones.
   * @default the only adapter, when there is just one
   */
  defaultAdapter?: TName | (string & {}) | undefined;
};

/**
 * Named lock stores and a default, the way an application picks its store by environment.
 * Each adapter gets one provider, created up front (so a bad setting fails at start-up) with
 * the shared settings; their provider ids are `<namespace>#<name>`.
 *
 * @example
 * const locks = new LockProviderFactory({
 *   adapters: { memory: new MemoryLockAdapter(), redis: new RedisLockAdapter(redis) },
 *   defaultAdapter: process.env.LOCK_STORE,
 * });
 * const lock = locks.use().create("report");
 */
export class LockProviderFactory<TName extends string> {
  readonly #providers: ReadonlyMap<string, LockProvider>;
  readonly #defaultName: string | undefined;

  /** @throws InvalidArgumentError on an unknown default, no adapters, or bad provider settings. */
  constructor(settings: LockProviderFactorySettings<TName>) {
    const { adapters, defaultAdapter, ...providerSettings } = settings;
    const names = Object.keys(adapters ?? {});
    if (names.length === 0) {
      throw new InvalidArgumentError(
        "LockProviderFactory settings: adapters: name at least one adapter",
        [{ path: "adapters", message: "name at least one adapter" }],
      );
    }
    if (defaultAdapter !== undefined && !names.includes(defaultAdapter)) {
      throw new InvalidArgumentError(
        `LockProviderFactory settings: defaultAdapter: "${defaultAdapter}" is not one of the configured adapters (${describeNames(names)})`,
        [{ path: "defaultAdapter", message: `must be one of ${describeNames(names)}` }],
      );
    }
    this.#defaultName = defaultAdapter ?? (names.length === 1 ? names[0] : undefined);
    const namespace = providerSettings.namespace ?? LOCK_DEFAULTS.namespace;
    this.#providers = new Map(
      names.map((name) => [
        name,
        new LockProvider({
          ...providerSettings,
          adapter: adapters[name as TName],
          providerId: `${namespace.toString()}#${name}`,
        }),
      ]),
    );
  }

  /**
   * The provider of the named adapter, or of the default one. The same provider every time.
   * @throws InvalidArgumentError on an unknown name, or no name and no default.
   */
  use(name?: TName | (string & {})): LockProvider {
    const chosen = name ?? this.#defaultName;
    const names = [...this.#providers.keys()];
    if (chosen === undefined) {
      throw new InvalidArgumentError(
        `LockProviderFactory.use: no adapter named and no defaultAdapter configured; choose one of ${describeNames(names)}`,
      );
    }
    const provider = this.#providers.get(chosen);
    if (provider === undefined) {
      throw new InvalidArgumentError(
        `LockProviderFactory.use: "${chosen}" is not one of the configured adapters (${describeNames(names)})`,
      );
    }
    return provider;
  }

  /**
   * Closes every provider (`LockProvider.close()`): the event buses they made and the
   * adapters' own resources. Your clients stay open.
   */
  async close(): Promise<void> {
    await Promise.all([...this.#providers.values()].map((provider) => provider.close()));
  }

  /** `close()`, for `await using locks = new LockProviderFactory(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function describeNames(names: readonly string[]): string {
  return names.map((name) => `"${name}"`).join(", ");
}
