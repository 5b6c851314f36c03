import type { ITask } from "../task/task.js";

/**
 * Event names mapped to their payload types. Declare it with `type` (an `interface` has no
 * index signature and is not assignable):
 *
 * @example
 * type OrderEvents = { "order-paid": { orderId: string; at: Date } };
 */
export type BaseEventMap = Record<string, unknown>;

/** A listener may be async; its failure is reported, never thrown at the dispatcher. */
export type EventListener<TPayload> = (payload: TPayload) => void | PromiseLike<void>;

/** Removes the listener `subscribe` added. Calling it again does nothing. */
export type Unsubscribe = () => Promise<void>;

/** Listening only: what a component that reacts to events is given. */
export type IEventListenable<TEventMap extends BaseEventMap> = {
  /** Adding the same listener to the same event twice keeps one registration. */
  addListener<TName extends keyof TEventMap & string>(
    event: TName,
    listener: EventListener<TEventMap[TName]>,
  ): Promise<void>;
  /** Removing a listener that is not registered does nothing. */
  removeListener<TName extends keyof TEventMap & string>(
    event: TName,
    listener: EventListener<TEventMap[TName]>,
  ): Promise<void>;
  /** Like `addListener`, but the listener hears one event and is then removed. */
  listenOnce<TName extends keyof TEventMap & string>(
    event: TName,
    listener: EventListener<TEventMap[TName]>,
  ): Promise<void>;
  /** `addListener` that resolves to the function removing it. */
  subscribe<TName extends keyof TEventMap & string>(
    event: TName,
    listener: EventListener<TEventMap[TName]>,
  ): Promise<Unsubscribe>;
  /** `listenOnce` that resolves to the function removing it (if it has not heard its event yet). */
  subscribeOnce<TName extends keyof TEventMap & string>(
    event: TName,
    listener: EventListener<TEventMap[TName]>,
  ): Promise<Unsubscribe>;
  /**
   * Resolves with the next event's payload. Rejects with the signal's reason when `signal`
   * aborts, leaving no listener behind. On a remote bus, events dispatched before the
   * subscription is in place are not heard: when that matters, `subscribe` first.
   */
  asPromise<TName extends keyof TEventMap & string>(
    event: TName,
    options?: { signal?: AbortSignal },
  ): Promise<TEventMap[TName]>;
  /**
   * `asPromise` as a lazy `Task`: it listens when the task runs (is awaited or detached), so it
   * composes with `timeout` and a signal (aborting removes the listener). To hear an event your
   * next step causes, use `asPromise`, which listens at once.
   *
   * @example
   * const acquired = await provider.asTask(LOCK_EVENTS.ACQUIRED).pipe(timeout({ waitTime }));
   */
  asTask<TName extends keyof TEventMap & string>(event: TName): ITask<TEventMap[TName]>;
};

/** Dispatching only: what a component that announces events is given. */
export type IEventDispatcher<TEventMap extends BaseEventMap> = {
  /**
   * Hands the event to the transport: in memory the listeners are called before it returns (it
   * does not wait for an async listener); over Redis it has been published when it resolves,
   * and listeners, even in this process, hear it when it comes back from Redis. A failing
   * listener never makes it reject; a failing transport (Redis down) does.
   */
  dispatch<TName extends keyof TEventMap & string>(
    event: TName,
    payload: TEventMap[TName],
  ): Promise<void>;
};

/** Listening and dispatching. */
export type IEventBus<TEventMap extends BaseEventMap> = IEventListenable<TEventMap> &
  IEventDispatcher<TEventMap> & {
    /** Removes every listener this bus added. The adapter stays open for other buses. */
    close(): Promise<void>;
    /** `close()`, for `await using`. */
    [Symbol.asyncDispose](): Promise<void>;
  };

/** A listener as adapters see it: it never throws (the `EventBus` isolates user code). */
export type AdapterListener = (payload: unknown) => void;

/**
 * The transport under an `EventBus`. Channels are full names (namespace included); the
 * adapter need not know about event maps.
 */
export type IEventBusAdapter = {
  /** Registers `listener` for `channel`; resolves once events on it will be heard. */
  addListener(channel: string, listener: AdapterListener): Promise<void>;
  /**
   * Unregisters `listener` from `channel`; removing one that is not registered does nothing.
   * The adapter may release the channel's resources (a Redis subscription) once it has no
   * listener left.
   */
  removeListener(channel: string, listener: AdapterListener): Promise<void>;
  /**
   * Delivers `payload` to every listener of `channel`, in this process and, for a remote
   * transport, in the others. Events are delivered in the order of the calls (a lock's events
   * are dispatched one after another without waiting). An in-process transport calls the
   * listeners before returning. Rejects only when the transport fails.
   */
  dispatch(channel: string, payload: unknown): Promise<void>;
};
