import type { Redis } from "ioredis";
import { followEnd } from "../../../lifecycle/end-listeners.js";
import type { ISerde } from "../../../serde/serde-contracts.js";
import type { AdapterListener, IEventBusAdapter } from "../../event-bus-contracts.js";

/** Settings of {@link RedisPubSubEventBusAdapter}. */
export type RedisPubSubEventBusAdapterSettings = {
  /** Publishes events. The adapter never closes it: it is yours. */
  client: Redis;
  /**
   * Turns payloads into text and back; give the same `Serde` to every component (a lock
   * provider registers its locks on it), so that a lock in a payload arrives as a working lock.
   */
  serde: ISerde<string>;
  /**
   * Receives a message that could not be deserialized (it is dropped).
   * @default writes the error to `console.error`
   */
  onMessageError?: (error: unknown, context: { channel: string }) => void;
};

/**
 * An event bus transport over Redis pub/sub. Publishes with the given client, and listens on
 * one connection duplicated from it, created when the first listener arrives and closed by
 * {@link close}, or as soon as the client ends (`quit()`, `disconnect()`, or ioredis gives up
 * reconnecting): a process that quit its client exits by itself. Each channel is subscribed once however many listeners it has, and
 * unsubscribed when its last listener leaves. After a lost connection the subscriber
 * reconnects and subscribes again by itself; events published while it was away are lost, as
 * pub/sub does not keep them.
 */
export class RedisPubSubEventBusAdapter implements IEventBusAdapter {
  readonly #client: Redis;
  readonly #serde: ISerde<string>;
  readonly #onMessageError: NonNullable<RedisPubSubEventBusAdapterSettings["onMessageError"]>;
  readonly #channels = new Map<string, { listeners: Set<AdapterListener>; ready: Promise<void> }>();
  #subscriber: Redis | undefined;
  /** Stops ending the subscriber with the client (while there is a subscriber). */
  #unfollowClient: (() => void) | undefined;

  constructor(settings: RedisPubSubEventBusAdapterSettings) {
    this.#client = settings.client;
    this.#serde = settings.serde;
    this.#onMessageError =
      settings.onMessageError ??
      ((error, { channel }) => {
        console.error(`[hasp] dropped an undecodable message on "${channel}":`, error);
      });
  }

  async addListener(channel: string, listener: AdapterListener): Promise<void> {
    const existing = this.#channels.get(channel);
    if (existing !== undefined) {
      existing.listeners.add(listener);
      // A listener joining while the channel's SUBSCRIBE is in flight waits for it too.
      return existing.ready;
    }
    const subscriber = this.#subscriberConnection();
    const entry = {
      listeners: new Set([listener]),
      ready: subscriber.subscribe(channel).then(() => undefined),
    };
    this.#channels.set(channel, entry);
    try {
      await entry.ready;
    } catch (error) {
      if (this.#channels.get(channel) === entry) {
        this.#channels.delete(channel);
      }
      throw error;
    }
  }

  async removeListener(channel: string, listener: AdapterListener): Promise<void> {
    const entry = this.#channels.get(channel);
    if (entry === undefined || !entry.listeners.delete(listener)) {
      return;
    }
    if (entry.listeners.size === 0) {
      this.#channels.delete(channel);
      // Commands on one connection run in order, so this follows the channel's SUBSCRIBE.
      await this.#subscriber?.unsubscribe(channel);
    }
  }

  async dispatch(channel: string, payload: unknown): Promise<void> {
    await this.#client.publish(channel, this.#serde.serialize(payload));
  }

  /** Closes the subscriber connection and forgets every listener. The client stays open. */
  async close(): Promise<void> {
    const subscriber = this.#forgetSubscriber();
    if (subscriber !== undefined) {
      await subscriber.quit().catch(() => subscriber.disconnect());
    }
  }

  /** Closes the adapter (`close()`), for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #subscriberConnection(): Redis {
    if (this.#subscriber === undefined) {
      // "end", or closing: between quit()'s answer and the socket's close ioredis still says
      // "ready", with the close marked as its user's.
      if (
        this.#client.status === "end" ||
        (this.#client as unknown as { manuallyClosing?: boolean }).manuallyClosing === true
      ) {
        // A subscriber duplicated now would outlive the client the application closed.
        throw new Error(
          "the Redis client has ended (quit, disconnected, or given up reconnecting): no listener can subscribe on it",
        );
      }
      const subscriber = this.#client.duplicate({ autoResubscribe: true, lazyConnect: false });
      // The one message handler, however many channels and listeners there are.
      subscriber.on("message", (channel: string, message: string) => {
        this.#deliver(channel, message);
      });
      // Connection errors are retried by ioredis; without a handler it would print each one.
      subscriber.on("error", () => {});
      // Ended without us (ioredis gave up reconnecting): its listeners hear nothing more.
      subscriber.once("end", () => {
        if (this.#subscriber === subscriber) {
          this.#forgetSubscriber();
        }
      });
      this.#unfollowClient = followEnd(this.#client, () => {
        if (this.#subscriber === subscriber) {
          this.#forgetSubscriber();
        }
        subscriber.disconnect();
      });
      this.#subscriber = subscriber;
    }
    return this.#subscriber;
  }

  /**
   * Lets go of the subscriber (without ending it), of its channels (their subscriptions end
   * with it) and of its listener on the client.
   */
  #forgetSubscriber(): Redis | undefined {
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    this.#channels.clear();
    this.#unfollowClient?.();
    this.#unfollowClient = undefined;
    return subscriber;
  }

  #deliver(channel: string, message: string): void {
    const entry = this.#channels.get(channel);
    if (entry === undefined) {
      return;
    }
    let payload: unknown;
    try {
      payload = this.#serde.deserialize(message);
    } catch (error) {
      this.#onMessageError(error, { channel });
      return;
    }
    for (const listener of [...entry.listeners]) {
      listener(payload);
    }
  }
}
