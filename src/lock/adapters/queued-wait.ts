// A `waitForRelease` that queues in the backend (Redis, PostgreSQL): the adapter's release
// hands the key to the oldest queued claim, or wakes the oldest wait without one, and tells
// that wait's process on its own channel. This is the part every such adapter shares: the
// wait's life from joining the queue to its end, whichever comes first of its message, its
// time running out, an abort, or close().

import { MAX_TIMER_MS } from "../../task/timers.js";
import type { LockHandOff } from "../contracts/lock-adapter.js";

/**
 * What ending a wait does with its entry (the backend carries it out in one step):
 * - `keep`: the wait ran out (or the adapter closes): remove the entry; a key handed to the
 *   claim meanwhile stays the waiter's (its token is answered);
 * - `release`: the wait was aborted: remove the entry; a key handed to the claim meanwhile is
 *   released (to the next wait);
 * - `check`: a message may have been missed: answer the token if the key was handed to the
 *   claim, and leave a queued entry where it is.
 */
export type LeaveMode = "keep" | "release" | "check";

/** A wait in its key's queue: its entry (to leave with), and how long it may wait there. */
export type QueueEntry = {
  readonly entry: string;
  /** Less than the wait's own time when the holder's hold expires sooner (ms from now). */
  readonly maxWaitMs?: number;
};

/** The queue of one wait's key, as its backend keeps it. */
export type WaitQueue = {
  /**
   * Queues the wait, named `waitId` in its messages, with a deadline `maxWaitMs` from now on the
   * backend's clock (or the holder's expiry, if sooner). Answers the entry, or a token (> 0)
   * when the key was free (or the claim's own) and taken for the claim, or 0 when the key was
   * free and the waiter should try it.
   */
  join(maxWaitMs: number, waitId: string): Promise<number | QueueEntry>;
  /** Ends or checks the wait (see {@link LeaveMode}): the claim's token if it has the key, else 0. */
  leave(entry: string, mode: LeaveMode): Promise<number>;
  /** Releases a key taken for the claim (by `join`) of a wait aborted meanwhile. */
  giveBack(): Promise<unknown>;
};

/** How a wait ends before its message: kept (time ran out, close) or aborted. */
type WaitEnding = { mode: "keep" } | { mode: "release"; reason: unknown };

/**
 * One queued `waitForRelease`. Every end but its message goes through `leave`, which tells
 * whether the key was handed over meanwhile, so a hand-off is never lost nor given to a wait
 * that ended.
 */
class QueuedWait {
  /** The queue entry, once `join` answered with one. */
  #entry: string | undefined;
  /** `join` was sent: from then on, only `leave` can end the wait. */
  #joining = false;
  /** Set once an end (timeout, abort, close) began: `leave` decides from then on. */
  #ending: WaitEnding | undefined;
  #settled = false;
  #checking = false;
  /** A check was asked for before the entry was known. */
  #checkWhenJoined = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #resolve!: (handOff: LockHandOff | undefined) => void;
  #reject!: (reason: unknown) => void;
  readonly promise: Promise<LockHandOff | undefined>;

