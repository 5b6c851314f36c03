import type { TimeSpan } from "../../time-span/time-span.js";
import { durationTooLong, storeMilliseconds } from "../../time-span/time-span-schema.js";
import { QueuedWait } from "./queued-wait.js";
import { claimFields, type EntryClaimFields } from "./wait-entry.js";
import type { HeardGrant, WaitClaim, WaitHandOff, WaitQueue } from "./wait-queue.js";

/** A `waitForRelease` call as the adapter received it, and what the adapter brings to it. */
export type QueuedWaitRequest = {
  /** The adapter's class name, for the error of a duration above the bound. */
  readonly adapter: string;
  readonly maxWait: TimeSpan;
  readonly signal: AbortSignal;
  readonly claim: WaitClaim | undefined;
  /** The key's queue for this wait, whose entry holds `claim` as these fields. */
  readonly queue: (claim: EntryClaimFields) => WaitQueue;
  /** Listens on the adapter's channel (once for all its waits): the wait joins once it does. */
  readonly listen: () => Promise<unknown>;
};

/**
 * The waits under way of one adapter, by id. A release names the wait it served on the
 * adapter's own channel; the wait then asks the backend, unless the adapter proved the message
 * its backend's grant.
 */
export class QueuedWaits {
  readonly #waits = new Map<string, QueuedWait>();
  #count = 0;
  /** The adapter's close() was called. */
  #closed = false;

  get size(): number {
    return this.#waits.size;
  }

  /**
   * An adapter's `waitForRelease`: refuses an aborted signal and a duration above the bound
   * before anything is sent; after {@link close}, rejects at once (no new listener: close()
   * ended what the adapter made); else starts the wait on the queue `request.queue` gives.
   */
  waitForRelease(request: QueuedWaitRequest): Promise<WaitHandOff | undefined> {
    const { adapter, maxWait, signal, claim } = request;
    if (signal.aborted) {
      return Promise.reject(signal.reason);
    }
    if (storeMilliseconds(maxWait) === undefined) {
      return Promise.reject(durationTooLong(adapter, "maxWait", maxWait));
    }
    const ttlMs = claim === undefined || claim.ttl === null ? null : storeMilliseconds(claim.ttl);
    if (ttlMs === undefined) {
      return Promise.reject(durationTooLong(adapter, "claim.ttl", claim?.ttl ?? null));
    }
    if (this.#closed) {
      return Promise.reject(
        new Error(
          `${adapter} is closed (\`close()\` was called): no wait for a release can start on it`,
        ),
      );
    }
    const fields = claimFields(
      claim === undefined
        ? null
        : claim.limit === undefined
          ? { owner: claim.owner, ttlMs }
          : { owner: claim.owner, ttlMs, limit: claim.limit },
    );
    return this.start(signal, maxWait.toMilliseconds(), request.queue(fields), request.listen());
  }

  /**
   * Starts a wait on `queue`, joining it once `listening`. `queue.join` receives the wait's id,
   * for its messages.
   */
  start(
    signal: AbortSignal,
    maxWaitMs: number,
    queue: WaitQueue,
    listening: Promise<unknown>,
  ): Promise<WaitHandOff | undefined> {
    this.#count += 1;
    const wait = new QueuedWait(this.#count.toString(36), signal, queue, (ended) => {
      if (this.#waits.get(ended.id) === ended) {
        this.#waits.delete(ended.id);
      }
    });
    this.#waits.set(wait.id, wait);
    wait.start(maxWaitMs, listening);
    return wait.promise;
  }

  /**
   * A message on the adapter's channel naming the wait `waitId` (if under way): it checks its
   * grant, or, with a `grant` the adapter proved its backend's, takes it.
   */
  heard(waitId: string, grant?: HeardGrant): void {
    const wait = this.#waits.get(waitId);
    if (grant === undefined) {
      wait?.check();
    } else {
      wait?.heard(grant);
    }
  }

  /** Messages may have been missed: every wait checks whether it was handed the key. */
  #checkAll(): void {
    for (const wait of this.#waits.values()) {
      wait.check();
    }
  }

  /**
   * The adapter's listener was lost (messages meanwhile too): once it listens again (`listen`,
   * called only with waits under way), every wait checks. When that fails, `ifListenFails`:
   * `check` all the same (the checks do not go through the listener), or `skip` (the next
   * reconnect checks, or the waits' deadlines end them).
   */
  recheck(listen: () => Promise<unknown>, options: { ifListenFails: "check" | "skip" }): void {
    if (this.#waits.size === 0) {
      return;
    }
    const checkAll = () => this.#checkAll();
    listen().then(checkAll, options.ifListenFails === "check" ? checkAll : () => {});
  }

  /** Ends every wait now, as if its time had run out (the adapter's listener is gone). */
  closeAll(): Promise<unknown> {
    return Promise.all([...this.#waits.values()].map((wait) => wait.close()));
  }

  /**
   * For the adapter's close() (`adapter`: its class name): every wait under way leaves its queue
   * as an aborted wait does (a key or slot handed to it meanwhile is given back) and fails with
   * an error that names close(); a wait started later fails at once. Nothing waits out its time:
   * the adapter's listener, the only way a release reaches a wait, is going.
   */
  close(adapter: string): Promise<unknown> {
    this.#closed = true;
    const reason = new Error(
      `${adapter} was closed (\`close()\` was called) while the wait for a release was under way`,
    );
    return Promise.all([...this.#waits.values()].map((wait) => wait.close(reason)));
  }
}
