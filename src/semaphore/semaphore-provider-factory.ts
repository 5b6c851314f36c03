import type { IEventBus } from "../event-bus/event-bus-contracts.js";
import type { INamespace } from "../namespace/namespace.js";
import {
  changedSettings,
  closeProviders,
  factoryProviders,
  type NamedProviders,
  pickProvider,
} from "../primitive/named-providers.js";
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
export type SemaphoreProviderFactorySettings<
  TName extends string,
  TDefault extends string = string,
> = Omit<SemaphoreProviderSettings, "adapter" | "providerId"> & {
  /** The configured stores by name: `{ memory: new MemorySemaphoreAdapter(), redis: … }`. */
  adapters: Record<TName, ISemaphoreAdapter>;
  /**
   * The adapter `use()` returns without a name; often `process.env.SEMAPHORE_STORE`. An unknown
   * name fails at construction, listing the configured ones; a name written in the code
   * that is not one of `adapters` fails to compile, naming the problem (any `string` compiles).
   * @default the only adapter, when there is just one
   */
  defaultAdapter?:
    | (string extends TDefault
        ? TDefault
        : TDefault extends NoInfer<TName>
          ? TDefault
          : `"${TDefault}" is not one of the names in adapters`)
    | undefined;
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
export class SemaphoreProviderFactory<TName extends string, TDefault extends string = string> {
  readonly #settings: SemaphoreProviderFactorySettings<TName>;
  readonly #named: NamedProviders<SemaphoreProvider>;

  /** @throws InvalidArgumentError on an unknown default, no adapters, or bad provider settings. */
  constructor(settings: SemaphoreProviderFactorySettings<TName, TDefault>) {
    this.#settings = settings;
    this.#named = factoryProviders(
      "SemaphoreProviderFactory",
      settings as SemaphoreProviderFactorySettings<string> & {
        adapters: Record<string, ISemaphoreAdapter>;
      },
      { replaces: REPLACES_SEMAPHORE_PROVIDER, fallback: SEMAPHORE_DEFAULTS.namespace },
      (providerSettings) => new SemaphoreProvider(providerSettings),
    );
  }

  /** A new factory with another `defaultAdapter`. */
  setDefaultAdapter<TNew extends string>(
    name: string extends TNew
      ? TNew
      : TNew extends NoInfer<TName>
        ? TNew
        : `"${TNew}" is not one of the names in adapters`,
  ): SemaphoreProviderFactory<TName> {
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

  #with(
    change: Partial<SemaphoreProviderFactorySettings<TName, string>>,
  ): SemaphoreProviderFactory<TName> {
    const settings = changedSettings(this.#settings, change, REPLACES_SEMAPHORE_PROVIDER);
    return new SemaphoreProviderFactory(settings as SemaphoreProviderFactorySettings<TName>);
  }

  /**
   * The provider of the named adapter, or of the default one. The same provider every time.
   * @throws InvalidArgumentError on an unknown name, or no name and no default.
   */
  use(name?: TName | (string & {})): SemaphoreProvider {
    return pickProvider("SemaphoreProviderFactory", this.#named, name);
  }

  /** Closes every provider: the event buses they made and the adapters' own resources. */
  async close(): Promise<void> {
    await closeProviders(this.#named);
  }

  /** `close()`, for `await using semaphores = new SemaphoreProviderFactory(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
