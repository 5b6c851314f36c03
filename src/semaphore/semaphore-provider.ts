import type { EventListener, IEventBus, Unsubscribe } from "../event-bus/event-bus-contracts.js";
import { createKey, type INamespace } from "../namespace/namespace.js";
import { OWNER_ID_LENGTH, publicOwner, randomOwnerHex } from "../primitive/owner.js";
import { ProviderCore } from "../primitive/provider-core.js";
import type { ProviderEvents } from "../primitive/provider-events.js";
import type { ISerdeRegister } from "../serde/serde-contracts.js";
import { parseSettings } from "../settings/parse-settings.js";
import type { Task } from "../task/task.js";
import type { ITimeSpan, TimeSpan } from "../time-span/time-span.js";
import type { ISemaphore } from "./contracts/semaphore.js";
import type { ISemaphoreAdapter } from "./contracts/semaphore-adapter.js";
import { SEMAPHORE_EVENTS, type SemaphoreEventMap } from "./contracts/semaphore-events.js";
import type {
  ISemaphoreListenable,
  ISemaphoreProvider,
  SemaphoreCreateSettings,
} from "./contracts/semaphore-provider.js";
import { Semaphore } from "./semaphore.js";
import type { SemaphoreContext } from "./semaphore-context.js";
import { SemaphoreReporter } from "./semaphore-reporter.js";
import { registerSemaphoreProvider } from "./semaphore-serde-transformer.js";
import {
  SEMAPHORE_DEFAULTS,
  semaphoreCreateSettingsSchema,
  semaphoreProviderSettingsSchema,
} from "./semaphore-settings.js";

/**
 * @internal A setting only `SemaphoreProviderFactory`'s copies give: the provider replaces the
 * one of the same id on a serde (see `ProviderRegistries.register`).
 */
export const REPLACES_SEMAPHORE_PROVIDER = Symbol("hasp.semaphore.replacesProvider");

/** Settings of {@link SemaphoreProvider}, validated once by its constructor. */
export type SemaphoreProviderSettings = {
  /** Where slots live: `MemorySemaphoreAdapter`, `RedisSemaphoreAdapter`, … */
  adapter: ISemaphoreAdapter;
  /**
   * Prefixes every key, so that providers with different namespaces never share slots.
   * @default new Namespace(["hasp", "semaphore"])
   */
  namespace?: INamespace;
  /**
   * The TTL of semaphores created without one; `null`: their slots never expire.
   * @default 5 minutes
   */
  defaultTtl?: ITimeSpan | null;
  /**
   * How long blocking acquires keep trying when not told.
   * @default 1 minute
   */
  defaultBlockingTime?: ITimeSpan;
  /**
   * The pause between blocking attempts when the adapter cannot signal a release.
   * @default 100 ms
   */
  defaultBlockingInterval?: ITimeSpan;
  /**
   * Serdes on which to register this provider's semaphores, so that `serde.serialize(semaphore)`
   * and a semaphore inside an event payload cross process boundaries. Give every process the
   * same settings.
   * @default none: the semaphores cannot be serialized
   */
  serde?: ISerdeRegister | ISerdeRegister[];
  /**
   * Where semaphore events are dispatched and listened to.
   * @default an in-process bus (`MemoryEventBusAdapter`)
   */
  eventBus?: IEventBus<SemaphoreEventMap>;
  /**
   * Tells this provider's semaphores apart from another provider's on a shared serde.
   * Processes that hand semaphores to each other must agree on it.
   * @default the namespace, as a string
   */
  providerId?: string;
  /**
   * The TTL that `refresh()` and `refreshOrFail()` give when called without one.
   * @default the semaphore's own TTL
   */
  defaultRefreshTime?: ITimeSpan;
};

/**
 * Creates semaphores on one adapter, and is the place to listen to their events.
 *
 * @example
 * const provider = new SemaphoreProvider({ adapter: new MemorySemaphoreAdapter() });
 * const exports = provider.create("exports", { limit: 3, ttl: TimeSpan.fromMinutes(1) });
 * await exports.runBlockingOrFail(async ({ signal }) => runExport(signal));
 */
export class SemaphoreProvider implements ISemaphoreProvider {
  readonly #context: SemaphoreContext;
  readonly #namespace: INamespace;
  readonly #defaultTtl: TimeSpan | null;
  readonly #events: ProviderEvents<SemaphoreEventMap>;
  readonly #providerId: string;
  readonly #core: ProviderCore<ISemaphoreAdapter, SemaphoreEventMap, SemaphoreReporter>;
  /** Listening only: the provider's own listening methods, without `create` and `close`. */
  readonly events: ISemaphoreListenable;

