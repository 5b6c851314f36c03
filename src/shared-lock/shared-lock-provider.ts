import type { EventListener, IEventBus, Unsubscribe } from "../event-bus/event-bus-contracts.js";
import { createKey, type INamespace } from "../namespace/namespace.js";
import { OWNER_ID_LENGTH, publicOwner, randomOwnerHex } from "../primitive/owner.js";
import { ProviderCore } from "../primitive/provider-core.js";
import type { ProviderEvents } from "../primitive/provider-events.js";
import type { ISerdeRegister } from "../serde/serde-contracts.js";
import { parseSettings } from "../settings/parse-settings.js";
import type { Task } from "../task/task.js";
import type { ITimeSpan, TimeSpan } from "../time-span/time-span.js";
import type { ISharedLock } from "./contracts/shared-lock.js";
import type { ISharedLockAdapter } from "./contracts/shared-lock-adapter.js";
import { SHARED_LOCK_EVENTS, type SharedLockEventMap } from "./contracts/shared-lock-events.js";
import type {
  ISharedLockListenable,
  ISharedLockProvider,
  SharedLockCreateSettings,
} from "./contracts/shared-lock-provider.js";
import { SharedLock } from "./shared-lock.js";
import type { SharedLockContext, SharedLockSides } from "./shared-lock-context.js";
import { SharedLockReporter } from "./shared-lock-reporter.js";
import { registerSharedLockProvider } from "./shared-lock-serde-transformer.js";
import {
  SHARED_LOCK_DEFAULTS,
  sharedLockCreateSettingsSchema,
  sharedLockProviderSettingsSchema,
} from "./shared-lock-settings.js";
import { sharedLockSides } from "./shared-lock-sides.js";

/**
 * @internal A setting only `SharedLockProviderFactory`'s copies give: the provider replaces the
 * one of the same id on a serde (see `ProviderRegistries.register`).
 */
export const REPLACES_SHARED_LOCK_PROVIDER = Symbol("hasp.shared-lock.replacesProvider");

/** Settings of {@link SharedLockProvider}, validated once by its constructor. */
export type SharedLockProviderSettings = {
  /** Where the holds live: `MemorySharedLockAdapter`, `NoOpSharedLockAdapter`, … */
  adapter: ISharedLockAdapter;
  /**
   * Prefixes every key, so that providers with different namespaces never share a key.
   * @default new Namespace(["hasp", "shared-lock"])
   */
  namespace?: INamespace;
  /**
   * The TTL of shared locks created without one; `null`: their holds never expire.
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
   * Serdes on which to register this provider's shared locks, so that `serde.serialize(sharedLock)`
   * and a shared lock inside an event payload cross process boundaries. Give every process the
   * same settings.
   * @default none: the shared locks cannot be serialized
   */
  serde?: ISerdeRegister | ISerdeRegister[];
  /**
   * Where shared lock events are dispatched and listened to.
   * @default an in-process bus (`MemoryEventBusAdapter`)
   */
  eventBus?: IEventBus<SharedLockEventMap>;
  /**
   * Tells this provider's shared locks apart from another provider's on a shared serde.
   * Processes that hand shared locks to each other must agree on it.
   * @default the namespace, as a string
   */
  providerId?: string;
  /**
   * The TTL that `refresh()` and `refreshOrFail()` give when called without one.
   * @default the shared lock's own TTL
   */
  defaultRefreshTime?: ITimeSpan;
};

/**
 * Creates shared locks on one adapter, and is the place to listen to their events.
 *
 * @example
 * const provider = new SharedLockProvider({ adapter: new MemorySharedLockAdapter() });
 * const catalog = provider.create("catalog", { limit: 16, ttl: TimeSpan.fromMinutes(1) });
 * const prices = await catalog.runReaderBlockingOrFail(() => readPrices());
 * await catalog.runWriterBlockingOrFail(async ({ fencingToken }) => writePrices(fencingToken));
 */
export class SharedLockProvider implements ISharedLockProvider {
  readonly #context: SharedLockContext;
  readonly #sides: SharedLockSides;
  readonly #namespace: INamespace;
  readonly #defaultTtl: TimeSpan | null;
  readonly #events: ProviderEvents<SharedLockEventMap>;
  readonly #providerId: string;
  readonly #core: ProviderCore<ISharedLockAdapter, SharedLockEventMap, SharedLockReporter>;
  /** Listening only: the provider's own listening methods, without `create` and `close`. */
  readonly events: ISharedLockListenable;

