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
import type { LockIdFactory } from "./contracts/lock.js";
import type { ILockAdapter } from "./contracts/lock-adapter.js";
import type { LockEventMap } from "./contracts/lock-events.js";
import { LockProvider, type LockProviderSettings } from "./lock-provider.js";
import { REPLACES_PROVIDER } from "./lock-serde-transformer.js";
import { LOCK_DEFAULTS } from "./lock-settings.js";

/**
 * Settings of {@link LockProviderFactory}: named adapters, a default, and the
 * {@link LockProviderSettings} every provider shares (all but `adapter` and `providerId`).
 */
export type LockProviderFactorySettings<
  TName extends string,
  TDefault extends string = string,
> = Omit<LockProviderSettings, "adapter" | "providerId" | "serdeTransformerName"> & {
  /** The configured stores by name: `{ memory: new MemoryLockAdapter(), redis: … }`. */
  adapters: Record<TName, ILockAdapter>;
  /**
   * The adapter `use()` returns without a name; often `process.env.LOCK_STORE`. An unknown
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
 * Named lock stores and a default, the way an application picks its store by environment.
 * Each adapter gets one provider, created up front (so a bad setting fails at start-up) with
 * the shared settings; their provider ids are `<namespace>#<name>` (a `serdeTransformerName`
 * in the settings is not used: the factory names each provider, as daiso-core's does).
 *
 * A factory never changes: its `set…` methods (daiso-core's) return a new factory with one
 * setting replaced. On a serde, the copy's providers take over the ids of the providers on the
 * same adapter and namespace, so a lock serialized through either revives on the copy.
 *
 * @example
 * const locks = new LockProviderFactory({
 *   adapters: { memory: new MemoryLockAdapter(), redis: new RedisLockAdapter(redis) },
 *   defaultAdapter: process.env.LOCK_STORE,
 * });
 * const lock = locks.use().create("report");
 */
export class LockProviderFactory<TName extends string, TDefault extends string = string> {
  readonly #settings: LockProviderFactorySettings<TName>;
  readonly #named: NamedProviders<LockProvider>;

  /** @throws InvalidArgumentError on an unknown default, no adapters, or bad provider settings. */
  constructor(settings: LockProviderFactorySettings<TName, TDefault>) {
    this.#settings = settings;
    this.#named = factoryProviders(
      "LockProviderFactory",
      settings as LockProviderFactorySettings<string> & { adapters: Record<string, ILockAdapter> },
      {
        replaces: REPLACES_PROVIDER,
        fallback: LOCK_DEFAULTS.namespace,
        ignored: ["serdeTransformerName"],
      },
      (providerSettings) => new LockProvider(providerSettings),
    );
  }

  /** A new factory with another `defaultAdapter`. */
  setDefaultAdapter<TNew extends string>(
    name: string extends TNew
      ? TNew
      : TNew extends NoInfer<TName>
        ? TNew
        : `"${TNew}" is not one of the names in adapters`,
  ): LockProviderFactory<TName> {
    return this.#with({ defaultAdapter: name });
  }

  /** A new factory with another `namespace`. */
  setNamespace(namespace: INamespace): LockProviderFactory<TName> {
    return this.#with({ namespace });
  }

  /** A new factory with another `createLockId`. */
  setCreateLockId(createLockId: LockIdFactory): LockProviderFactory<TName> {
    return this.#with({ createLockId });
  }

  /** A new factory with another `eventBus`. */
  setEventBus(eventBus: IEventBus<LockEventMap>): LockProviderFactory<TName> {
    return this.#with({ eventBus });
  }

  /** A new factory with another `serde` (or list of serdes). */
  setSerde(serde: ISerdeRegister | ISerdeRegister[]): LockProviderFactory<TName> {
    return this.#with({ serde });
  }

  /** A new factory with another `defaultTtl` (`null`: locks never expire). */
  setDefaultTtl(ttl: ITimeSpan | null): LockProviderFactory<TName> {
    return this.#with({ defaultTtl: ttl });
  }

  /** A new factory with another `defaultBlockingInterval`. */
  setDefaultBlockingInterval(interval: ITimeSpan): LockProviderFactory<TName> {
    return this.#with({ defaultBlockingInterval: interval });
  }

  /** A new factory with another `defaultBlockingTime`. */
  setDefaultBlockingTime(time: ITimeSpan): LockProviderFactory<TName> {
    return this.#with({ defaultBlockingTime: time });
  }

  /** A new factory with another `defaultRefreshTime`. */
  setDefaultRefreshTime(time: ITimeSpan): LockProviderFactory<TName> {
    return this.#with({ defaultRefreshTime: time });
  }

  #with(change: Partial<LockProviderFactorySettings<TName, string>>): LockProviderFactory<TName> {
    const settings = changedSettings(this.#settings, change, REPLACES_PROVIDER);
    return new LockProviderFactory(settings as LockProviderFactorySettings<TName>);
  }

  /**
   * The provider of the named adapter, or of the default one. The same provider every time.
   * @throws InvalidArgumentError on an unknown name, or no name and no default.
   */
  use(name?: TName | (string & {})): LockProvider {
    return pickProvider("LockProviderFactory", this.#named, name);
  }

  /**
   * Closes every provider (`LockProvider.close()`): the event buses they made and the
   * adapters' own resources. Your clients stay open.
   */
  async close(): Promise<void> {
    await closeProviders(this.#named);
  }

  /** `close()`, for `await using locks = new LockProviderFactory(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