  /** @throws InvalidArgumentError on bad settings, or a provider id already taken on a serde. */
  constructor(settings: SemaphoreProviderSettings) {
    const parsed = parseSettings(
      "SemaphoreProvider settings",
      semaphoreProviderSettingsSchema,
      settings,
    );
    this.#namespace = parsed.namespace;
    this.#defaultTtl = parsed.defaultTtl;
    this.#providerId = parsed.providerId ?? parsed.namespace.toString();
    const replacing =
      (settings as { [REPLACES_SEMAPHORE_PROVIDER]?: boolean })[REPLACES_SEMAPHORE_PROVIDER] ===
      true;
    this.#core = new ProviderCore({
      kind: "semaphore",
      names: Object.values(SEMAPHORE_EVENTS),
      fallback: SEMAPHORE_DEFAULTS.namespace,
      parsed,
      reporter: (bus, isListened, adapter) => new SemaphoreReporter(bus, isListened, adapter),
      register: (serde, provider) =>
        registerSemaphoreProvider(serde, this.#providerId, provider, replacing),
    });
    this.#context = this.#core.context;
    this.#events = this.#core.events;
    this.events = this.#events.listening;
  }

  /** The id under which this provider's semaphores are serialized. */
  get providerId(): string {
    return this.#providerId;
  }

  create(key: string, settings: SemaphoreCreateSettings): ISemaphore {
    // Without settings the missing `limit` is the problem to name, not the missing object.
    const parsed = parseSettings(
      "semaphore settings",
      semaphoreCreateSettingsSchema,
      settings ?? {},
    );
    const ttl = parsed.ttl === undefined ? this.#defaultTtl : parsed.ttl;
    let owner: string;
    let id: string;
    if (parsed.slotId !== undefined) {
      // An explicit slot id is its own credential: it has no proof.
      owner = parsed.slotId;
      id = publicOwner(owner);
    } else {
      const hex = randomOwnerHex();
      id = hex.slice(0, OWNER_ID_LENGTH);
      owner = `${id}.${hex.slice(OWNER_ID_LENGTH)}`;
    }
    const context = this.#context;
    const namespaced = createKey(this.#namespace, key);
    return new Semaphore({ context, key: namespaced, owner, id, limit: parsed.limit, ttl });
  }

  addListener<TName extends keyof SemaphoreEventMap & string>(
    event: TName,
    listener: EventListener<SemaphoreEventMap[TName]>,
  ): Promise<void> {
    return this.#events.addListener(event, listener);
  }

  removeListener<TName extends keyof SemaphoreEventMap & string>(
    event: TName,
    listener: EventListener<SemaphoreEventMap[TName]>,
  ): Promise<void> {
    return this.#events.removeListener(event, listener);
  }

  listenOnce<TName extends keyof SemaphoreEventMap & string>(
    event: TName,
    listener: EventListener<SemaphoreEventMap[TName]>,
  ): Promise<void> {
    return this.#events.listenOnce(event, listener);
  }

  subscribe<TName extends keyof SemaphoreEventMap & string>(
    event: TName,
    listener: EventListener<SemaphoreEventMap[TName]>,
  ): Promise<Unsubscribe> {
    return this.#events.subscribe(event, listener);
  }

  subscribeOnce<TName extends keyof SemaphoreEventMap & string>(
    event: TName,
    listener: EventListener<SemaphoreEventMap[TName]>,
  ): Promise<Unsubscribe> {
    return this.#events.subscribeOnce(event, listener);
  }

  asPromise<TName extends keyof SemaphoreEventMap & string>(
    event: TName,
    options?: { signal?: AbortSignal },
  ): Promise<SemaphoreEventMap[TName]> {
    return this.#events.asPromise(event, options);
  }

  asTask<TName extends keyof SemaphoreEventMap & string>(
    event: TName,
  ): Task<SemaphoreEventMap[TName]> {
    return this.#events.asTask(event);
  }

  /**
   * Closes the event bus the provider made (when none was given), then the adapter's own
   * resources through its `close()`. Your clients and event bus stay open.
   */
  close(): Promise<void> {
    return this.#core.close();
  }

  /** `close()`, for `await using provider = new SemaphoreProvider(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
