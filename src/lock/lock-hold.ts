// One owner's hold on one key, behind a `Lock`: what it knows of the hold (its fencing token and
// when it may end), the adapter calls that change it, and the reports of what they did. A
// `Lock` is its public face; the blocking loop and the keep-alive work on it through
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
import { publicOwner } from "../primitive/owner.js";
import { retryRelease } from "../primitive/retry-release.js";
import type { TimeoutError } from "../resilience/resilience-errors.js";
import { TimeSpan } from "../time-span/time-span.js";
import type { ILock, LockBlockingSettings } from "./contracts/lock.js";
import type {
  ILockAdapter,
  LockAcquireResult,
  LockWaitClaim,
  LockWaitResult,
} from "./contracts/lock-adapter.js";
import { LockLostError } from "./contracts/lock-errors.js";
import { LOCK_EVENTS, type LockEventName } from "./contracts/lock-events.js";
import { type ILockState, LOCK_STATE } from "./contracts/lock-state.js";
import { ANSWERS, type Answer, type AnswerOf } from "./lock-adapter-answers.js";
import type { LockContext } from "./lock-context.js";
import type { LockEventData } from "./lock-reporter.js";

const ignore = () => {};

/** A blocking acquire given up at its cut-off, with a backend call unanswered. */
type CutShortResult = {
  acquired: false;
  /** The holder the last answer named; `undefined` when no answer named one. */
  owner: string | undefined;
  /** As that answer said. */
  remainingTime: TimeSpan | null;
  /** The time (and its slack) that ran out. */
  cause: TimeoutError;
};

export type BlockingAcquireResult = LockAcquireResult | CutShortResult;

type WaitForRelease = NonNullable<ILockAdapter["waitForRelease"]>;

type Refused = Extract<LockAcquireResult, { acquired: false }>;

