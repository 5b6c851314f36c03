// One holder's slot of one key, behind a `Semaphore`: what it knows of the slot (its fencing
// token and when it may end), the adapter calls that change it, and the reports of what they
// did. Shaped as `LockHold` is: the blocking loop and the keep-alive work on it through
// `BlockingAcquirer` and `KeptHold`, with no closure per call or per run.

import type { IKey } from "../namespace/namespace.js";
import { mayHaveAcquired } from "../primitive/adapter-answers.js";
import {
  acquireBlocking,
  type BlockingAcquirer,
  handOffStart,
} from "../primitive/blocking-acquire.js";
import { callAdapter } from "../primitive/call-adapter.js";
import { holdEnd, type KeptHold } from "../primitive/keep-alive.js";
import { retryRelease } from "../primitive/retry-release.js";
import type { TimeoutError } from "../resilience/resilience-errors.js";
import { TimeSpan } from "../time-span/time-span.js";
import type { ISemaphore, SemaphoreBlockingSettings } from "./contracts/semaphore.js";
import type {
  ISemaphoreAdapter,
  SemaphoreAcquireResult,
  SemaphoreAdapterState,
  SemaphoreWaitClaim,
  SemaphoreWaitResult,
} from "./contracts/semaphore-adapter.js";
import { SemaphoreSlotLostError } from "./contracts/semaphore-errors.js";
import { SEMAPHORE_EVENTS, type SemaphoreEventName } from "./contracts/semaphore-events.js";
import { type ISemaphoreState, SEMAPHORE_STATE } from "./contracts/semaphore-state.js";
import {
  SEMAPHORE_ANSWERS,
  type SemaphoreAnswer,
  type SemaphoreAnswerOf,
} from "./semaphore-adapter-answers.js";
import type { SemaphoreContext } from "./semaphore-context.js";
import type { SemaphoreEventData } from "./semaphore-reporter.js";

const ignore = () => {};

/** A blocking acquire given up at its cut-off, with a backend call unanswered. */
type CutShortResult = {
  acquired: false;
  /** As the last refusal said; `undefined` when no answer came. */
  limit: number | undefined;
  acquiredSlotsCount: number | undefined;
  remainingTime: TimeSpan | null;
  /** The time (and its slack) that ran out. */
  cause: TimeoutError;
};

export type SemaphoreBlockingResult = SemaphoreAcquireResult | CutShortResult;

type WaitForRelease = NonNullable<ISemaphoreAdapter["waitForRelease"]>;

type Refused = Extract<SemaphoreAcquireResult, { acquired: false }>;

/** What a semaphore is: its face, provider, key, credentials, limit and TTL. */
export type SemaphoreIdentity = {
  readonly face: ISemaphore;
  readonly context: SemaphoreContext;
  readonly key: IKey;
  /** What the adapter stores as the holder: the id and the proof of a generated slot. */
  readonly owner: string;
  /** The public id: what events and errors show of this holder. */
  readonly id: string;
  readonly limit: number;
  readonly ttl: TimeSpan | null;
};

