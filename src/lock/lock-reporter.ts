// What a provider's locks tell their listeners, and how a failure of the adapter becomes a typed
// error: one reporter per provider, handed each lock's public face with every report (nothing is
// made per lock or per call).

import type { IEventDispatcher } from "../event-bus/event-bus-contracts.js";
import { publicOwner } from "../primitive/owner.js";
import type { ILock } from "./contracts/lock.js";
import {
  isLockBackendError,
  LockAdapterResultError,
  LockBackendError,
} from "./contracts/lock-errors.js";
import { LOCK_EVENTS, type LockEventMap, type LockEventName } from "./contracts/lock-events.js";
import type { Answer } from "./lock-adapter-answers.js";

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** An event's own data: what the reporter adds (the lock, its key and id, the time) left out. */
export type LockEventData<TName extends LockEventName> = DistributiveOmit<
  LockEventMap[TName],
  "lock" | "key" | "lockId" | "at"
>;

export class LockReporter {
  readonly #events: IEventDispatcher<LockEventMap>;
  readonly #isListened: () => boolean;
  /** Named in the errors of answers of the wrong shape. */
  readonly #adapter: object;

  /** `isListened`: `false` while nobody can hear events (emitting, most of a cycle's CPU, is skipped). */
  constructor(events: IEventDispatcher<LockEventMap>, isListened: () => boolean, adapter: object) {
    this.#events = events;
    this.#isListened = isListened;
    this.#adapter = adapter;
  }

  /** Whether anyone can hear events: callers check it before building an event's data. */
  isListened(): boolean {
    return this.#isListened();
  }

  /**
   * Dispatches in a microtask queued as the operation completes: in-process listeners have
   * heard the event when the caller's `await` resumes, yet run outside the adapter's callback
   * (a listener using the lock finds its state settled). The bus isolates listener failures and
   * does not wait for async ones; the transport keeps the order of dispatches.
   */
  emit<TName extends LockEventName>(lock: ILock, event: TName, data: LockEventData<TName>): void {
    if (!this.#isListened()) {
      return;
    }
    const key = lock.key.get();
    const payload = {
      ...data,
      lock,
      key,
      lockId: lock.id,
      at: new Date(),
    } as unknown as LockEventMap[TName];
    queueMicrotask(() => {
      let dispatched: Promise<void>;
      try {
        dispatched = this.#events.dispatch(event, payload);
      } catch (error) {
        dispatched = Promise.reject(error);
      }
      dispatched.catch((error: unknown) => {
        console.error(`[hasp] the lock event ${event} of "${key}" was not dispatched:`, error);
      });
    });
  }

  /** A failure of the adapter: reported as UNEXPECTED_ERROR, returned as a LockBackendError. */
  backendError(lock: ILock, operation: string, error: unknown): LockBackendError {
    // An adapter's own LockBackendError (a failure it explains): its cause and hint, our key.
    if (!isLockBackendError(error)) {
      this.emit(lock, LOCK_EVENTS.UNEXPECTED_ERROR, { operation, error });
      return new LockBackendError(lock.key.get(), operation, { cause: error });
    }
    const { cause, hint } = error;
    const rekeyed = new LockBackendError(lock.key.get(), operation, { cause, hint });
    // Its hint (what to do) is the news: listeners get the whole error, not only its cause.
    this.emit(lock, LOCK_EVENTS.UNEXPECTED_ERROR, { operation, error: rekeyed });
    return rekeyed;
  }

  /**
   * An answer of the adapter's `operation` that does not have the shape `answer` expects:
   * reported as UNEXPECTED_ERROR, returned as a LockAdapterResultError.
   */
  wrongAnswer(
    lock: ILock,
    operation: string,
    answer: Answer,
    value: unknown,
  ): LockAdapterResultError {
    const said = value as { owner?: unknown } | null | undefined;
    // An owner read from the store is a credential: the error and its event show its public id.
    const shown =
      typeof said?.owner === "string" ? { ...said, owner: publicOwner(said.owner) } : value;
    const error = new LockAdapterResultError(
      lock.key.get(),
      (this.#adapter as { constructor?: { name?: string } }).constructor?.name || "Object",
      operation,
      shown,
      answer.expected,
    );
    this.emit(lock, LOCK_EVENTS.UNEXPECTED_ERROR, { operation, error });
    return error;
  }
}