export class LockHold
  implements KeptHold, BlockingAcquirer<LockAcquireResult, LockWaitClaim, CutShortResult>
{
  /** The public face: what events carry. */
  readonly #lock: ILock;
  readonly #context: LockContext;
  readonly #key: IKey;
  /** The public id: what getState, events and errors show of this owner. */
  readonly #id: string;
  /** What the adapter stores as the owner: the id and the proof of a generated lock. */
  readonly #owner: string;
  readonly #ttl: TimeSpan | null;
  #fencingToken: number | null = null;
  /**
   * performance.now() time by which this hold may have ended: from before the request, less the
   * drift margin (see `CLOCK_DRIFT_FACTOR` in keep-alive.ts).
   */
  #expiresAt: number | null = null;
  /**
   * Work of this owner that nobody awaits any more (a run's failed release tried again, a late
   * answer to a call given up on, released again): acquires wait for it, so that a late release
   * cannot free a newer hold. Never rejects.
   */
  #unsettled: Promise<void> | undefined;

  constructor(
    lock: ILock,
    context: LockContext,
    key: IKey,
    owner: string,
    ttl: TimeSpan | null,
    id: string,
  ) {
    this.#lock = lock;
    this.#context = context;
    this.#key = key;
    this.#id = id;
    this.#owner = owner;
    this.#ttl = ttl;
  }

  get context(): LockContext {
    return this.#context;
  }

  get key(): IKey {
    return this.#key;
  }

  get id(): string {
    return this.#id;
  }

  /** The credential: for the lock's serialization only. */
  get owner(): string {
    return this.#owner;
  }

  get ttl(): TimeSpan | null {
    return this.#ttl;
  }

  get fencingToken(): number | null {
    return this.#fencingToken;
  }

  /**
   * One acquire request, whose result goes through `settle` (in the same step: no promise of
   * its own). A hold granted after the caller gave up is released again.
   */
  tryAcquire<TResult>(
    signal: AbortSignal,
    settle: (result: LockAcquireResult) => TResult,
  ): Promise<TResult> {
    if (this.#unsettled !== undefined) {
      return this.#unsettled.then(() => this.tryAcquire(signal, settle));
    }
    const requestedAt = performance.now();
    return this.#call(
      "acquire",
      ANSWERS.acquire,
      (adapter, key) => adapter.acquire(key, this.#owner, this.#ttl),
      (result) => settle(this.#took(result, requestedAt, signal)),
    );
  }

  acquireBlocking(
    settings: Readonly<LockBlockingSettings>,
    signal: AbortSignal,
  ): Promise<BlockingAcquireResult> {
    return acquireBlocking(this, this.#context, settings, signal);
  }

  release(): Promise<boolean> {
    return this.#call(
      "release",
      ANSWERS.boolean,
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
    if (ANSWERS.boolean.fits(answer)) {
      this.#released(answer);
    } else {
      this.#context.reporter.wrongAnswer(this.#lock, "release", ANSWERS.boolean, answer);
    }
  }

  #released(released: boolean): boolean {
    if (released) {
      this.#forgetHold();
    }
    // Checked here too, so that no event data is even built while nobody listens.
    if (this.#context.reporter.isListened()) {
      this.#emit(released ? LOCK_EVENTS.RELEASED : LOCK_EVENTS.FAILED_RELEASE, {});
    }
    return released;
  }

  /** A run's release failed: reported, and tried again in the background. */
  releaseFailed(error: unknown): void {
    this.#context.reporter.backendError(this.#lock, "release", error);
    this.retryRelease();
  }

  forceRelease(): Promise<boolean> {
    return this.#call(
      "forceRelease",
      ANSWERS.boolean,
      (adapter, key) => adapter.forceRelease(key),
      (hasReleased) => {
        this.#forgetHold();
        this.#emit(LOCK_EVENTS.FORCE_RELEASED, { hasReleased });
        return hasReleased;
      },
    );
  }

  /** Refreshes for `ttl`, else the provider's refresh time, else the lock's own TTL. */
  refreshFor(ttl: TimeSpan | undefined): Promise<boolean> {
    const newTtl = ttl ?? this.#context.refreshTime ?? this.#ttl;
    if (this.#ttl === null || newTtl === null) {
      this.#emit(LOCK_EVENTS.FAILED_REFRESH, {});
      return Promise.resolve(false);
    }
    const requestedAt = performance.now();
    return this.#call(
      "refresh",
      ANSWERS.boolean,
      (adapter, key) => adapter.refresh(key, this.#owner, newTtl),
      (refreshed) => {
        if (refreshed) {
          this.#expiresAt = holdEnd(requestedAt, newTtl);
          this.#emit(LOCK_EVENTS.REFRESHED, { ttl: newTtl });
        } else {
          this.#emit(LOCK_EVENTS.FAILED_REFRESH, {});
        }
        return refreshed;
      },
    );
  }

  getState(): Promise<ILockState> {
    return this.#call(
      "getState",
      ANSWERS.getState,
      (adapter, key) => adapter.getState(key),
      (state): ILockState => {
        if (state === null) {
          return { type: LOCK_STATE.EXPIRED };
        }
        if (state.owner !== this.#owner) {
          return {
            type: LOCK_STATE.UNAVAILABLE,
            owner: publicOwner(state.owner),
            remainingTime: state.remainingTime,
          };
        }
        // The store's word: a revived lock learns its hold's token here.
        this.#fencingToken = state.fencingToken;
        return {
          type: LOCK_STATE.ACQUIRED,
          remainingTime: state.remainingTime,
          fencingToken: state.fencingToken,
        };
      },
    );
  }

  /**
   * A run's release failed (the backend unreachable for a moment): tries it again a few times
   * in the background, so that the key is not held until its TTL. Only the outcome is told (a
   * RELEASED event); the failures were reported by the first one. The next acquire waits for
   * the tries, so that a late release of this owner cannot free the newer hold.
   */
  retryRelease(): void {
    const token = this.#fencingToken;
    const retry = retryRelease(
      // Not when released meanwhile (an explicit release), or gone with its TTL.
      () => this.#fencingToken === token && this.expiresAt() > performance.now(),
      () => this.#sendReleaseSafely(),
      () => this.#released(true),
    );
    // The tries catch their own failures: this chain cannot reject.
    this.#waitFor(retry);
  }

  // KeptHold: what a run's keep-alive asks.

  expiresAt(): number {
    return this.#expiresAt ?? Number.POSITIVE_INFINITY;
  }

  /** The lock's own TTL, whatever the provider's refreshTime (the run's signal counts on it). */
  renew(): Promise<boolean> {
    return this.refreshFor(this.#ttl ?? undefined);
  }

  lostError(): Error {
    return new LockLostError(this.#key.get(), this.#id);
  }

  // BlockingAcquirer: the steps of a blocking acquire.

  unsettled(): Promise<void> | undefined {
    return this.#unsettled;
  }

  sendAcquire(): Promise<unknown> {
    return this.#context.adapter.acquire(this.#key.toString(), this.#owner, this.#ttl);
  }

  took(answer: unknown, requestedAt: number, signal: AbortSignal): LockAcquireResult {
    return this.#took(this.#checked("acquire", ANSWERS.acquire, answer), requestedAt, signal);
  }

  claim(): LockWaitClaim {
    return { lockId: this.#owner, ttl: this.#ttl };
  }

  /** Called only when the adapter has `waitForRelease`. */
  sendWait(ms: number, signal: AbortSignal, claim: LockWaitClaim): Promise<unknown> {
    const { adapter } = this.#context;
    const wait = adapter.waitForRelease as WaitForRelease;
    return wait.call(adapter, this.#key.toString(), TimeSpan.fromMilliseconds(ms), signal, claim);
  }

  handedOver(
    answer: unknown,
    waitedFrom: number,
    signal: AbortSignal,
  ): LockAcquireResult | undefined {
    const handOff = this.#checked("waitForRelease", ANSWERS.waitForRelease, answer);
    if (handOff?.acquired !== true) {
      return undefined;
    }
    return this.#took(handOff, handOffStart(waitedFrom, handOff.remainingTime, this.#ttl), signal);
  }

  backendError(operation: string, error: unknown): Error {
    return this.#context.reporter.backendError(this.#lock, operation, error);
  }

  /**
   * A backend call given up on: a hold it grants late is released again, and acquires wait
   * until that is done, so that the late release cannot free a newer hold.
   */
  abandon(pending: Promise<unknown>): void {
    this.#waitFor(
      (pending as Promise<LockAcquireResult | LockWaitResult>)
        .then((result) => {
          // This owner's own live hold, taken again, is kept (the TTL restarted).
          if (result?.acquired === true && result.fencingToken !== this.#fencingToken) {
            return this.#sendReleaseSafely();
          }
          return undefined;
        })
        .then(ignore, ignore),
    );
  }

  cutShort(operation: string, refused: Refused | undefined, cause: TimeoutError): CutShortResult {
    this.#emit(LOCK_EVENTS.UNEXPECTED_ERROR, { operation, error: cause });
    return refused === undefined
      ? { acquired: false, owner: undefined, remainingTime: null, cause }
      : { ...refused, cause };
  }

  /**
   * Records what the adapter answered to a request made at `requestedAt`. A hold granted after
   * the caller gave up is released again, and the caller gets the signal's reason.
   */
  #took<TResult extends LockAcquireResult>(
    result: TResult,
    requestedAt: number,
    signal: AbortSignal,
  ): TResult {
    if (result.acquired) {
      const isNewHold = result.fencingToken !== this.#fencingToken;
      if (signal.aborted && isNewHold) {
        this.#letGo();
        throw signal.reason;
      }
      this.#fencingToken = result.fencingToken;
      this.#expiresAt = this.#ttl === null ? null : holdEnd(requestedAt, this.#ttl);
    }
    return result;
  }

  #forgetHold(): void {
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

  /**
   * Lets go of a hold nobody wants (granted after its caller gave up, or by an answer of the
   * wrong shape) in the background: a failure leaves it to its TTL, and the next acquire waits
   * for it.
   */
  #letGo(): void {
    this.#waitFor(this.#sendReleaseSafely().then(ignore, ignore));
  }

  /** A release in the background: a synchronous throw of the adapter becomes a rejection. */
  #sendReleaseSafely(): Promise<boolean> {
    return callAdapter(this.#context.adapter, this.#key.toString(), (adapter, key) =>
      adapter.release(key, this.#owner),
    );
  }

  /**
   * Calls the adapter and hands its answer to `settle`; a failure of the adapter (not of
   * `settle`) becomes UNEXPECTED_ERROR plus a LockBackendError. No async function and one
   * `then`: this is every operation's path, and each promise layer costs ticks.
   */
  #call<TAnswer extends Answer, TResult>(
    operation: string,
    answer: TAnswer,
    fn: (adapter: ILockAdapter, key: string) => Promise<AnswerOf<TAnswer>>,
    settle: (value: AnswerOf<TAnswer>) => TResult,
  ): Promise<TResult> {
    return callAdapter(this.#context.adapter, this.#key.toString(), fn).then(
      (value) => settle(this.#checked(operation, answer, value)),
      (error: unknown) => {
        throw this.backendError(operation, error);
      },
    );
  }

  /**
   * `value` when it has the shape `answer` expects of the adapter's `operation`; else reported
   * (UNEXPECTED_ERROR) and thrown as a LockAdapterResultError.
   */
  #checked<TAnswer extends Answer>(
    operation: string,
    answer: TAnswer,
    value: unknown,
  ): AnswerOf<TAnswer> {
    if (answer.fits(value)) {
      return value as AnswerOf<TAnswer>;
    }
    if (mayHaveAcquired(operation, value)) {
      // The adapter may have taken the key for this owner: let it go, or the hold stays until
      // its TTL, or forever. The next acquire waits for it.
      this.#letGo();
    }
    throw this.#context.reporter.wrongAnswer(this.#lock, operation, answer, value);
  }

  #emit<TName extends LockEventName>(event: TName, data: LockEventData<TName>): void {
    this.#context.reporter.emit(this.#lock, event, data);
  }
}
