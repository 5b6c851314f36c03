// Things due a fixed delay after they start (a run's next refresh, a blocking acquire's
// cut-off), many at once, on few Node timers. Entries with the same delay fall due in the order
// they joined, so each delay has a FIFO queue and one timer, armed for its head. An entry that
// leaves early (most do: the run ends, the acquire is answered) is unlinked; the timer is not
// touched, fires in vain at most once and is re-armed for the new head. So an entry costs no
// timer at all, where a setTimeout and clearTimeout each cost more than an in-process hold.

import { msUntil } from "./timers.js";

/** What waits in a DueQueue: linked in place, so joining and leaving allocate nothing. */
export type DueEntry = {
  /** The performance.now() time it falls due; set by `DueQueue.join`. */
  dueAt: number;
  /** The queue it is in; `undefined` once it left or fell due. */
  dueQueue: DueQueue | undefined;
  prevDue: DueEntry | undefined;
  nextDue: DueEntry | undefined;
  /** Called when it falls due, out of its queue by then. Must not throw. */
  due(): void;
};

/**
 * Empty queues kept (with their timer, unref'd) for the next entry of their delay: past this
 * many, a queue that empties is dropped at once, so that delays used once (a blocking time
 * computed per call) leave nothing behind.
 */
const MAX_IDLE_QUEUES = 8;

/** The queues of the process, by delay. */
const queues = new Map<number, DueQueue>();
let idleQueues = 0;

/** The entries due `delay` ms after they joined, oldest first. */
export class DueQueue {
  head: DueEntry | undefined;
  tail: DueEntry | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  /**
   * The `setTimeout` the timer came from, and which arming it was: a lingering timer is only
   * relied on in the timer world that made it (fake timers in tests swap `setTimeout`), and a
   * timer left behind in another world is ignored when it fires.
   */
  armedWith: typeof setTimeout | undefined;
  armings = 0;

  private constructor(readonly delay: number) {}

  /** How many queues there are (with entries, or idle): for tests of leaks. */
  static get size(): number {
    return queues.size;
  }

  /** `entry` falls due `delay` ms after `now` (performance.now()), unless it leaves first. */
  static join(entry: DueEntry, delay: number, now = performance.now()): void {
    let queue = queues.get(delay);
    if (queue === undefined) {
      queue = new DueQueue(delay);
      queues.set(delay, queue);
    } else if (queue.head === undefined) {
      idleQueues -= 1;
    }
    entry.dueAt = now + delay;
    entry.dueQueue = queue;
    entry.prevDue = queue.tail;
    entry.nextDue = undefined;
    if (queue.tail === undefined) {
      queue.head = entry;
    } else {
      queue.tail.nextDue = entry;
    }
    queue.tail = entry;
    if (queue.timer === undefined || queue.armedWith !== setTimeout) {
      queue.#arm(entry.dueAt);
    } else if (queue.head === entry) {
      queue.timer.ref();
    }
  }

  /** Takes `entry` out of its queue, if it is in one. */
  static leave(entry: DueEntry): void {
    const queue = entry.dueQueue;
    if (queue !== undefined) {
      queue.#remove(entry);
    }
  }

  #remove(entry: DueEntry): void {
    if (entry.prevDue === undefined) {
      this.head = entry.nextDue;
    } else {
      entry.prevDue.nextDue = entry.nextDue;
    }
    if (entry.nextDue === undefined) {
      this.tail = entry.prevDue;
    } else {
      entry.nextDue.prevDue = entry.prevDue;
    }
    entry.prevDue = undefined;
    entry.nextDue = undefined;
    entry.dueQueue = undefined;
    if (this.head === undefined) {
      this.#idle();
    }
  }

  /** Emptied: its timer no longer keeps the process alive; kept for the next entry, or dropped. */
  #idle(): void {
    if (idleQueues < MAX_IDLE_QUEUES) {
      idleQueues += 1;
      this.timer?.unref();
      return;
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    this.#drop();
  }

  #drop(): void {
    if (queues.get(this.delay) === this) {
      queues.delete(this.delay);
    }
  }

  #arm(at: number): void {
    this.armings += 1;
    this.armedWith = setTimeout;
    this.timer = setTimeout(DueQueue.#fire, msUntil(at), this, this.armings);
  }

  /** The timer fired: calls what is due, and re-arms for the next, or drops the empty queue. */
  static #fire(queue: DueQueue, arming: number): void {
    if (arming !== queue.armings) {
      return;
    }
    queue.timer = undefined;
    const now = performance.now();
    let entry = queue.head;
    while (entry !== undefined && entry.dueAt <= now) {
      queue.#remove(entry);
      entry.due();
      entry = queue.head;
    }
    if (entry !== undefined) {
      // Unless an entry that fell due joined again (and armed it).
      if (queue.timer === undefined) {
        queue.#arm(entry.dueAt);
      }
    } else if (queues.get(queue.delay) === queue) {
      // Idle since its last entry left (counted then), and now dropped.
      idleQueues -= 1;
      queue.#drop();
    }
  }
}
