// One 'abort' listener per signal, however many of hasp's operations wait on it. Callers share
// signals (a process-wide shutdown signal, one controller for a batch of tasks), and Node warns
// (MaxListenersExceededWarning) from the eleventh listener an EventTarget holds: an application
// running fifty tasks on one signal must not see that, nor have to raise the limit itself.

import { setMaxListeners } from "node:events";

/**
 * The signal of runs nobody can abort: listening to it is skipped. Listeners other code adds to
 * it (one per wait) can never fire, so it has no listener limit.
 */
export const NEVER_ABORTED: AbortSignal = new AbortController().signal;
setMaxListeners(0, NEVER_ABORTED);

/** One registration (an object, so that one function registered twice is called twice). */
type Registration = { readonly listener: () => void };

/** The listeners of one signal, behind the one listener it holds. */
class AbortWatch {
  readonly #registrations = new Set<Registration>();

  constructor(readonly signal: AbortSignal) {
    signal.addEventListener("abort", this, { once: true });
  }

  add(registration: Registration): void {
    this.#registrations.add(registration);
  }

  remove(registration: Registration): void {
    this.#registrations.delete(registration);
    if (this.#registrations.size === 0) {
      this.signal.removeEventListener("abort", this);
      if (watches.get(this.signal) === this) {
        watches.delete(this.signal);
      }
    }
  }

  handleEvent(): void {
    watches.delete(this.signal);
    const registrations = [...this.#registrations];
    this.#registrations.clear();
    for (const { listener } of registrations) {
      listener();
    }
  }
}

const watches = new WeakMap<AbortSignal, AbortWatch>();

const nothingToRemove = () => {};

/**
 * Calls `listener` once when `signal` aborts, and returns the function that removes it (call it
 * when the operation ends first). Every listener of one signal shares one `'abort'` listener on
 * it, removed with the last of them, so a signal shared by many operations never holds more
 * than one of hasp's. Nothing is registered on a signal already aborted (check it first), nor on
 * {@link NEVER_ABORTED}. `listener` must not throw.
 */
export function onAbort(signal: AbortSignal, listener: () => void): () => void {
  if (signal === NEVER_ABORTED || signal.aborted) {
    return nothingToRemove;
  }
  let watch = watches.get(signal);
  if (watch === undefined) {
    watch = new AbortWatch(signal);
    watches.set(signal, watch);
  }
  const registration: Registration = { listener };
  watch.add(registration);
  const current = watch;
  return () => current.remove(registration);
}