  /**
   * @param id unique among the adapter's waits: its messages name it
   * @param owner the claim's lock id ("" for a wait without a claim)
   * @param ended called once, when the wait has ended
   */
  constructor(
    readonly id: string,
    readonly owner: string,
    readonly signal: AbortSignal,
    readonly queue: WaitQueue,
    readonly ended: (wait: QueuedWait) => void,
  ) {
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /** Joins the queue once `listening` (so that no message can be missed). */
  start(maxWaitMs: number, listening: Promise<unknown>): void {
    this.#arm(maxWaitMs);
    this.signal.addEventListener("abort", this, { once: true });
    listening
      .then(() => {
        // Ended while the listener was still being set up: nothing to queue.
        if (this.#settled) {
          return undefined;
        }
        this.#joining = true;
        return this.queue.join(maxWaitMs, this.id);
      })
      .then(
        (reply) => {
          if (reply !== undefined) {
            this.#joined(reply);
          }
        },
        (error: unknown) => this.#joinFailed(error),
      );
  }

  /** Its message: a release handed it the key (`fencingToken` > 0) or woke it (0). */
  heard(fencingToken: number): void {
    // While an end is under way, `leave` answers for the hand-off (and gives it back if the
    // wait was aborted).
    if (!this.#settled && this.#ending === undefined) {
      this.#settle(fencingToken > 0 ? { acquired: true, fencingToken } : undefined);
    }
  }

  /** A message may have been missed: asks the backend whether the key was handed to this wait. */
  check(): void {
    const entry = this.#entry;
    if (entry === undefined) {
      this.#checkWhenJoined = true;
      return;
    }
    if (this.#settled || this.#ending !== undefined || this.#checking) {
      return;
    }
    this.#checking = true;
    this.queue.leave(entry, "check").then(
      (reply) => {
        this.#checking = false;
        // Not handed: the entry is queued, and the wait goes on.
        if (!this.#settled && this.#ending === undefined && reply > 0) {
          this.#settle({ acquired: true, fencingToken: reply });
        }
      },
      () => {
        // The deadline or the next reconnect asks again.
        this.#checking = false;
      },
    );
  }

  /** Ends the wait now, as if its time had run out: for close(). */
  close(): Promise<unknown> {
    this.#end({ mode: "keep" });
    return this.promise.catch(() => {});
  }

  /** The signal aborted. */
  handleEvent(): void {
    this.#end({ mode: "release", reason: this.signal.reason });
  }

  #arm(ms: number): void {
    const step = Math.min(ms, MAX_TIMER_MS);
    this.#timer = setTimeout(() => {
      if (ms > step) {
        this.#arm(ms - step);
      } else {
        this.#end({ mode: "keep" });
      }
    }, step);
  }

  #joined(reply: number | QueueEntry): void {
    if (typeof reply === "number") {
      // The key was free: the claim's now (a token), or free to try (0).
      const ending = this.#ending;
      if (ending?.mode === "release" && reply > 0) {
        this.#giveBack(ending.reason);
      } else if (ending?.mode === "release") {
        this.#fail(ending.reason);
      } else if (!this.#settled) {
        this.#settle(reply > 0 ? { acquired: true, fencingToken: reply } : undefined);
      }
      return;
    }
    const { entry, maxWaitMs } = reply;
    this.#entry = entry;
    if (this.#ending !== undefined) {
      this.#finish(entry, this.#ending);
      return;
    }
    if (maxWaitMs !== undefined && !this.#settled) {
      // The holder's hold ends first, and its expiry sends nothing: wake then.
      clearTimeout(this.#timer);
      this.#arm(Math.max(1, maxWaitMs));
    }
    if (this.#checkWhenJoined) {
      this.check();
    }
  }

  #joinFailed(error: unknown): void {
    const ending = this.#ending;
    this.#fail(ending?.mode === "release" ? ending.reason : error);
  }

  #end(ending: WaitEnding): void {
    if (this.#settled || this.#ending !== undefined) {
      return;
    }
    this.#ending = ending;
    clearTimeout(this.#timer);
    this.signal.removeEventListener("abort", this);
    if (!this.#joining) {
      // Not queued (the listener is not ready): the wait ends here.
      if (ending.mode === "release") {
        this.#fail(ending.reason);
      } else {
        this.#settle(undefined);
      }
    } else if (this.#entry !== undefined) {
      this.#finish(this.#entry, ending);
    }
  }

  #finish(entry: string, ending: WaitEnding): void {
    this.queue.leave(entry, ending.mode).then(
      (reply) => {
        if (ending.mode === "release") {
          this.#fail(ending.reason);
        } else if (!this.#settled) {
          this.#settle(reply > 0 ? { acquired: true, fencingToken: reply } : undefined);
        }
      },
      (error: unknown) => {
        this.#fail(ending.mode === "release" ? ending.reason : error);
      },
    );
  }

  /** The key was taken for a wait that was aborted meanwhile: release it (to the next wait). */
  #giveBack(reason: unknown): void {
    // Released or not (a failure leaves the hold to its TTL), the caller gets the reason.
    const failed = () => this.#fail(reason);
    this.queue.giveBack().then(failed, failed);
  }

  #settle(handOff: LockHandOff | undefined): void {
    this.#settled = true;
    this.#cleanUp();
    this.#resolve(handOff);
  }

  #fail(reason: unknown): void {
    if (this.#settled) {
      return;
    }
    this.#settled = true;
    this.#cleanUp();
    this.#reject(reason);
  }

  #cleanUp(): void {
    clearTimeout(this.#timer);
    this.signal.removeEventListener("abort", this);
    this.ended(this);
  }
}

/**
 * The waits under way of one adapter, by id. A release tells the wait it served on the
 * adapter's own channel: `<token>:<wait id>:<owner>` (handed the key) or `0:<wait id>:`
 * (woken).
 */
export class QueuedWaits {
  readonly #waits = new Map<string, QueuedWait>();
  #count = 0;

  get size(): number {
    return this.#waits.size;
  }

  /**
   * Starts a wait for `owner` ("" without a claim) on `queue`, joining it once `listening`.
   * `queue.join` receives the wait's id, for its messages.
   */
  start(
    owner: string,
    signal: AbortSignal,
    maxWaitMs: number,
    queue: WaitQueue,
    listening: Promise<unknown>,
  ): Promise<LockHandOff | undefined> {
    this.#count += 1;
    const wait = new QueuedWait(this.#count.toString(36), owner, signal, queue, (ended) => {
      if (this.#waits.get(ended.id) === ended) {
        this.#waits.delete(ended.id);
      }
    });
    this.#waits.set(wait.id, wait);
    wait.start(maxWaitMs, listening);
    return wait.promise;
  }

  /** A message on the adapter's channel: settles the wait it names, if under way and its owner's. */
  heard(message: string): void {
    const tokenEnd = message.indexOf(":");
    const idEnd = message.indexOf(":", tokenEnd + 1);
    if (tokenEnd === -1 || idEnd === -1) {
      return;
    }
    const wait = this.#waits.get(message.slice(tokenEnd + 1, idEnd));
    if (wait !== undefined && wait.owner === message.slice(idEnd + 1)) {
      wait.heard(Number(message.slice(0, tokenEnd)));
    }
  }

  /** Messages may have been missed: every wait asks whether it was handed the key. */
  checkAll(): void {
    for (const wait of this.#waits.values()) {
      wait.check();
    }
  }

  /** Ends every wait now, as if its time had run out (for the adapter's close()). */
  closeAll(): Promise<unknown> {
    return Promise.all([...this.#waits.values()].map((wait) => wait.close()));
  }
}
