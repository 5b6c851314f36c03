// What a provider's primitives (locks, semaphores) tell their listeners, and how a failure of the
// adapter becomes a typed error: one reporter per provider, handed each primitive's public face
// with every report (nothing is made per primitive or per call). A primitive gives its own
// events and error classes through `ReporterSettings`.

import type { BaseEventMap, IEventDispatcher } from "../event-bus/event-bus-contracts.js";
import type { IKey } from "../namespace/namespace.js";
import { publicOwner } from "./owner.js";

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** An event's own data: what the reporter adds (`TAdded`: the face, its key and id, the time) left out. */
export type EventData<
  TMap extends BaseEventMap,
  TName extends keyof TMap,
  TAdded extends PropertyKey,
> = DistributiveOmit<TMap[TName], TAdded>;

/** An answer check (see `lock-adapter-answers.ts`): what the contract expects, as text. */
export type ExpectedAnswer = { readonly expected: string };

/** What a primitive's reporter needs to know of it. */
export type ReporterSettings<TMap extends BaseEventMap, TFace extends { readonly key: IKey }> = {
  /** `"lock"`, `"semaphore"`: named in a dispatch failure's log line. */
  readonly kind: string;
  readonly events: IEventDispatcher<TMap>;
  /** `false` while nobody can hear events (emitting, most of a cycle's CPU, is skipped). */
  readonly isListened: () => boolean;
  /** Named in the errors of answers of the wrong shape. */
  readonly adapter: object;
  /** The whole payload: `data` plus the face and what it says of itself, `key` and `at`. */
  readonly payload: (face: TFace, data: object, key: string, at: Date) => unknown;
  /** The event of a backend failure (`UNEXPECTED_ERROR`). */
  readonly unexpectedError: keyof TMap & string;
  /** The primitive's backend error, and the guard that knows one an adapter threw. */
  readonly backendError: (
    key: string,
    operation: string,
    options: { cause: unknown; hint?: string | undefined },
  ) => Error;
  readonly isBackendError: (error: unknown) => error is Error & { hint: string | undefined };
  /** The primitive's error for an answer of the wrong shape. */
  readonly resultError: (
    key: string,
    adapter: string,
    operation: string,
    returned: unknown,
    expected: string,
  ) => Error;
};

export class Reporter<
  TMap extends BaseEventMap,
  TFace extends { readonly key: IKey },
  TAdded extends PropertyKey,
  TBackendError extends Error = Error,
  TResultError extends Error = Error,
> {
  readonly #settings: ReporterSettings<TMap, TFace>;
  readonly #isListened: () => boolean;

  constructor(settings: ReporterSettings<TMap, TFace>) {
    this.#settings = settings;
    this.#isListened = settings.isListened;
  }

  /** Whether anyone can hear events: callers check it before building an event's data. */
  isListened(): boolean {
    return this.#isListened();
  }

  /**
   * Dispatches in a microtask queued as the operation completes: in-process listeners have
   * heard the event when the caller's `await` resumes, yet run outside the adapter's callback
   * (a listener using the primitive finds its state settled). The bus isolates listener
   * failures and does not wait for async ones; the transport keeps the order of dispatches.
   */
  emit<TName extends keyof TMap & string>(
    face: TFace,
    event: TName,
    data: EventData<TMap, TName, TAdded>,
  ): void {
    if (!this.#isListened()) {
      return;
    }
    const key = face.key.get();
    const payload = this.#settings.payload(face, data as object, key, new Date()) as TMap[TName];
    const { events, kind } = this.#settings;
    queueMicrotask(() => {
      let dispatched: Promise<void>;
      try {
        dispatched = events.dispatch(event, payload);
      } catch (error) {
        dispatched = Promise.reject(error);
      }
      dispatched.catch((error: unknown) => {
        console.error(`[hasp] the ${kind} event ${event} of "${key}" was not dispatched:`, error);
      });
    });
  }

  /** A failure of the adapter: reported as UNEXPECTED_ERROR, returned as the backend error. */
  backendError(face: TFace, operation: string, error: unknown): TBackendError {
    const settings = this.#settings;
    const event = settings.unexpectedError;
    // An adapter's own backend error (a failure it explains): its cause and hint, our key.
    if (!settings.isBackendError(error)) {
      this.#emitAny(face, event, { operation, error });
      return settings.backendError(face.key.get(), operation, {
        cause: error,
      }) as TBackendError;
    }
    const { cause, hint } = error;
    const rekeyed = settings.backendError(face.key.get(), operation, { cause, hint });
    // Its hint (what to do) is the news: listeners get the whole error, not only its cause.
    this.#emitAny(face, event, { operation, error: rekeyed });
    return rekeyed as TBackendError;
  }

  /**
   * An answer of the adapter's `operation` that does not have the shape `answer` expects:
   * reported as UNEXPECTED_ERROR, returned as the primitive's result error.
   */
  wrongAnswer(
    face: TFace,
    operation: string,
    answer: ExpectedAnswer,
    value: unknown,
  ): TResultError {
    const said = value as { owner?: unknown } | null | undefined;
    // An owner read from the store is a credential: the error and its event show its public id.
    const shown =
      typeof said?.owner === "string" ? { ...said, owner: publicOwner(said.owner) } : value;
    const settings = this.#settings;
    const error = settings.resultError(
      face.key.get(),
      (settings.adapter as { constructor?: { name?: string } }).constructor?.name || "Object",
      operation,
      shown,
      answer.expected,
    );
    this.#emitAny(face, settings.unexpectedError, { operation, error });
    return error as TResultError;
  }

  #emitAny(face: TFace, event: keyof TMap & string, data: object): void {
    this.emit(face, event, data as EventData<TMap, typeof event, TAdded>);
  }
}
