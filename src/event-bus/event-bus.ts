import { InvalidArgumentError } from "../errors/invalid-argument-error.js";
import { onAbort } from "../lifecycle/abort-listeners.js";
import { Namespace } from "../namespace/namespace.js";
import { Task } from "../task/task.js";
import type {
  AdapterListener,
  BaseEventMap,
  EventListener,
  IEventBus,
  IEventBusAdapter,
  Unsubscribe,
} from "./event-bus-contracts.js";

/** Receives the failure of a listener, with the event it was hearing. */
export type ListenerErrorHandler = (error: unknown, context: { event: string }) => void;

/** Settings of {@link EventBus}. */
export type EventBusSettings = {
  /** The transport: `MemoryEventBusAdapter` in one process, `RedisPubSubEventBusAdapter` across. */
  adapter: IEventBusAdapter;
  /**
   * Keeps this bus's events apart from other buses on the same adapter or Redis.
   * @default new Namespace(["hasp", "event-bus"])
   */
  namespace?: Namespace;
  /**
   * Receives the error of a throwing or rejecting listener. The other listeners still run and
   * `dispatch` is not affected.
   * @default writes the error to `console.error`
   */
  onListenerError?: ListenerErrorHandler;
};

type AnyListener = EventListener<never>;

type Registration = { readonly wrapped: AdapterListener; readonly once: boolean };

const defaultListenerErrorHandler: ListenerErrorHandler = (error, { event }) => {
  console.error(`[hasp] a listener of "${event}" failed:`, error);
};

/**
 * A typed event bus over a transport adapter (in memory, Redis pub/sub).
 *
 * @example
 * type OrderEvents = { "order-paid": { orderId: string } };
 * const bus = new EventBus<OrderEvents>({ adapter: new MemoryEventBusAdapter() });
 * await bus.addListener("order-paid", ({ orderId }) => console.log(orderId));
 * await bus.dispatch("order-paid", { orderId: "42" });
 */
export class EventBus<TEventMap extends BaseEventMap> implements IEventBus<TEventMap> {
  readonly #adapter: IEventBusAdapter;
  readonly #namespace: Namespace;
  readonly #onListenerError: ListenerErrorHandler;
  /** channel → user listener → what the adapter was given */
  readonly #registrations = new Map<string, Map<AnyListener, Registration>>();

  constructor(settings: EventBusSettings) {
    this.#adapter = settings.adapter;
    this.#namespace = settings.namespace ?? new Namespace(["hasp", "event-bus"]);
    this.#onListenerError = settings.onListenerError ?? defaultListenerErrorHandler;
  }

  addListener<TName extends keyof TEventMap & string>(
    event: TName,
    listener: EventListener<TEventMap[TName]>,
  ): Promise<void> {
    return this.#add(event, listener, false);
  }

  listenOnce<TName extends keyof TEventMap & string>(
    event: TName,
    listener: EventListener<TEventMap[TName]>,
  ): Promise<void> {
    return this.#add(event, listener, true);
  }

  async removeListener<TName extends keyof TEventMap & string>(
    event: TName,
    listener: EventListener<TEventMap[TName]>,
  ): Promise<void> {
    const channel = this.#channel(event);
    const registration = this.#registrations.get(channel)?.get(listener);
    if (registration !== undefined) {
      this.#forget(channel, listener);
      await this.#adapter.removeListener(channel, registration.wrapped);
    }
  }

  async subscribe<TName extends keyof TEventMap & string>(
    event: TName,
    listener: EventListener<TEventMap[TName]>,
  ): Promise<Unsubscribe> {
    await this.addListener(event, listener);
    return () => this.removeListener(event, listener);
  }

  async subscribeOnce<TName extends keyof TEventMap & string>(
    event: TName,
    listener: EventListener<TEventMap[TName]>,
  ): Promise<Unsubscribe> {
    await this.listenOnce(event, listener);
    return () => this.removeListener(event, listener);
  }

  asTask<TName extends keyof TEventMap & string>(event: TName): Task<TEventMap[TName]> {
    return new Task((signal) => this.asPromise(event, { signal }));
  }

  asPromise<TName extends keyof TEventMap & string>(
    event: TName,
    options: { signal?: AbortSignal } = {},
  ): Promise<TEventMap[TName]> {
    const { signal } = options;
    return new Promise<TEventMap[TName]>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const listener = (payload: TEventMap[TName]) => {
        stopListening?.();
        resolve(payload);
      };
      const stopListening =
        signal === undefined
          ? undefined
          : onAbort(signal, () => {
              reject(signal.reason);
              this.removeListener(event, listener).catch(() => {});
            });
      this.listenOnce(event, listener).catch((error: unknown) => {
        stopListening?.();
        reject(error);
      });
    });
  }

  async dispatch<TName extends keyof TEventMap & string>(
    event: TName,
    payload: TEventMap[TName],
  ): Promise<void> {
    await this.#adapter.dispatch(this.#channel(event), payload);
  }

  async close(): Promise<void> {
    const removals: Promise<void>[] = [];
    for (const [channel, listeners] of this.#registrations) {
      for (const registration of listeners.values()) {
        removals.push(this.#adapter.removeListener(channel, registration.wrapped));
      }
    }
    this.#registrations.clear();
    await Promise.all(removals);
  }

  /** `close()`, for `await using bus = new EventBus(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #add(event: string, listener: AnyListener, once: boolean): Promise<void> {
    if (typeof listener !== "function") {
      // Checked here: a listener that cannot be called would fail only when its event comes.
      throw new InvalidArgumentError(
        `The listener of "${event}" must be a function, got ${listener === null ? "null" : typeof listener}`,
      );
    }
    const channel = this.#channel(event);
    let listeners = this.#registrations.get(channel);
    if (listeners?.has(listener)) {
      return;
    }
    if (listeners === undefined) {
      listeners = new Map();
      this.#registrations.set(channel, listeners);
    }
    const registration: Registration = {
      once,
      wrapped: (payload) => {
        // A stale delivery (removed meanwhile, or a once-listener already fired) is dropped.
        if (this.#registrations.get(channel)?.get(listener) !== registration) {
          return;
        }
        if (once) {
          this.#forget(channel, listener);
          this.#adapter.removeListener(channel, registration.wrapped).catch((error: unknown) => {
            this.#report(error, event);
          });
        }
        this.#invoke(event, listener, payload);
      },
    };
    listeners.set(listener, registration);
    try {
      await this.#adapter.addListener(channel, registration.wrapped);
    } catch (error) {
      if (this.#registrations.get(channel)?.get(listener) === registration) {
        this.#forget(channel, listener);
      }
      throw error;
    }
  }

  #invoke(event: string, listener: AnyListener, payload: unknown): void {
    try {
      const result: unknown = (listener as EventListener<unknown>)(payload);
      if (typeof (result as PromiseLike<void> | undefined)?.then === "function") {
        Promise.resolve(result).catch((error: unknown) => this.#report(error, event));
      }
    } catch (error) {
      this.#report(error, event);
    }
  }

  #report(error: unknown, event: string): void {
    try {
      this.#onListenerError(error, { event });
    } catch (handlerError) {
      defaultListenerErrorHandler(handlerError, { event });
    }
  }

  #forget(channel: string, listener: AnyListener): void {
    const listeners = this.#registrations.get(channel);
    listeners?.delete(listener);
    if (listeners?.size === 0) {
      this.#registrations.delete(channel);
    }
  }

  #channel(event: string): string {
    return this.#namespace.create(event).toString();
  }
}
