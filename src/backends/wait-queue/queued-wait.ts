// A `waitForRelease` that queues in the backend (Redis, PostgreSQL): the adapter's release
// hands the key to the oldest queued claim, or wakes a wait without one ahead of it, and tells
// that wait's process on its own channel. This is the part every such adapter shares: the
// wait's life from joining the queue to its end, whichever comes first of its grant, its time
// running out, an abort, or close().
//
// A message is a wake-up. Anyone who can publish on the channel (Redis PUBLISH, any PostgreSQL
// role's NOTIFY) can send one, so the wait asks the backend (`check`) whether it was handed the
// key, and with which token, before it believes it; unless the adapter proved the message a
// grant of the backend's own release (a `HeardGrant`: PostgreSQL signs its grants). The same
// check runs when the holder's hold may have expired (an expiry sends nothing): the backend then
// serves its queue, oldest first, or, the hold refreshed, renews the wait's entry in place, so a
// wait keeps its place however often the holder refreshes (an entry not renewed lapses soon after
// the holder's expiry: a wait whose process died does not hold the queue up for long).

import { onAbort } from "../../lifecycle/abort-listeners.js";
import { TimeSpan } from "../../time-span/time-span.js";
import { Timer } from "../../timers/timers.js";
import type { HeardGrant, QueueEntry, WaitCheck, WaitHandOff, WaitQueue } from "./wait-queue.js";

/** After a check that failed, the next one (the backend unreachable for a moment). */
const CHECK_RETRY_MS = 250;

/** How a wait ends before it is granted: kept (time ran out) or released (abort, close()). */
type WaitEnding =
  | { readonly mode: "keep" }
  | { readonly mode: "release"; readonly reason: unknown };

/** A check sent: when (performance.now()), and whether it serves the queue. */
type CheckSent = { readonly sentAt: number; readonly serve: boolean };

/** A check to send: `serve` only at the holder's expiry (it may serve the queue). */
type CheckKind = "check" | "serve";

/**
 * Where a wait is. It only moves down this list (`leaving` may be skipped):
 * - `listening`: the adapter's listener is being set up, nothing is queued; `recheck`: a check
 *   was asked for meanwhile, to run once the entry is known (a message can outrun `join`'s
 *   answer, on another connection);
 * - `joining`: `join` was sent; from then on, only `leave` (or `join`'s answer) ends the wait;
 * - `queued`: in the queue as `entry`; `checking`: a check under way (one at a time); `again`:
 *   another asked for meanwhile;
 * - `leaving`: an end began (time ran out, an abort, close()): `leave` decides, with the entry
 *   once `join` named it and the check under way, if any, answered (it may renew the entry);
 * - `ended`: the wait's promise is settled.
 */
type WaitState =
  | { readonly phase: "listening"; readonly recheck: boolean }
  | { readonly phase: "joining"; readonly recheck: boolean }
  | {
      readonly phase: "queued";
      readonly entry: string;
      readonly checking: CheckSent | undefined;
      readonly again: CheckKind | undefined;
    }
  | { readonly phase: "leaving"; readonly ending: WaitEnding; readonly entry: string | undefined }
  | { readonly phase: "ended" };

/**
 * One queued `waitForRelease`. Every end but a grant goes through `leave`, which tells whether
 * the key was handed over meanwhile, so a hand-off is never lost nor given to a wait that ended.
 * One timer: at the wait's deadline, or sooner at the holder's expiry (then a check).
 */
