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
import type { ISharedLockAdapter } from "./contracts/shared-lock-adapter.js";
import type { SharedLockEventMap } from "./contracts/shared-lock-events.js";
import {
  REPLACES_SHARED_LOCK_PROVIDER,
  SharedLockProvider,
  type SharedLockProviderSettings,
} from "./shared-lock-provider.js";
import { SHARED_LOCK_DEFAULTS } from "./shared-lock-settings.js";

/**
 * Settings of {@link SharedLockProviderFactory}: named adapters, a default, and the
 * {@link SharedLockProviderSettings} every provider shares (all but `adapter` and `providerId`).
 */
export type SharedLockProviderFactorySettings<
  TName extends string,
  TDefault extends string = string,
> = Omit<SharedLockProviderSettings, "adapter" | "providerId"> & {
  /** The configured stores by name: `{ memory: new MemorySharedLockAdapter(), redis: … }`. */
  adapters: Record<TName, ISharedLockAdapter>;
  /**
   * The adapter `use()` returns without a name; often `process.env.SHARED_LOCK_STORE`. An unknown
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
 * Named shared lock stores and a default, as `LockProviderFactory` for locks: one provider per
 * adapter, created up front, with provider ids `<namespace>#<name>`. Its `set…` methods return
 * a new factory with one setting replaced.
 *
 * @example
 * const sharedLocks = new SharedLockProviderFactory({
 *   adapters: { memory: new MemorySharedLockAdapter(), redis: new RedisSharedLockAdapter(redis) },
 *   defaultAdapter: process.env.SHARED_LOCK_STORE,
 * });
 * const catalog = sharedLocks.use().create("catalog", { limit: 16 });
 */
export class SharedLockProviderFactory<TName extends string, TDefault extends string = string> {
  readonly #settings: SharedLockProviderFactorySettings<TName>;
  readonly #named: NamedProviders<SharedLockProvider>;

  /** @throws InvalidArgumentError on an unknown default, no adapters, or bad provider settings. */
  constructor(settings: SharedLockProviderFactorySettings<TName, TDefault>) {
    this.#settings = settings;
    this.#named = factoryProviders(
      "SharedLockProviderFactory",
      settings as SharedLockProviderFactorySettings<string> & {
        adapters: Record<string, ISharedLockAdapter>;
      },
      { replaces: REPLACES_SHARED_LOCK_PROVIDER, fallback: SHARED_LOCK_DEFAULTS.namespace },
      (providerSettings) => new SharedLockProvider(providerSettings),
    );
  }

  /** A new factory with another `defaultAdapter`. */
  setDefaultAdapter<TNew extends string>(
    name: string extends TNew
      ? TNew
      : TNew extends NoInfer<TName>
        ? TNew
        : `"${TNew}" is not one of the names in adapters`,
  ): SharedLockProviderFactory<TName> {
    return this.#with({ defaultAdapter: name });
  }

  /** A new factory with another `namespace`. */
  setNamespace(namespace: INamespace): SharedLockProviderFactory<TName> {
    return this.#with({ namespace });
  }

  /** A new factory with another `eventBus`. */
  setEventBus(eventBus: IEventBus<SharedLockEventMap>): SharedLockProviderFactory<TName> {
    return this.#with({ eventBus });
  }

  /** A new factory with another `serde` (or list of serdes). */
  setSerde(serde: ISerdeRegister | ISerdeRegister[]): SharedLockProviderFactory<TName> {
    return this.#with({ serde });
  }

  /** A new factory with another `defaultTtl` (`null`: holds never expire). */
  setDefaultTtl(ttl: ITimeSpan | null): SharedLockProviderFactory<TName> {
    return this.#with({ defaultTtl: ttl });
  }

  /** A new factory with another `defaultBlockingInterval`. */
  setDefaultBlockingInterval(interval: ITimeSpan): SharedLockProviderFactory<TName> {
    return this.#with({ defaultBlockingInterval: interval });
  }

  /** A new factory with another `defaultBlockingTime`. */
  setDefaultBlockingTime(time: ITimeSpan): SharedLockProviderFactory<TName> {
    return this.#with({ defaultBlockingTime: time });
  }

  /** A new factory with another `defaultRefreshTime`. */
  setDefaultRefreshTime(time: ITimeSpan): SharedLockProviderFactory<TName> {
    return this.#with({ defaultRefreshTime: time });
  }

  #with(
    change: Partial<SharedLockProviderFactorySettings<TName, string>>,
  ): SharedLockProviderFactory<TName> {
    const settings = changedSettings(this.#settings, change, REPLACES_SHARED_LOCK_PROVIDER);
    return new SharedLockProviderFactory(settings as SharedLockProviderFactorySettings<TName>);
  }

  /**
   * The provider of the named adapter, or of the default one. The same provider every time.
   * @throws InvalidArgumentError on an unknown name, or no name and no default.
   */
  use(name?: TName | (string & {})): SharedLockProvider {
    return pickProvider("SharedLockProviderFactory", this.#named, name);
  }

  /** Closes every provider: the event buses they made and the adapters' own resources. */
  async close(): Promise<void> {
    await closeProviders(this.#named);
  }

  /** `close()`, for `await using sharedLocks = new SharedLockProviderFactory(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
