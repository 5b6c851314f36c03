// What every primitive's provider is made of once its settings are parsed: its events, the
// context its faces share (adapter, blocking defaults, refresh time, reporter), its place on
// each of its serdes, and its closing. The provider keeps its own documented methods and hands over.

import type { IEventBus } from "../event-bus/event-bus-contracts.js";
import type { INamespace, Namespace } from "../namespace/namespace.js";
import type { ISerdeRegister } from "../serde/serde-contracts.js";
import type { TimeSpan } from "../time-span/time-span.js";
import { BlockingWaits } from "./blocking-acquire.js";
import { ProviderEvents } from "./provider-events.js";
import type { RegisteredProvider } from "./provider-registry.js";

/** What a provider shares with its faces (`LockContext` and its kin). */
export type ProviderContext<TAdapter, TReporter> = {
  readonly adapter: TAdapter;
  readonly blockingTime: TimeSpan;
  readonly blockingInterval: TimeSpan;
  /** What `refresh()` without a TTL gives; `undefined`: the face's own TTL. */
  readonly refreshTime: TimeSpan | undefined;
  readonly reporter: TReporter;
  /** Its blocking acquires under way, ended by its `close()`. */
  readonly waits: BlockingWaits;
};

/** The parsed settings every provider has (see `providerSettingsEntries`). */
type ParsedProviderSettings<TAdapter, TMap extends Record<string, unknown>> = {
  readonly adapter: TAdapter;
  readonly namespace: INamespace;
  readonly defaultBlockingTime: TimeSpan;
  readonly defaultBlockingInterval: TimeSpan;
  readonly defaultRefreshTime?: TimeSpan | undefined;
  readonly serde?: ISerdeRegister | readonly ISerdeRegister[] | undefined;
  readonly eventBus?: IEventBus<TMap> | undefined;
};

/** What a provider's core is made of. */
export type ProviderCoreSettings<TAdapter, TMap extends Record<string, unknown>, TReporter> = {
  /** `"lock"`, `"semaphore"`: named in the error of a misspelt event. */
  readonly kind: string;
  /** The primitive's event names. */
  readonly names: readonly string[];
  /** The primitive's default namespace, for an owned bus under a namespace not hasp's own. */
  readonly fallback: Namespace;
  readonly parsed: ParsedProviderSettings<TAdapter, TMap>;
  /** The primitive's reporter over the provider's bus. */
  readonly reporter: (
    bus: IEventBus<TMap>,
    isListened: () => boolean,
    adapter: TAdapter,
  ) => TReporter;
  /** Registers the provider on one of its serdes (its primitive's `registerLockProvider`). */
  readonly register: (
    serde: ISerdeRegister,
    provider: RegisteredProvider<ProviderContext<TAdapter, TReporter>>,
  ) => void;
};

export class ProviderCore<
  TAdapter extends { close?(): Promise<void> },
  TMap extends Record<string, unknown>,
  TReporter,
> {
  readonly events: ProviderEvents<TMap>;
  readonly context: ProviderContext<TAdapter, TReporter>;
  readonly #kind: string;
  #closing: Promise<void> | undefined;

  constructor(settings: ProviderCoreSettings<TAdapter, TMap, TReporter>) {
    const { parsed } = settings;
    this.events = new ProviderEvents<TMap>({
      kind: settings.kind,
      names: settings.names,
      eventBus: parsed.eventBus,
      namespace: parsed.namespace,
      fallback: settings.fallback,
    });
    this.context = {
      adapter: parsed.adapter,
      blockingTime: parsed.defaultBlockingTime,
      blockingInterval: parsed.defaultBlockingInterval,
      refreshTime: parsed.defaultRefreshTime,
      reporter: settings.reporter(this.events.bus, this.events.isListened, parsed.adapter),
      waits: new BlockingWaits(),
    };
    this.#kind = settings.kind;
    const serdes: readonly ISerdeRegister[] =
      parsed.serde === undefined ? [] : [parsed.serde].flat();
    for (const serde of serdes) {
      settings.register(serde, { context: this.context, namespace: parsed.namespace });
    }
  }

  /**
   * Ends the blocking acquires under way (and fails later ones at once), closes the bus the
   * provider made (not one given), then the adapter's own resources.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.context.waits.close(
      new Error(
        `The ${this.#kind} provider is closed (\`close()\` was called): no blocking acquire waits past it`,
      ),
    );
    await this.events.close();
    await this.context.adapter.close?.();
  }
}
