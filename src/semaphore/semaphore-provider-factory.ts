import { InvalidArgumentError } from "../errors/invalid-argument-error.js";
import type { IEventBus } from "../event-bus/event-bus-contracts.js";
import type { INamespace } from "../namespace/namespace.js";
import type { ISerdeRegister } from "../serde/serde-contracts.js";
import type { ITimeSpan } from "../time-span/time-span.js";
import type { ISemaphoreAdapter } from "./contracts/semaphore-adapter.js";
import type { SemaphoreEventMap } from "./contracts/semaphore-events.js";
import {
  REPLACES_SEMAPHORE_PROVIDER,
  SemaphoreProvider,
  type SemaphoreProviderSettings,
} from "./semaphore-provider.js";
import { SEMAPHORE_DEFAULTS } from "./semaphore-settings.js";

/**
 * Settings of {@link SemaphoreProviderFactory}: named adapters, a default, and the
 * {@link SemaphoreProviderSettings} every provider shares (all but `adapter` and `providerId`).
 */
export type SemaphoreProviderFactorySettings<TName extends string> = Omit<
  SemaphoreProviderSettings,
  "adapter" | "providerId"
> & {
  /** The configured stores by name: `{ memory: new MemorySemaphoreAdapter(), redis: … }`. */
  adapters: Record<TName, ISemaphoreAdapter>;
  /**
   * The adapter `use()` returns without a name; often `process.env.SEMAPHORE_STORE`. An unknown
   * name fails at construction, listing the configured ones.
   * @default the only adapter, when there is just one
   */
  defaultAdapter?: TName | (string & {}) | undefined;
};

/**
 * Named semaphore stores and a default, as `LockProviderFactory` for locks: one provider per
 * adapter, created up front, with provider ids `<namespace>#<name>`. Its `set…` methods return
 * a new factory with one setting replaced.
 *
 * @example
 * const semaphores = new SemaphoreProviderFactory({
 *   adapters: { memory: new MemorySemaphoreAdapter(), redis: new RedisSemaphoreAdapter(redis) },
 *   defaultAdapter: process.env.SEMAPHORE_STORE,
 * });
 * const exports = semaphores.use().create("exports", { limit: 3 });
 */
export class SemaphoreProviderFactory<TName extends string> {
  readonly #settings: SemaphoreProviderFactorySettings<TName>;
  readonly #providers: ReadonlyMap<string, SemaphoreProvider>;
  readonly #defaultName: string | undefined;

  /** @throws InvalidArgumentError on an unknown default, no adapters, or bad provider settings. */
  constructor(settings: SemaphoreProviderFactorySettings<TName>) {
    this.#settings = settings;
    const {
      adapters,
      defaultAdapter,
      [REPLACES_SEMAPHORE_PROVIDER]: replacing,
      ...providerSettings
    } = settings as SemaphoreProviderFactorySettings<TName> & {
      [REPLACES_SEMAPHORE_PROVIDER]?: boolean;
    };
    const names = Object.keys(adapters ?? {});
    if (names.length === 0) {
      throw new InvalidArgumentError(
        "SemaphoreProviderFactory settings: adapters: name at least one adapter",
        [{ path: "adapters", message: "name at least one adapter" }],
      );
    }
    if (defaultAdapter !== undefined && !names.includes(defaultAdapter)) {
      throw new InvalidArgumentError(
        `SemaphoreProviderFactory settings: defaultAdapter: "${defaultAdapter}" is not one of the configured adapters (${describeNames(names)})`,
        [{ path: "defaultAdapter", message: `must be one of ${describeNames(names)}` }],
      );
    }
    this.#defaultName = defaultAdapter ?? (names.length === 1 ? names[0] : undefined);
    const namespace = providerSettings.namespace ?? SEMAPHORE_DEFAULTS.namespace;
    this.#providers = new Map(
      names.map((name) => [
        name,
        new SemaphoreProvider({
          ...providerSettings,
          adapter: adapters[name as TName],
          providerId: `${namespace.toString()}#${name}`,
          ...(replacing === true ? { [REPLACES_SEMAPHORE_PROVIDER]: true } : {}),
        }),
      ]),
    );
  }

  /** A new factory with another `defaultAdapter`. */
  setDefaultAdapter(name: TName | (string & {})): SemaphoreProviderFactory<TName> {
    return this.#with({ defaultAdapter: name });
  }

  /** A new factory with another `namespace`. */
  setNamespace(namespace: INamespace): SemaphoreProviderFactory<TName> {
    return this.#with({ namespace });
  }

  /** A new factory with another `eventBus`. */
  setEventBus(eventBus: IEventBus<SemaphoreEventMap>): SemaphoreProviderFactory<TName> {
    return this.#with({ eventBus });
  }

  /** A new factory with another `serde` (or list of serdes). */
  setSerde(serde: ISerdeRegister | ISerdeRegister[]): SemaphoreProviderFactory<TName> {
    return this.#with({ serde });
  }

  /** A new factory with another `defaultTtl` (`null`: slots never expire). */
  setDefaultTtl(ttl: ITimeSpan | null): SemaphoreProviderFactory<TName> {
    return this.#with({ defaultTtl: ttl });
  }

  /** A new factory with another `defaultBlockingInterval`. */
  setDefaultBlockingInterval(interval: ITimeSpan): SemaphoreProviderFactory<TName> {
    return this.#with({ defaultBlockingInterval: interval });
  }

  /** A new factory with another `defaultBlockingTime`. */
  setDefaultBlockingTime(time: ITimeSpan): SemaphoreProviderFactory<TName> {
    return this.#with({ defaultBlockingTime: time });
  }

  /** A new factory with another `defaultRefreshTime`. */
  setDefaultRefreshTime(time: ITimeSpan): SemaphoreProviderFactory<TName> {
    return this.#with({ defaultRefreshTime: time });
  }

  #with(change: Partial<SemaphoreProviderFactorySettings<TName>>): SemaphoreProviderFactory<TName> {
    const settings = { ...this.#settings, ...change, [REPLACES_SEMAPHORE_PROVIDER]: true };
    return new SemaphoreProviderFactory(settings as SemaphoreProviderFactorySettings<TName>);
  }

  /**
   * The provider of the named adapter, or of the default one. The same provider every time.
   * @throws InvalidArgumentError on an unknown name, or no name and no default.
   */
  use(name?: TName | (string & {})): SemaphoreProvider {
    const chosen = name ?? this.#defaultName;
    const names = [...this.#providers.keys()];
    if (chosen === undefined) {
      throw new InvalidArgumentError(
        `SemaphoreProviderFactory.use: no adapter named and no defaultAdapter configured; choose one of ${describeNames(names)}`,
      );
    }
    const provider = this.#providers.get(chosen);
    if (provider === undefined) {
      throw new InvalidArgumentError(
        `SemaphoreProviderFactory.use: "${chosen}" is not one of the configured adapters (${describeNames(names)})`,
      );
    }
    return provider;
  }

  /** Closes every provider: the event buses they made and the adapters' own resources. */
  async close(): Promise<void> {
    await Promise.all([...this.#providers.values()].map((provider) => provider.close()));
  }

  /** `close()`, for `await using semaphores = new SemaphoreProviderFactory(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function describeNames(names: readonly string[]): string {
  return names.map((name) => `"${name}"`).join(", ");
}
