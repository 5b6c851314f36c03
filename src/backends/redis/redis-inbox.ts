import { randomBytes } from "node:crypto";
import type { Cluster, Redis } from "ioredis";
import { followEnd } from "../../lifecycle/end-listeners.js";

/** Why a wait fails once the client ended: no subscriber may outlive it. */
const CLIENT_ENDED =
  "the Redis client has ended (quit, disconnected, or given up reconnecting): no wait can subscribe on it";

/**
 * Whether the application closed `client`, or is closing it: between `quit()`'s answer and the
 * socket's close, ioredis still says "ready" but has marked the close as its user's.
 */
function isClosed(client: Redis | Cluster): boolean {
  return (
    client.status === "end" ||
    (client as unknown as { manuallyClosing?: boolean }).manuallyClosing === true
  );
}

/** What the adapter does with what its inbox hears. */
export type RedisInboxListeners = {
  /** A message on the channel: the id of the wait a release served. */
  readonly onMessage: (message: string) => void;
  /**
   * The subscriber reconnected: messages published while it was away were lost. `subscribe`
   * answers once the channel is subscribed again (after ioredis's own resubscription on that
   * connection).
   */
  readonly onReconnected: (subscribe: () => Promise<unknown>) => void;
  /** The client ended: no message can come any more, nor a new subscriber be made. */
  readonly onClientEnded: () => void;
};

/**
 * An adapter's channel, where releases name the waits they served, on one subscriber
 * connection duplicated from the client when first needed. It follows the client: when the
 * client ends (`quit()`, `disconnect()`, or ioredis gives up reconnecting), the subscriber is
 * disconnected too. Every primitive's Redis adapter has one (none has a ":" in its name).
 */
export class RedisInbox {
  /**
   * `<prefix>-<24 hex>`: random, so that two adapters (processes) never share one: a message
   * reaches one.
   */
  readonly channel: string;
  readonly #client: Redis | Cluster;
  readonly #listeners: RedisInboxListeners;
  /** SUBSCRIBE of the channel, made before the first wait is queued. */
  #subscribed: Promise<unknown> | undefined;
  #subscriber: Redis | Cluster | undefined;
  /** Stops ending the subscriber with the client (while there is a subscriber). */
  #unfollowClient: (() => void) | undefined;
  /** close() was called: no subscriber is made again (close ends what the adapter made). */
  #closed = false;

  /** @param prefix the channel's, naming the primitive (`hasp-lock-inbox`) */
  constructor(client: Redis | Cluster, listeners: RedisInboxListeners, prefix: string) {
    this.channel = `${prefix}-${randomBytes(12).toString("hex")}`;
    this.#client = client;
    this.#listeners = listeners;
  }

  /** The subscription, made once (again after a failure). */
  listen(): Promise<unknown> {
    if (this.#closed) {
      return Promise.reject(new Error("the adapter is closed (`close()` was called)"));
    }
    if (this.#subscribed === undefined) {
      if (isClosed(this.#client)) {
        // A subscriber duplicated now would outlive the client the application closed.
        return Promise.reject(new Error(CLIENT_ENDED));
      }
      const subscribed = this.#subscriberConnection().subscribe(this.channel);
      subscribed.catch(() => {
        if (this.#subscribed === subscribed) {
          this.#subscribed = undefined;
        }
      });
      this.#subscribed = subscribed;
    }
    return this.#subscribed;
  }

  /** Closes the subscriber connection for good: a later `listen` fails. */
  async close(): Promise<void> {
    this.#closed = true;
    const subscriber = this.#forgetSubscriber();
    if (subscriber !== undefined) {
      await subscriber.quit().catch(() => subscriber.disconnect());
    }
  }

  #subscriberConnection(): Redis | Cluster {
    if (this.#subscriber === undefined) {
      const subscriber = this.#client.duplicate();
      subscriber.on("message", (_channel: string, message: string) => {
        this.#listeners.onMessage(message);
      });
      // ioredis reconnects and resubscribes by itself; without a handler it prints each error.
      subscriber.on("error", () => {});
      let connected = false;
      subscriber.on("ready", () => {
        if (connected) {
          this.#listeners.onReconnected(() => subscriber.subscribe(this.channel));
        }
        connected = true;
      });
      // Ended without us (ioredis gave up reconnecting): the next wait makes a new one.
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
        this.#listeners.onClientEnded();
      });
      this.#subscriber = subscriber;
    }
    return this.#subscriber;
  }

  /** Lets go of the subscriber (without ending it) and of its listener on the client. */
  #forgetSubscriber(): Redis | Cluster | undefined {
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    this.#subscribed = undefined;
    this.#unfollowClient?.();
    this.#unfollowClient = undefined;
    return subscriber;
  }
}