export class QueuedWait {
  #state: WaitState = { phase: "listening", recheck: false };
  /** performance.now() time the wait runs out. */
  #deadline = 0;
  /** performance.now() time the holder's hold was last reported to expire. */
  #holderExpiresAt = Number.POSITIVE_INFINITY;
  /** What the timer does when it fires (see #arm). */
  #then: "end" | CheckKind = "end";
  readonly #timer = new Timer(() => this.#timerFired());
  /** Stops listening to the signal (one listener per signal, however many waits share it). */
  #stopListening: (() => void) | undefined;
  #resolve!: (handOff: WaitHandOff | undefined) => void;
  #reject!: (reason: unknown) => void;
  readonly promise: Promise<WaitHandOff | undefined>;

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
    this.#stopListening = onAbort(this.signal, () =>
      this.#end({ mode: "release", reason: this.signal.reason }),
    );
    listening
      .then(() => {
        const state = this.#state;
        // Ended while the listener was still being set up: nothing to queue.
        if (state.phase !== "listening") {
          return undefined;
        }
        this.#state = { phase: "joining", recheck: state.recheck };
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
    const state = this.#state;
    if (state.phase === "listening" || state.phase === "joining") {
      this.#state = { ...state, recheck: true };
    } else if (state.phase === "queued" && state.checking !== undefined) {
      this.#state = { ...state, again: serve || state.again === "serve" ? "serve" : "check" };
    } else if (state.phase === "queued") {
      const checking = { sentAt: performance.now(), serve };
      this.#state = { ...state, checking };
      this.queue.check(state.entry, Math.max(1, this.#left()), serve).then(
        (reply) => this.#checked(reply, checking),
        () => this.#checkFailed(checking),
      );
    }
  }

  /**
   * A message proved to be the release's grant to this wait: once queued, the wait is handed the
   * key without asking; before (a message can outrun `join`'s answer), it checks as for any
   * message. While leaving, `leave` answers for the grant.
   */
  heard(grant: HeardGrant): void {
    const state = this.#state;
    const granted = this.queue.granted;
    if (state.phase === "queued" && granted !== undefined) {
      const { fencingToken, remainingMs } = granted.call(this.queue, grant);
      this.#granted(fencingToken, remainingMs, 0);
    } else {
      this.check();
    }
  }

  /**
   * Ends the wait now: as if its time had run out (the client ended), or, with `reason` (the
   * adapter's close()), as an abort does, failing with `reason` once its entry is left (a key
   * handed to it meanwhile is given back). Resolves once the wait has ended.
   */
  close(reason?: Error): Promise<unknown> {
    this.#end(reason === undefined ? { mode: "keep" } : { mode: "release", reason });
    return this.promise.catch(() => {});
  }

  #left(): number {
    return this.#deadline - performance.now();
  }

  /**
   * The one timer, armed for what it does when it fires: end the wait (its deadline), or check
   * (`serve`: at the holder's expiry, to serve the queue). It acts on that, not on a comparison of
   * clocks: a timer may fire a little before `performance.now()` says its time has come.
   */
  #arm(ms: number, then: "end" | CheckKind): void {
    this.#then = then;
    this.#timer.set(ms);
  }

  #timerFired(): void {
    if (this.#then === "end") {
      this.#end({ mode: "keep" });
    } else {
      this.check(this.#then === "serve");
    }
  }

  /**
   * Checks again at the holder's expiry, to serve the queue, if it comes before the wait's end
   * (`Infinity`: the hold never expires). A reply that names no hold leaves the last expiry
   * known in place: after a restart of a store that keeps nothing, the old holder may be at
   * work until then; past it, the wait serves the queue itself (again after a pause, when the
   * last check, `served`, found nothing to serve).
   */
  #watchHolder(holderLeftMs: number | undefined, served: boolean): void {
    const now = performance.now();
    if (holderLeftMs !== undefined) {
      // A millisecond past the expiry, so the backend sees it expired.
      this.#holderExpiresAt = now + holderLeftMs + 1;
    } else if (this.#holderExpiresAt <= now) {
      const left = this.#left();
      const pause = served ? CHECK_RETRY_MS : 1;
      this.#arm(Math.min(pause, left), pause < left ? "serve" : "end");
      return;
    }
    const untilExpiry = this.#holderExpiresAt - now;
    const left = this.#left();
    this.#arm(Math.max(0, Math.min(untilExpiry, left)), untilExpiry < left ? "serve" : "end");
  }

  #checked(reply: WaitCheck, sent: CheckSent): void {
    const state = this.#state;
    if (state.phase === "leaving") {
      // An end waited for this check: `leave` answers for a grant (and gives it back if aborted).
      this.#leaveWith(reply.state === "queued" ? reply.entry : undefined, state);
      return;
    }
    if (state.phase !== "queued") {
      return;
    }
    if (reply.state === "granted") {
      this.#granted(reply.fencingToken, reply.remainingMs, performance.now() - sent.sentAt);
    } else if (reply.state === "gone") {
      this.#settle(undefined);
    } else {
      this.#state = { phase: "queued", entry: reply.entry, checking: undefined, again: undefined };
      if (state.again === undefined) {
        this.#watchHolder(reply.holderLeftMs, sent.serve);
      } else {
        this.check(state.again === "serve");
      }
    }
  }

  /** Handed the key: its hold had `remainingMs` left `sinceMs` ago (absent: never expires). */
  #granted(fencingToken: number, remainingMs: number | undefined, sinceMs: number): void {
    this.#settle(
      remainingMs === undefined
        ? { acquired: true, fencingToken }
        : {
            acquired: true,
            fencingToken,
            remainingTime: TimeSpan.fromMilliseconds(Math.max(0, remainingMs - sinceMs)),
          },
    );
  }

  #checkFailed(sent: CheckSent): void {
    const state = this.#state;
    if (state.phase === "leaving") {
      this.#leaveWith(undefined, state);
    } else if (state.phase === "queued") {
      // A check asked for meanwhile (`again`) still runs after the next one answers.
      this.#state = { ...state, checking: undefined };
      const left = this.#left();
      const retry = sent.serve ? "serve" : "check";
      this.#arm(Math.min(CHECK_RETRY_MS, left), CHECK_RETRY_MS < left ? retry : "end");
    }
  }

  #joined(reply: number | QueueEntry): void {
    const state = this.#state;
    if (typeof reply === "number") {
      // The key was free: the claim's now (a token), or free to try (0); or the claim owner's
      // own hold, re-taken (a negated token): an abort must not free that, it was held before.
      const ending = state.phase === "leaving" ? state.ending : undefined;
      const fencingToken = Math.abs(reply);
      if (ending?.mode === "release" && reply > 0) {
        this.#giveBack(ending.reason);
      } else if (ending?.mode === "release") {
        this.#fail(ending.reason);
      } else {
        this.#settle(fencingToken > 0 ? { acquired: true, fencingToken } : undefined);
      }
    } else if (state.phase === "leaving") {
      this.#leaveWith(reply.entry, state);
    } else if (state.phase === "joining") {
      this.#state = { phase: "queued", entry: reply.entry, checking: undefined, again: undefined };
      this.#watchHolder(reply.holderLeftMs, false);
      if (state.recheck) {
        this.check();
      }
    }
  }

  #joinFailed(error: unknown): void {
    const state = this.#state;
    this.#fail(
      state.phase === "leaving" && state.ending.mode === "release" ? state.ending.reason : error,
    );
  }

  #end(ending: WaitEnding): void {
    const state = this.#state;
    if (state.phase === "leaving" || state.phase === "ended") {
      return;
    }
    this.#timer.clear();
    this.#stopListening?.();
    if (state.phase === "listening") {
      // Not queued (the listener is not ready): the wait ends here.
      if (ending.mode === "release") {
        this.#fail(ending.reason);
      } else {
        this.#settle(undefined);
      }
    } else if (state.phase === "joining") {
      // `join`'s answer decides.
      this.#state = { phase: "leaving", ending, entry: undefined };
    } else {
      this.#state = { phase: "leaving", ending, entry: state.entry };
      if (state.checking === undefined) {
        this.#leave(state.entry, ending);
      }
    }
  }

  /** Leaves with the entry as last known (`latest`, or the one before) once nothing is under way. */
  #leaveWith(latest: string | undefined, state: Extract<WaitState, { phase: "leaving" }>): void {
    const entry = latest ?? state.entry;
    this.#state = { ...state, entry };
    if (entry !== undefined) {
      this.#leave(entry, state.ending);
    }
  }

  #leave(entry: string, ending: WaitEnding): void {
    this.queue.leave(entry, ending.mode).then(
      (reply) => {
        if (ending.mode === "release") {
          this.#fail(ending.reason);
        } else {
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

  #settle(handOff: WaitHandOff | undefined): void {
    if (this.#toEnded()) {
      this.#resolve(handOff);
    }
  }

  #fail(reason: unknown): void {
    if (this.#toEnded()) {
      this.#reject(reason);
    }
  }

  /** Moves to `ended` and cleans up; `false` when the wait had already ended. */
  #toEnded(): boolean {
    if (this.#state.phase === "ended") {
      return false;
    }
    this.#state = { phase: "ended" };
    this.#timer.clear();
    this.#stopListening?.();
    this.ended(this);
    return true;
  }
}