export class SemaphoreHold
  implements KeptHold, BlockingAcquirer<SemaphoreAcquireResult, SemaphoreWaitClaim, CutShortResult>
{
  readonly #face: ISemaphore;
  readonly #context: SemaphoreContext;
  readonly #key: IKey;
  readonly #id: string;
  readonly #owner: string;
  readonly #limit: number;
  readonly #ttl: TimeSpan | null;
  #fencingToken: number | null = null;
  /** performance.now() time by which this slot may have ended (see `holdEnd`). */
  #expiresAt: number | null = null;
  /**
   * Work of this holder that nobody awaits any more (a run's failed release tried again, a late
   * answer to a call given up on, released again): acquires wait for it, so that a late release
   * cannot free a newer slot. Never rejects.
   */
  #unsettled: Promise<void> | undefined;

  constructor(identity: SemaphoreIdentity) {
    this.#face = identity.face;
    this.#context = identity.context;
    this.#key = identity.key;
    this.#id = identity.id;
    this.#owner = identity.owner;
    this.#limit = identity.limit;
    this.#ttl = identity.ttl;
  }

  get context(): SemaphoreContext {
    return this.#context;
  }

  get key(): IKey {
    return this.#key;
  }

  get id(): string {
    return this.#id;
  }

  /** The credential: for the semaphore's serialization only. */
  get owner(): string {
    return this.#owner;
  }

  get limit(): number {
    return this.#limit;
  }

  get ttl(): TimeSpan | null {
    return this.#ttl;
  }

  get fencingToken(): number | null {
    return this.#fencingToken;
  }

  /** One acquire request, whose result goes through `settle`. */
  tryAcquire<TResult>(
    signal: AbortSignal,
    settle: (result: SemaphoreAcquireResult) => TResult,
  ): Promise<TResult> {
    if (this.#unsettled !== undefined) {
      return this.#unsettled.then(() => this.tryAcquire(signal, settle));
    }
    const requestedAt = performance.now();
    return this.#call(
      "acquire",
      SEMAPHORE_ANSWERS.acquire,
      (adapter, key) => adapter.acquire(key, this.#owner, this.#limit, this.#ttl),
      (result) => settle(this.#took(result, requestedAt, signal)),
    );
  }

  acquireBlocking(
    settings: Readonly<SemaphoreBlockingSettings>,
    signal: AbortSignal,
  ): Promise<SemaphoreBlockingResult> {
    return acquireBlocking(this, this.#context, settings, signal);
  }

  release(): Promise<boolean> {
    return this.#call(
      "release",
      SEMAPHORE_ANSWERS.boolean,
      (adapter, key) => adapter.release(key, this.#owner),
      (released) => this.#released(released),
    );
  }

  /** Sends a release and hands back the adapter's own promise (a run awaits it directly). */
  sendRelease(): Promise<unknown> {
    return this.#context.adapter.release(this.#key.toString(), this.#owner);
  }

  /** What a run's release answered: recorded and told, or reported when of the wrong shape. */
  runReleased(answer: unknown): void {
    if (SEMAPHORE_ANSWERS.boolean.fits(answer)) {
      this.#released(answer);
    } else {
      this.#context.reporter.wrongAnswer(this.#face, "release", SEMAPHORE_ANSWERS.boolean, answer);
    }
  }

  #released(released: boolean): boolean {
    if (released) {
      this.#forgetSlot();
    }
    if (this.#context.reporter.isListened()) {
      this.#emit(released ? SEMAPHORE_EVENTS.RELEASED : SEMAPHORE_EVENTS.FAILED_RELEASE, {});
    }
    return released;
  }

  /** A run's release failed: reported, and tried again in the background. */
  releaseFailed(error: unknown): void {
    this.#context.reporter.backendError(this.#face, "release", error);
    this.retryRelease();
  }

  forceReleaseAll(): Promise<boolean> {
    return this.#call(
      "forceReleaseAll",
      SEMAPHORE_ANSWERS.boolean,
      (adapter, key) => adapter.forceReleaseAll(key),
      (hasReleased) => {
        this.#forgetSlot();
        this.#emit(SEMAPHORE_EVENTS.ALL_FORCE_RELEASED, { hasReleased });
        return hasReleased;
      },
    );
  }

  /** Refreshes for `ttl`, else the provider's refresh time, else the semaphore's own TTL. */
  refreshFor(ttl: TimeSpan | undefined): Promise<boolean> {
    const newTtl = ttl ?? this.#context.refreshTime ?? this.#ttl;
    if (this.#ttl === null || newTtl === null) {
      this.#emit(SEMAPHORE_EVENTS.FAILED_REFRESH, {});
      return Promise.resolve(false);
    }
    const requestedAt = performance.now();
    return this.#call(
      "refresh",
      SEMAPHORE_ANSWERS.boolean,
      (adapter, key) => adapter.refresh(key, this.#owner, newTtl),
      (refreshed) => {
        if (refreshed) {
          this.#expiresAt = holdEnd(requestedAt, newTtl);
          this.#emit(SEMAPHORE_EVENTS.REFRESHED, { ttl: newTtl });
        } else {
          this.#emit(SEMAPHORE_EVENTS.FAILED_REFRESH, {});
        }
        return refreshed;
      },
    );
  }

  getState(): Promise<ISemaphoreState> {
    return this.#call(
      "getState",
      SEMAPHORE_ANSWERS.getState,
      (adapter, key) => adapter.getState(key, this.#owner),
      (state) => this.#stateOf(state),
    );
  }

  /** The adapter's state as this semaphore sees it: the limit in force is the smaller one. */
  #stateOf(state: SemaphoreAdapterState | null): ISemaphoreState {
    if (state === null) {
      return { type: SEMAPHORE_STATE.EXPIRED };
    }
    const limit = Math.min(this.#limit, state.limit);
    const { acquiredSlotsCount, slot } = state;
    const freeSlotsCount = Math.max(0, limit - acquiredSlotsCount);
    if (slot !== null) {
      // The store's word: a revived semaphore learns its slot's token here.
      this.#fencingToken = slot.fencingToken;
      return {
        type: SEMAPHORE_STATE.ACQUIRED,
        limit,
        remainingTime: slot.remainingTime,
        fencingToken: slot.fencingToken,
        freeSlotsCount,
        acquiredSlotsCount,
      };
    }
    return freeSlotsCount === 0
      ? { type: SEMAPHORE_STATE.LIMIT_REACHED, limit, acquiredSlotsCount }
      : { type: SEMAPHORE_STATE.UNACQUIRED, limit, freeSlotsCount, acquiredSlotsCount };
  }

  /**
   * A run's release failed: tried again a few times in the background (see `LockHold`); the
   * next acquire waits for the tries.
   */
  retryRelease(): void {
    const token = this.#fencingToken;
    const retry = retryRelease(
      () => this.#fencingToken === token && this.expiresAt() > performance.now(),
      () => this.#sendReleaseSafely(),
      () => this.#released(true),
    );
    this.#waitFor(retry);
  }

  // KeptHold: what a run's keep-alive asks.

  expiresAt(): number {
    return this.#expiresAt ?? Number.POSITIVE_INFINITY;
  }

  renew(): Promise<boolean> {
    return this.refreshFor(this.#ttl ?? undefined);
  }

  lostError(): Error {
    return new SemaphoreSlotLostError(this.#key.get(), this.#id);
  }

  // BlockingAcquirer: the steps of a blocking acquire.

  unsettled(): Promise<void> | undefined {
    return this.#unsettled;
  }

  sendAcquire(): Promise<unknown> {
    return this.#context.adapter.acquire(this.#key.toString(), this.#owner, this.#limit, this.#ttl);
  }

  took(answer: unknown, requestedAt: number, signal: AbortSignal): SemaphoreAcquireResult {
    return this.#took(
      this.#checked("acquire", SEMAPHORE_ANSWERS.acquire, answer),
      requestedAt,
      signal,
    );
  }

  claim(): SemaphoreWaitClaim {
    return { slotId: this.#owner, limit: this.#limit, ttl: this.#ttl };
  }

  sendWait(ms: number, signal: AbortSignal, claim: SemaphoreWaitClaim): Promise<unknown> {
    const { adapter } = this.#context;
    const wait = adapter.waitForRelease as WaitForRelease;
    return wait.call(adapter, this.#key.toString(), TimeSpan.fromMilliseconds(ms), signal, claim);
  }

  handedOver(
    answer: unknown,
    waitedFrom: number,
    signal: AbortSignal,
  ): SemaphoreAcquireResult | undefined {
    const handOff = this.#checked("waitForRelease", SEMAPHORE_ANSWERS.waitForRelease, answer);
    if (handOff?.acquired !== true) {
      return undefined;
    }
    return this.#took(handOff, handOffStart(waitedFrom, handOff.remainingTime, this.#ttl), signal);
  }

  backendError(operation: string, error: unknown): Error {
    return this.#context.reporter.backendError(this.#face, operation, error);
  }

  /** A backend call given up on: a slot it grants late is released again (see `LockHold`). */
  abandon(pending: Promise<unknown>): void {
    this.#waitFor(
      (pending as Promise<SemaphoreAcquireResult | SemaphoreWaitResult>)
        .then((result) => {
          // This holder's own live slot, taken again, is kept (the TTL restarted).
          if (result?.acquired === true && result.fencingToken !== this.#fencingToken) {
            return this.#sendReleaseSafely();
          }
          return undefined;
        })
        .then(ignore, ignore),
    );
  }

  cutShort(operation: string, refused: Refused | undefined, cause: TimeoutError): CutShortResult {
    this.#emit(SEMAPHORE_EVENTS.UNEXPECTED_ERROR, { operation, error: cause });
    return refused === undefined
      ? {
          acquired: false,
          limit: undefined,
          acquiredSlotsCount: undefined,
          remainingTime: null,
          cause,
        }
      : { ...refused, cause };
  }

  /**
   * Records what the adapter answered to a request made at `requestedAt`. A slot granted after
   * the caller gave up is released again, and the caller gets the signal's reason.
   */
  #took<TResult extends SemaphoreAcquireResult>(
    result: TResult,
    requestedAt: number,
    signal: AbortSignal,
  ): TResult {
    if (result.acquired) {
      const isNewSlot = result.fencingToken !== this.#fencingToken;
      if (signal.aborted && isNewSlot) {
        this.#letGo();
        throw signal.reason;
      }
      this.#fencingToken = result.fencingToken;
      this.#expiresAt = this.#ttl === null ? null : holdEnd(requestedAt, this.#ttl);
    }
    return result;
  }

  #forgetSlot(): void {
    this.#fencingToken = null;
    this.#expiresAt = null;
  }

  /** Makes acquires wait for `work` too (see #unsettled); `work` never rejects. */
  #waitFor(work: Promise<void>): void {
    const before = this.#unsettled;
    const all = before === undefined ? work : Promise.all([before, work]).then(ignore);
    this.#unsettled = all;
    void all.then(() => {
      if (this.#unsettled === all) {
        this.#unsettled = undefined;
      }
    });
  }

  /** Lets go of a slot nobody wants, in the background; the next acquire waits for it. */
  #letGo(): void {
    this.#waitFor(this.#sendReleaseSafely().then(ignore, ignore));
  }

  #sendReleaseSafely(): Promise<boolean> {
    return callAdapter(this.#context.adapter, this.#key.toString(), (adapter, key) =>
      adapter.release(key, this.#owner),
    );
  }

  /**
   * Calls the adapter and hands its answer to `settle`; a failure of the adapter (not of
   * `settle`) becomes UNEXPECTED_ERROR plus a SemaphoreBackendError.
   */
  #call<TAnswer extends SemaphoreAnswer, TResult>(
    operation: string,
    answer: TAnswer,
    fn: (adapter: ISemaphoreAdapter, key: string) => Promise<SemaphoreAnswerOf<TAnswer>>,
    settle: (value: SemaphoreAnswerOf<TAnswer>) => TResult,
  ): Promise<TResult> {
    return callAdapter(this.#context.adapter, this.#key.toString(), fn).then(
      (value) => settle(this.#checked(operation, answer, value)),
      (error: unknown) => {
        throw this.backendError(operation, error);
      },
    );
  }

  /** `value` when it has the shape `answer` expects; else reported and thrown. */
  #checked<TAnswer extends SemaphoreAnswer>(
    operation: string,
    answer: TAnswer,
    value: unknown,
  ): SemaphoreAnswerOf<TAnswer> {
    if (answer.fits(value)) {
      return value as SemaphoreAnswerOf<TAnswer>;
    }
    if (mayHaveAcquired(operation, value)) {
      // The adapter may have taken a slot for this holder: let it go.
      this.#letGo();
    }
    throw this.#context.reporter.wrongAnswer(this.#face, operation, answer, value);
  }

  #emit<TName extends SemaphoreEventName>(event: TName, data: SemaphoreEventData<TName>): void {
    this.#context.reporter.emit(this.#face, event, data);
  }
}
