import type { QueuedWaitRequest } from "../wait-queue/queued-waits.js";
import { QueuedWaits } from "../wait-queue/queued-waits.js";
import type { WaitHandOff } from "../wait-queue/wait-queue.js";
import type { RedisClient } from "./redis-client.js";
import { RedisInbox } from "./redis-inbox.js";

/** What an adapter tells {@link RedisWaits}: its class name and its inbox channels' prefix. */
export type RedisWaitsSettings = {
  /** The adapter's class name, in the errors of its waits. */
  readonly adapter: string;
  /** The prefix of its inbox channel, naming the primitive (`hasp-lock-inbox`). */
  readonly inboxPrefix: string;
};

/**
 * The queued waits of one Redis adapter (any primitive's) and the inbox their hand-offs are
 * told on: a message names a wait, which then asks Redis (a message is a wake-up only); after
 * a reconnect of the subscriber every wait asks; once the client ended they end, rather than
 * hold the process until their time; close() ends them as an abort does.
 */
export class RedisWaits {
  readonly #waits = new QueuedWaits();
  readonly #inbox: RedisInbox;
  readonly #adapter: string;

  constructor(client: RedisClient, { adapter, inboxPrefix }: RedisWaitsSettings) {
    this.#adapter = adapter;
    this.#inbox = new RedisInbox(
      client,
      {
        onMessage: (message) => this.#waits.heard(message),
        // Messages published while the subscriber was away were lost: every wait asks Redis.
        onReconnected: (subscribe) => this.#waits.recheck(subscribe, { ifListenFails: "skip" }),
        // Their messages can no longer come, nor their queue entries be left: they end now
        // (failing, as the client is closed) rather than hold the process until their time.
        onClientEnded: () => void this.#waits.closeAll(),
      },
      inboxPrefix,
    );
  }

  /** The inbox channel, where the scripts name the waits they served. */
  get channel(): string {
    return this.#inbox.channel;
  }

  /** The adapter's `waitForRelease`, joining the queue once the inbox listens. */
  waitForRelease(
    request: Omit<QueuedWaitRequest, "adapter" | "listen">,
  ): Promise<WaitHandOff | undefined> {
    return this.#waits.waitForRelease({
      ...request,
      adapter: this.#adapter,
      listen: () => this.#inbox.listen(),
    });
  }

  /**
   * The adapter's close(): waits under way leave their queue as aborted ones do and fail with an
   * error naming close(); the subscriber connection is closed (a later wait fails at once).
   */
  async close(): Promise<void> {
    const ending = this.#waits.close(this.#adapter);
    await this.#inbox.close();
    await ending;
  }
}
