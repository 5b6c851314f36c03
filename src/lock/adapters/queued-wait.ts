// A `waitForRelease` that queues in the backend (Redis, PostgreSQL): the adapter's release
// hands the key to the oldest queued claim, or wakes a wait without one ahead of it, and tells
// that wait's process on its own channel. This is the part every such adapter shares: the
// wait's life from joining the queue to its end, whichever comes first of its grant, its time
// running out, an abort, or close().
//
// A message is only a wake-up. Anyone who can publish on the channel (Redis PUBLISH, any
// PostgreSQL role's NOTIFY) can send one, so the wait asks the backend (`check`) whether it was
// handed the key, and with which token, before it believes it. The same check runs when the
// holder's hold may have expired (an expiry sends nothing): the backend then serves its queue,
// oldest first, or, the hold refreshed, renews the wait's entry in place, so a wait keeps its
// place however often the holder refreshes (an entry not renewed lapses soon after the holder's
// expiry: a wait whose process died does not hold the queue up for long).

import { onAbort } from "../../lifecycle/abort-listeners.js";
import { TimeSpan } from "../../time-span/time-span.js";
import { Timer } from "../../timers/timers.js";
import type { LockHandOff } from "../contracts/lock-adapter.js";

/**
 * What ending a wait does with its entry:
 * - `keep`: the wait ran out (or the adapter closes): remove the entry; a key handed to the
 *   claim meanwhile stays the waiter's (its token is answered);
 * - `release`: the wait was aborted: remove the entry; a key handed to the claim meanwhile is
 *   released (to the next wait).
 * Either way, a key is the claim's only when this wait's own entry is gone from the queue: a
 * second wait of the same owner, still queued, never answers (nor frees) the first one's hold.
 */
export type LeaveMode = "keep" | "release";

/** A wait in its key's queue: its entry (to leave with), and when to check on the holder. */
export type QueueEntry = {
  readonly entry: string;
  /**
   * Ms from now until the holder's hold expires (`Infinity`: it never does; absent: no hold):
   * the wait checks then, since an expiry sends no message.
   */
  readonly holderLeftMs?: number;
};

/** What the backend says of a queued wait. */
export type WaitCheck =
  /**
   * The key was handed to the claim, with this token; the hold has `remainingMs` left by the
   * backend's clock when it answered (absent: it never expires).
   */
  | { readonly state: "granted"; readonly fencingToken: number; readonly remainingMs?: number }
  /**
   * Still queued, as `entry` now (renewed: its deadline counts from this check); the holder's
   * hold expires in `holderLeftMs` (absent: never, or no hold).
   */
  | { readonly state: "queued"; readonly entry: string; readonly holderLeftMs?: number }
  /** No longer queued and not handed the key: woken (a wait without a claim), or lost. */
  | { readonly state: "gone" };

/** The queue of one wait's key, as its backend keeps it. */
export type WaitQueue = {
  /**
   * Queues the wait, named `waitId` in its messages, with a deadline `maxWaitMs` from now on the
   * backend's clock, or a short grace past the holder's expiry when that comes sooner (the wait
   * renews it by checking then: a waiter that died does not keep its place for long). Answers
   * the entry; or a token (> 0) when the key was free and taken for the claim; or a token negated
   * (< 0) when the key was the claim owner's own live hold, re-taken (TTL restarted); or 0 when
   * the key was free and the waiter should try it.
   */
  join(maxWaitMs: number, waitId: string): Promise<number | QueueEntry>;
  /** Ends the wait (see {@link LeaveMode}): the claim's token if it keeps the key, else 0. */
  leave(entry: string, mode: LeaveMode): Promise<number>;
  /**
   * Asks whether the wait was handed the key. With `serve` (the check at the holder's expiry,
   * which the wait's own clock says has come), a hold found gone is taken as expired: the queue
   * is served first (oldest first), as a release would serve it. A queued entry stays where it
   * is, renewed as `join` would set it with `leftMs` left.
   */
  check(entry: string, leftMs: number, serve: boolean): Promise<WaitCheck>;
  /** Releases a key taken for the claim (by `join`) of a wait aborted meanwhile. */
  giveBack(): Promise<unknown>;
};