  /** @throws InvalidArgumentError on bad settings, or a provider id already taken on a serde. */
  constructor(settings: SharedLockProviderSettings) {
    const parsed = parseSettings(
      "SharedLockProvider settings",
      sharedLockProviderSettingsSchema,
      settings,
    );
    this.#namespace = parsed.namespace;
    this.#defaultTtl = parsed.defaultTtl;
    this.#providerId = parsed.providerId ?? parsed.namespace.toString();
    const replacing =
      (settings as { [REPLACES_SHARED_LOCK_PROVIDER]?: boolean })[REPLACES_SHARED_LOCK_PROVIDER] ===
      true;
    this.#core = new ProviderCore({
      kind: "shared lock",
      names: Object.values(SHARED_LOCK_EVENTS),
      fallback: SHARED_LOCK_DEFAULTS.namespace,
      parsed,
      reporter: (bus, isListened, adapter) => new SharedLockReporter(bus, isListened, adapter),
      register: (serde, provider) =>
        registerSharedLockProvider(serde, this.#providerId, provider, replacing),
    });
    this.#context = this.#core.context;
    this.#sides = sharedLockSides(this.#context);
    this.#events = this.#core.events;
    this.events = this.#events.listening;
  }

  /** The id under which this provider's shared locks are serialized. */
  get providerId(): string {
    return this.#providerId;
  }

  create(key: string, settings: SharedLockCreateSettings): ISharedLock {
    // Without settings the missing `limit` is the problem to name, not the missing object.
    const parsed = parseSettings(
      "shared lock settings",
      sharedLockCreateSettingsSchema,
      settings ?? {},
    );
    const ttl = parsed.ttl === undefined ? this.#defaultTtl : parsed.ttl;
    let owner: string;
    let id: string;
    if (parsed.lockId !== undefined) {
      // An explicit lock id is its own credential: it has no proof.
      owner = parsed.lockId;
      id = publicOwner(owner);
    } else {
      const hex = randomOwnerHex();
      id = hex.slice(0, OWNER_ID_LENGTH);
      owner = `${id}.${hex.slice(OWNER_ID_LENGTH)}`;
    }
    const context = this.#context;
    const namespaced = createKey(this.#namespace, key);
    return new SharedLock({
      context,
      sides: this.#sides,
      key: namespaced,
      owner,
      id,
      limit: parsed.limit,
      ttl,
    });
  }

  addListener<TName extends keyof SharedLockEventMap & string>(
    event: TName,
    listener: EventListener<SharedLockEventMap[TName]>,
  ): Promise<void> {
    return this.#events.addListener(event, listener);
  }

  removeListener<TName extends keyof SharedLockEventMap & string>(
    event: TName,
    listener: EventListener<SharedLockEventMap[TName]>,
  ): Promise<void> {
    return this.#events.removeListener(event, listener);
  }

  listenOnce<TName extends keyof SharedLockEventMap & string>(
    event: TName,
    listener: EventListener<SharedLockEventMap[TName]>,
  ): Promise<void> {
    return this.#events.listenOnce(event, listener);
  }

  subscribe<TName extends keyof SharedLockEventMap & string>(
    event: TName,
    listener: EventListener<SharedLockEventMap[TName]>,
  ): Promise<Unsubscribe> {
    return this.#events.subscribe(event, listener);
  }

  subscribeOnce<TName extends keyof SharedLockEventMap & string>(
    event: TName,
    listener: EventListener<SharedLockEventMap[TName]>,
  ): Promise<Unsubscribe> {
    return this.#events.subscribeOnce(event, listener);
  }

  asPromise<TName extends keyof SharedLockEventMap & string>(
    event: TName,
    options?: { signal?: AbortSignal },
  ): Promise<SharedLockEventMap[TName]> {
    return this.#events.asPromise(event, options);
  }

  asTask<TName extends keyof SharedLockEventMap & string>(
    event: TName,
  ): Task<SharedLockEventMap[TName]> {
    return this.#events.asTask(event);
  }

  /**
   * Closes the event bus the provider made (when none was given), then the adapter's own
   * resources through its `close()`. Your clients and event bus stay open.
   */
  close(): Promise<void> {
    return this.#core.close();
  }

  /** `close()`, for `await using provider = new SharedLockProvider(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
