// A provider's events, for every primitive: the bus (the one given, or an in-process one the
// provider owns and closes), whether anyone listens (emitting is skipped until then), the check
// of event names, and the listening methods the provider and its `events` expose.

import { InvalidArgumentError } from "../errors/invalid-argument-error.js";
import { MemoryEventBusAdapter } from "../event-bus/adapters/memory/memory-event-bus-adapter.js";
import { EventBus } from "../event-bus/event-bus.js";
import type {
  BaseEventMap,
  EventListener,
  IEventBus,
  IEventListenable,
  Unsubscribe,
} from "../event-bus/event-bus-contracts.js";
import { type INamespace, Namespace } from "../namespace/namespace.js";
import { Task } from "../task/task.js";

/** What a provider's events are made of. */
export type ProviderEventsSettings<TMap extends BaseEventMap> = {
  /** `"lock"`, `"semaphore"`: named in the error of a misspelt event. */
  readonly kind: string;
  /** The primitive's event names (`LOCK_EVENTS`' values). */
  readonly names: readonly string[];
  /** The bus the user gave, if any. */
  readonly eventBus: IEventBus<TMap> | undefined;
  /** The provider's namespace: an owned bus lives under it (or under `fallback`). */
  readonly namespace: INamespace;
  /** The primitive's default namespace, for a namespace that is not hasp's own. */
  readonly fallback: Namespace;
};

export class ProviderEvents<TMap extends BaseEventMap> implements IEventListenable<TMap> {
  readonly #bus: IEventBus<TMap>;
  readonly #ownsBus: boolean;
  readonly #names: ReadonlySet<string>;
  readonly #kind: string;
  /** Whether anyone can hear events: a given bus always; the default one once listened to. */
  #listened: boolean;
  /** For the reporter: `false` while nobody can hear events. */
  readonly isListened = (): boolean => this.#listened;
  /** Listening only, frozen: what a provider's `events` is. */
  readonly listening: IEventListenable<TMap>;

  constructor(settings: ProviderEventsSettings<TMap>) {
    const { eventBus, namespace, fallback } = settings;
    this.#bus =
      eventBus ??
      new EventBus<TMap>({
        adapter: new MemoryEventBusAdapter(),
        namespace: (namespace instanceof Namespace ? namespace : fallback).append("events"),
      });
    this.#ownsBus = eventBus === undefined;
    this.#listened = eventBus !== undefined;
    this.#names = new Set(settings.names);
    this.#kind = settings.kind;
    this.listening = Object.freeze({
      addListener: this.addListener.bind(this),
      removeListener: this.removeListener.bind(this),
      listenOnce: this.listenOnce.bind(this),
      subscribe: this.subscribe.bind(this),
      subscribeOnce: this.subscribeOnce.bind(this),
      asPromise: this.asPromise.bind(this),
      asTask: this.asTask.bind(this),
    });
  }

  /** Where events are dispatched. */
  get bus(): IEventBus<TMap> {
    return this.#bus;
  }

  async addListener<TName extends keyof TMap & string>(
    event: TName,
    listener: EventListener<TMap[TName]>,
  ): Promise<void> {
    this.#listen(event);
    return this.#bus.addListener(event, listener);
  }

  removeListener<TName extends keyof TMap & string>(
    event: TName,
    listener: EventListener<TMap[TName]>,
  ): Promise<void> {
    return this.#bus.removeListener(event, listener);
  }

  async listenOnce<TName extends keyof TMap & string>(
    event: TName,
    listener: EventListener<TMap[TName]>,
  ): Promise<void> {
    this.#listen(event);
    return this.#bus.listenOnce(event, listener);
  }

  async subscribe<TName extends keyof TMap & string>(
    event: TName,
    listener: EventListener<TMap[TName]>,
  ): Promise<Unsubscribe> {
    this.#listen(event);
    return this.#bus.subscribe(event, listener);
  }

  async subscribeOnce<TName extends keyof TMap & string>(
    event: TName,
    listener: EventListener<TMap[TName]>,
  ): Promise<Unsubscribe> {
    this.#listen(event);
    return this.#bus.subscribeOnce(event, listener);
  }

  async asPromise<TName extends keyof TMap & string>(
    event: TName,
    options?: { signal?: AbortSignal },
  ): Promise<TMap[TName]> {
    this.#listen(event);
    return this.#bus.asPromise(event, options);
  }

  asTask<TName extends keyof TMap & string>(event: TName): Task<TMap[TName]> {
    return new Task((signal) => this.asPromise(event, { signal }));
  }

  /** Closes the bus when it is the provider's own (none was given); a given one stays open. */
  async close(): Promise<void> {
    if (this.#ownsBus) {
      await this.#bus.close();
    }
  }

  /** Checks the event's name (a misspelt one would never be heard), and turns events on. */
  #listen(event: string): void {
    if (!this.#names.has(event)) {
      throw new InvalidArgumentError(
        `${JSON.stringify(event)} is not a ${this.#kind} event; the ${this.#kind} events are ${[...this.#names].join(", ")}`,
      );
    }
    this.#listened = true;
  }
}