/**
 * How long a queue entry outlives the holder's expiry unless its wait renews it (it checks at
 * that expiry, which renews it): a live wait keeps its place however often the holder
 * refreshes, and one whose process died is skipped soon after the hold it waited on would have
 * ended. Each backend's queue sets entries' deadlines with it.
 */
export const ENTRY_GRACE_MS = 2_000;

/** After a check that failed, the next one (the backend unreachable for a moment). */
const CHECK_RETRY_MS = 250;

/** How a wait ends before it is granted: kept (time ran out, close) or aborted. */
type WaitEnding = { mode: "keep" } | { mode: "release"; reason: unknown };

/**
 * One queued `waitForRelease`. Every end but a grant goes through `leave`, which tells whether
 * the key was handed over meanwhile, so a hand-off is never lost nor given to a wait that ended.
 * One timer: at the wait's deadline, or sooner at the holder's expiry (then a check).
 */
class QueuedWait {
  /** The queue entry, once `join` answered with one. */
  #entry: string | undefined;
  /** `join` was sent: from then on, only `leave` can end the wait. */
  #joining = false;
  /** Set once an end (timeout, abort, close) began: `leave` decides from then on. */
  #ending: WaitEnding | undefined;
  #settled = false;
  /** A check under way (it may renew the entry: an end waits for it). */
  #checking: Promise<unknown> | undefined;
  /** Another check was asked for meanwhile (`#serveAgain`: one at the holder's expiry). */
  #checkAgain = false;
  #serveAgain = false;
  /** performance.now() time the holder's hold was last reported to expire. */
  #holderExpiresAt = Number.POSITIVE_INFINITY;
  /** performance.now() time the last check was sent, and whether it was one to serve. */
  #checkSentAt = 0;
  #served = false;
  /** A message came before `join` answered with the entry. */
  #checkWhenJoined = false;
  /** performance.now() time the wait runs out. */
  #deadline = 0;
  /** What the timer does when it fires (see #arm). */
  #then: "end" | boolean = "end";
  readonly #timer = new Timer(() => this.#timerFired());
  /** Stops listening to the signal (one listener per signal, however many waits share it). */
  #stopListening: (() => void) | undefined;
  #resolve!: (handOff: LockHandOff | undefined) => void;
  #reject!: (reason: unknown) => void;
  readonly promise: Promise<LockHandOff | undefined>;

  /**
   * @param id unique among the adapter's waits: its messages name it
   * @param ended called once, when the wait has ended
   */
  constructor(
    readonly id: string,
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
    this.#deadline = performance.now() + maxWaitMs;
    this.#arm(maxWaitMs, "end");
    this.#stopListening = onAbort(this.signal, () => this.#aborted());
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

  /**
   * Asks the backend whether the key was handed to this wait: on its message (which anyone can
   * send, so it proves nothing), after a reconnect (messages may have been missed), and at the
   * holder's expiry (`serve`: only then is a hold found gone taken as expired; after a restart
   * of a store that keeps nothing, the old holder may still be at work until then).
   */
  check(serve = false): void {
    const entry = this.#entry;
    if (this.#settled || this.#ending !== undefined) {
      return;
    }
    if (entry === undefined) {
      // The message can outrun `join`'s answer (another connection): check once it is known.
      this.#checkWhenJoined = true;
      return;
    }
    if (this.#checking !== undefined) {
      this.#checkAgain = true;
      this.#serveAgain ||= serve;
      return;
    }
    this.#checkSentAt = performance.now();
    this.#served = serve;
    this.#checking = this.queue.check(entry, Math.max(1, this.#left()), serve).then(
      (reply) => this.#checked(reply),
      () => {
        this.#checking = undefined;
        if (!this.#settled && this.#ending === undefined) {
          const left = this.#left();
          this.#arm(Math.min(CHECK_RETRY_MS, left), CHECK_RETRY_MS < left ? serve : "end");
        }
      },
    );
  }

  /** Ends the wait now, as if its time had run out: for close(). */
  close(): Promise<unknown> {
    this.#end({ mode: "keep" });
    return this.promise.catch(() => {});
  }

