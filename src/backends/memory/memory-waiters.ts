// The in-process queue of waits behind the memory adapters (lock, semaphore): per key, its
// waiters oldest first, one timer per queue, and one abort listener per signal. Nothing here
// knows what a waiter claims or is handed: the adapter decides who is served.

import { NEVER_ABORTED } from "../../lifecycle/abort-listeners.js";
import { msUntil } from "../../timers/timers.js";

/**
 * The waiters of one key, oldest first: a linked list, so joining, leaving (timeout, abort) and
 * being served are O(1) and allocate nothing. One timer per queue, not per waiter: it is armed
 * for the earliest deadline, or a hold's expiry if sooner (the waiters are then served, as at
 * a release), and left alone when that waiter leaves early or the holder refreshes (it then
 * fires in vain once, and is re-armed), so a hand-off touches no timer. Dropped from the
 * adapter's map, timer cleared, when it empties.
 */
export class KeyWaiters<TClaim, THandOff> {
  head: Waiter<TClaim, THandOff> | undefined;
  tail: Waiter<TClaim, THandOff> | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** The performance.now() time the timer is armed for. */
  timerAt = Number.POSITIVE_INFINITY;

  constructor(
    readonly key: string,
    readonly queues: Map<string, KeyWaiters<TClaim, THandOff>>,
    /** The timer fired: serve an expired hold, end the waits past their deadline, re-arm. */
    readonly due: (queue: KeyWaiters<TClaim, THandOff>) => void,
  ) {}

  push(waiter: Waiter<TClaim, THandOff>): void {
    waiter.prev = this.tail;
    if (this.tail === undefined) {
      this.head = waiter;
    } else {
      this.tail.next = waiter;
    }
    this.tail = waiter;
    if (waiter.deadline < this.timerAt) {
      this.arm(waiter.deadline);
    }
  }

  remove(waiter: Waiter<TClaim, THandOff>): void {
    if (waiter.prev === undefined) {
      this.head = waiter.next;
    } else {
      waiter.prev.next = waiter.next;
    }
    if (waiter.next === undefined) {
      this.tail = waiter.prev;
    } else {
      waiter.next.prev = waiter.prev;
    }
    waiter.prev = undefined;
    waiter.next = undefined;
    if (this.head === undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      if (this.queues.get(this.key) === this) {
        this.queues.delete(this.key);
      }
    }
  }

  /** Arms the timer for `at` unless it already fires sooner. */
  armBy(at: number): void {
    if (at < this.timerAt) {
      this.arm(at);
    }
  }

  arm(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    // A deadline beyond the timer range is reached by re-arming (the adapter's due callback).
    this.timer = setTimeout(this.due, msUntil(at), this);
  }

  /** Resolves the waiters whose deadline has passed; answers the earliest deadline left. */
  timeOut(now: number): number {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    let next = Number.POSITIVE_INFINITY;
    let waiter = this.head;
    while (waiter !== undefined) {
      const after = waiter.next;
      if (waiter.deadline <= now) {
        waiter.leave();
        waiter.resolve(undefined);
      } else if (waiter.deadline < next) {
        next = waiter.deadline;
      }
      waiter = after;
    }
    return next;
  }
}

/**
 * The waiters that were given one signal, with one abort listener for all of them: callers
 * often share a signal (a process-wide shutdown signal, or a task's run that nothing can
 * abort), and adding and removing an EventTarget listener per wait costs more than the rest of
 * a hand-off. Removed from the signal, and dropped from the adapter's map, when it empties.
 */
export class SignalWatch<TClaim, THandOff> {
  head: Waiter<TClaim, THandOff> | undefined;

  constructor(
    readonly signal: AbortSignal,
    readonly watches: Map<AbortSignal, SignalWatch<TClaim, THandOff>>,
  ) {
    signal.addEventListener("abort", this, { once: true });
  }

  add(waiter: Waiter<TClaim, THandOff>): void {
    waiter.nextOfSignal = this.head;
    if (this.head !== undefined) {
      this.head.prevOfSignal = waiter;
    }
    this.head = waiter;
  }

  remove(waiter: Waiter<TClaim, THandOff>): void {
    if (waiter.prevOfSignal === undefined) {
      this.head = waiter.nextOfSignal;
    } else {
      waiter.prevOfSignal.nextOfSignal = waiter.nextOfSignal;
    }
    if (waiter.nextOfSignal !== undefined) {
      waiter.nextOfSignal.prevOfSignal = waiter.prevOfSignal;
    }
    waiter.prevOfSignal = undefined;
    waiter.nextOfSignal = undefined;
    if (this.head === undefined) {
      this.signal.removeEventListener("abort", this);
      if (this.watches.get(this.signal) === this) {
        this.watches.delete(this.signal);
      }
    }
  }

  /** The signal aborted: every wait on it rejects with its reason. */
  handleEvent(): void {
    while (this.head !== undefined) {
      const waiter = this.head;
      waiter.leave();
      waiter.reject(this.signal.reason);
    }
  }
}

/** One `waitForRelease` call: a link in its key's queue and in its signal's watch. */
export class Waiter<TClaim, THandOff> {
  prev: Waiter<TClaim, THandOff> | undefined;
  next: Waiter<TClaim, THandOff> | undefined;
  prevOfSignal: Waiter<TClaim, THandOff> | undefined;
  nextOfSignal: Waiter<TClaim, THandOff> | undefined;

  constructor(
    readonly queue: KeyWaiters<TClaim, THandOff>,
    readonly watch: SignalWatch<TClaim, THandOff> | undefined,
    readonly claim: TClaim | undefined,
    /** The performance.now() time the wait ends without a release. */
    readonly deadline: number,
    readonly resolve: (handOff: THandOff | undefined) => void,
    readonly reject: (reason: unknown) => void,
  ) {
    queue.push(this);
    watch?.add(this);
  }

  /** Ends the wait (served, timed out or aborted): out of its queue and its signal's watch. */
  leave(): void {
    this.queue.remove(this);
    this.watch?.remove(this);
  }
}

/** The watch of `signal`'s waiters in `watches`; none for a signal nothing can abort. */
export function watchOf<TClaim, THandOff>(
  watches: Map<AbortSignal, SignalWatch<TClaim, THandOff>>,
  signal: AbortSignal,
): SignalWatch<TClaim, THandOff> | undefined {
  if (signal === NEVER_ABORTED) {
    return undefined;
  }
  let watch = watches.get(signal);
  if (watch === undefined) {
    watch = new SignalWatch(signal, watches);
    watches.set(signal, watch);
  }
  return watch;
}

/** The queue of `key` in `queues`, made (with `due` as its timer's callback) when it has none. */
export function queueOf<TClaim, THandOff>(
  queues: Map<string, KeyWaiters<TClaim, THandOff>>,
  key: string,
  due: (queue: KeyWaiters<TClaim, THandOff>) => void,
): KeyWaiters<TClaim, THandOff> {
  let queue = queues.get(key);
  if (queue === undefined) {
    queue = new KeyWaiters(key, queues, due);
    queues.set(key, queue);
  }
  return queue;
}