  #aborted(): void {
    this.#end({ mode: "release", reason: this.signal.reason });
  }

  #left(): number {
    return this.#deadline - performance.now();
  }

  /**
   * The one timer, armed for what it does when it fires: end the wait (its deadline), or check
   * (`true`: at the holder's expiry, to serve the queue). It acts on that, not on a comparison of
   * clocks: a timer may fire a little before `performance.now()` says its time has come.
   */
  #arm(ms: number, then: "end" | boolean): void {
    this.#then = then;
    this.#timer.set(ms);
  }

  #timerFired(): void {
    if (this.#then === "end") {
      this.#end({ mode: "keep" });
    } else {
      this.check(this.#then);
    }
  }

  /**
   * Checks again at the holder's expiry, to serve the queue, if it comes before the wait's end
   * (`Infinity`: the hold never expires). A reply that names no hold leaves the last expiry
   * known in place: after a restart of a store that keeps nothing, the old holder may be at
   * work until then; past it, the wait serves the queue itself (again after a pause, should
   * that find nothing to serve).
   */
  #watchHolder(holderLeftMs: number | undefined): void {
    const now = performance.now();
    if (holderLeftMs !== undefined) {
      // A millisecond past the expiry, so the backend sees it expired.
      this.#holderExpiresAt = now + holderLeftMs + 1;
    } else if (this.#holderExpiresAt <= now) {
      const left = this.#left();
      const pause = this.#served ? CHECK_RETRY_MS : 1;
      this.#arm(Math.min(pause, left), pause < left ? true : "end");
      return;
    }
    const untilExpiry = this.#holderExpiresAt - now;
    const left = this.#left();
    this.#arm(Math.max(0, Math.min(untilExpiry, left)), untilExpiry < left ? true : "end");
  }

  #checked(reply: WaitCheck): void {
    this.#checking = undefined;
    if (reply.state === "queued") {
      this.#entry = reply.entry;
    }
    if (this.#settled || this.#ending !== undefined) {
      // An end under way: `leave` answers for a grant (and gives it back if aborted).
      return;
    }
    if (reply.state === "granted") {
      const { fencingToken, remainingMs } = reply;
      this.#settle(
        remainingMs === undefined
          ? { acquired: true, fencingToken }
          : {
              acquired: true,
              fencingToken,
              remainingTime: TimeSpan.fromMilliseconds(
                Math.max(0, remainingMs - (performance.now() - this.#checkSentAt)),
              ),
            },
      );
    } else if (reply.state === "gone") {
      this.#settle(undefined);
    } else if (this.#checkAgain) {
      const serve = this.#serveAgain;
      this.#checkAgain = false;
      this.#serveAgain = false;
      this.check(serve);
    } else {
      this.#watchHolder(reply.holderLeftMs);
    }
  }

  #joined(reply: number | QueueEntry): void {
    if (typeof reply === "number") {
      // The key was free: the claim's now (a token), or free to try (0); or the claim owner's
      // own hold, re-taken (a negated token): an abort must not free that, it was held before.
      const ending = this.#ending;
      const fencingToken = Math.abs(reply);
      if (ending?.mode === "release" && reply > 0) {
        this.#giveBack(ending.reason);
      } else if (ending?.mode === "release") {
        this.#fail(ending.reason);
      } else if (!this.#settled) {
        this.#settle(fencingToken > 0 ? { acquired: true, fencingToken } : undefined);
      }
      return;
    }
    this.#entry = reply.entry;
    if (this.#ending !== undefined) {
      this.#finish(reply.entry, this.#ending);
    } else if (!this.#settled) {
      this.#watchHolder(reply.holderLeftMs);
      if (this.#checkWhenJoined) {
        this.check();
      }
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
    this.#timer.clear();
    this.#stopListening?.();
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
    if (this.#checking !== undefined) {
      // The check may renew the entry: leave with the entry as it is then.
      const leave = () => this.#finish(this.#entry ?? entry, ending);
      this.#checking.then(leave, leave);
      return;
    }
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
    this.#timer.clear();
    this.#stopListening?.();
    this.ended(this);
  }
}

/**
 * The waits under way of one adapter, by id. A release names the wait it served on the
 * adapter's own channel (the message is the wait's id); the wait then asks the backend.
 */
export class QueuedWaits {
  readonly #waits = new Map<string, QueuedWait>();
  #count = 0;

  get size(): number {
    return this.#waits.size;
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
  ): Promise<LockHandOff | undefined> {
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

  /** A message on the adapter's channel: the wait it names (if under way) checks its grant. */
  heard(message: string): void {
    this.#waits.get(message)?.check();
  }

  /** Messages may have been missed: every wait checks whether it was handed the key. */
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
