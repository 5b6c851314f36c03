// One owner's hold behind a primitive's public face (a lock's hold of its key, a semaphore's
// slot): what it knows of the hold (its fencing token and when it may end), the adapter calls
// every primitive makes alike (acquire, release, refresh, waits), and the reports of what they
// did. A primitive's hold extends it with what only it has (its acquire's arguments, getState,
// its force release, the shape of its results). The blocking loop and the keep-alive work on it
// through `BlockingAcquirer` and `KeptHold`, with no closure per call or per run.

import type { IKey } from "../namespace/namespace.js";
import type { TimeoutError } from "../resilience/resilience-errors.js";
import { type ITimeSpan, TimeSpan } from "../time-span/time-span.js";
import { type AnswerCheck, BOOLEAN_ANSWER, mayHaveAcquired } from "./adapter-answers.js";
import {
  acquireBlocking,
  type BlockingAcquirer,
  type BlockingContext,
  handOffStart,
} from "./blocking-acquire.js";
import { callAdapter } from "./call-adapter.js";
import { holdEnd, type KeptHold } from "./keep-alive.js";
import type { ExpectedAnswer } from "./reporter.js";
import { retryRelease } from "./retry-release.js";

const ignore = () => {};

/** What every primitive's adapter has in common, as far as a hold goes. */
export type HoldAdapter = {
  release(key: string, owner: string): Promise<boolean>;
  refresh(key: string, owner: string, ttl: TimeSpan): Promise<boolean>;
  readonly waitForRelease?: unknown;
  readonly waitAcquires?: boolean;
  readonly waitsPastExpiry?: boolean;
};

/** What a hold asks of its provider's reporter (`LockReporter` and its kin). */
export type HoldReporter<TFace> = {
  isListened(): boolean;
  emitNamed(face: TFace, event: string, data: object): void;
  backendError(face: TFace, operation: string, error: unknown): Error;
  wrongAnswer(face: TFace, operation: string, answer: ExpectedAnswer, value: unknown): Error;
};

/** What a provider shares with its primitives' holds (`LockContext` and its kin). */
export type HoldContext<TAdapter extends HoldAdapter, TFace> = BlockingContext & {
  readonly adapter: TAdapter;
  /** What `refresh()` without a TTL gives; `undefined`: the hold's own TTL. */
  readonly refreshTime: TimeSpan | undefined;
  readonly reporter: HoldReporter<TFace>;
};

/** The event names a primitive reports its holds' outcomes under. */
export type HoldEvents = {
  readonly released: string;
  readonly failedRelease: string;
  readonly refreshed: string;
  readonly failedRefresh: string;
  readonly unexpectedError: string;
};

/** An acquire's answer, as far as a hold goes. */
export type HoldAcquireResult =
  | { readonly acquired: true; readonly fencingToken: number }
  | { readonly acquired: false; readonly remainingTime: TimeSpan | null };

/** A wait's hand-off (`undefined`: it only woke the waiter, or ran out). */
type HandOff = { acquired: true; fencingToken: number; remainingTime?: TimeSpan } | undefined;

/** The answer checks a hold applies: its primitive's acquire and wait shapes. */
export type HoldAnswers<TAcquire> = {
  readonly acquire: AnswerCheck<TAcquire>;
  readonly waitForRelease: AnswerCheck<HandOff>;
};

/** What a hold is made of. */
export type HoldSettings<TAdapter extends HoldAdapter, TFace, TAcquire> = {
  /** The public face: what events and errors carry. */
  readonly face: TFace;
  readonly context: HoldContext<TAdapter, TFace>;
  readonly key: IKey;
  /** What the adapter stores as the owner: the id and the proof of a generated one. */
  readonly owner: string;
  /** The public id: what events and errors show of this owner. */
  readonly id: string;
  readonly ttl: TimeSpan | null;
  readonly events: HoldEvents;
  readonly answers: HoldAnswers<TAcquire>;
};

type Refused<TAcquire> = Extract<TAcquire, { acquired: false }>;

export abstract class Hold<
  TAdapter extends HoldAdapter,
  TFace,
  TAcquire extends HoldAcquireResult,
  TClaim,
  TCutShort,
> implements KeptHold, BlockingAcquirer<TAcquire, TClaim, TCutShort>
{
  /** The public face: what events carry. */
  protected readonly face: TFace;
  readonly #context: HoldContext<TAdapter, TFace>;
  readonly #key: IKey;
  readonly #id: string;
  readonly #owner: string;
  readonly #ttl: TimeSpan | null;
  readonly #events: HoldEvents;
  readonly #answers: HoldAnswers<TAcquire>;
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

  constructor(settings: HoldSettings<TAdapter, TFace, TAcquire>) {
    this.face = settings.face;
    this.#context = settings.context;
    this.#key = settings.key;
    this.#id = settings.id;
    this.#owner = settings.owner;
    this.#ttl = settings.ttl;
    this.#events = settings.events;
    this.#answers = settings.answers;
  }

  get context(): HoldContext<TAdapter, TFace> {
    return this.#context;
  }

  get key(): IKey {
    return this.#key;
  }

  get id(): string {
    return this.#id;
  }

  /** The credential: for the primitive's serialization only. */
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
   * Sends the primitive's acquire and hands back the adapter's own promise. `nextAttemptMs`:
   * see `BlockingAcquirer.sendAcquire` (`undefined` for a single attempt).
   */
  abstract sendAcquire(nextAttemptMs?: number): Promise<unknown>;

  abstract claim(): TClaim;

  abstract lostError(): Error;

  /** The result of an acquire cut short at its cut-off (see `cutShort`). */
  protected abstract cutShortResult(
    refused: Refused<TAcquire> | undefined,
    cause: TimeoutError,
  ): TCutShort;

  /**
   * One acquire request, whose result goes through `settle` (in the same step: no promise of
   * its own). A hold granted after the caller gave up is released again.
   */
  tryAcquire<TResult>(
    signal: AbortSignal,
    settle: (result: TAcquire) => TResult,
  ): Promise<TResult> {
    if (this.#unsettled !== undefined) {
      return this.#unsettled.then(() => this.tryAcquire(signal, settle));
    }
    const requestedAt = performance.now();
    return this.call(
      "acquire",
      this.#answers.acquire,
      () => this.sendAcquire() as Promise<TAcquire>,
      (result) => settle(this.#took(result, requestedAt, signal)),
    );
  }

  acquireBlocking(
    settings: { readonly time?: ITimeSpan | undefined; readonly interval?: ITimeSpan | undefined },
    signal: AbortSignal,
  ): Promise<TAcquire | TCutShort> {
    return acquireBlocking(this, this.#context, settings, signal);
  }

  release(): Promise<boolean> {
    return this.call(
      "release",
      BOOLEAN_ANSWER,
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
    if (BOOLEAN_ANSWER.fits(answer)) {
      this.#released(answer);
    } else {
      this.#context.reporter.wrongAnswer(this.face, "release", BOOLEAN_ANSWER, answer);
    }
  }

  #released(released: boolean): boolean {
    if (released) {
      this.forgetHold();
    }
    // Checked here too, so that no event data is even built while nobody listens.
    if (this.#context.reporter.isListened()) {
      this.emit(released ? this.#events.released : this.#events.failedRelease, {});
    }
    return released;
  }

  /** A run's release failed: reported, and tried again in the background. */
  releaseFailed(error: unknown): void {
    this.#context.reporter.backendError(this.face, "release", error);
    this.retryRelease();
  }

  /** Refreshes for `ttl`, else the provider's refresh time, else the hold's own TTL. */
  refreshFor(ttl: TimeSpan | undefined): Promise<boolean> {
    const newTtl = ttl ?? this.#context.refreshTime ?? this.#ttl;
    if (this.#ttl === null || newTtl === null) {
      this.emit(this.#events.failedRefresh, {});
      return Promise.resolve(false);
    }
    const requestedAt = performance.now();
    return this.call(
      "refresh",
      BOOLEAN_ANSWER,
      (adapter, key) => adapter.refresh(key, this.#owner, newTtl),
      (refreshed) => {
        if (refreshed) {
          this.#expiresAt = holdEnd(requestedAt, newTtl);
          this.emit(this.#events.refreshed, { ttl: newTtl });
        } else {
          this.emit(this.#events.failedRefresh, {});
        }
        return refreshed;
      },
    );
  }

  /**
   * A run's release failed (the backend unreachable for a moment): tries it again a few times
   * in the background, so that the key is not held until its TTL. Only the outcome is told (a
   * released event); the failures were reported by the first one. The next acquire waits for
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

  /** The hold's own TTL, whatever the provider's refreshTime (the run's signal counts on it). */
  renew(): Promise<boolean> {
    return this.refreshFor(this.#ttl ?? undefined);
  }

  // BlockingAcquirer: the steps of a blocking acquire.

  unsettled(): Promise<void> | undefined {
    return this.#unsettled;
  }

  took(answer: unknown, requestedAt: number, signal: AbortSignal): TAcquire {
    return this.#took(this.checked("acquire", this.#answers.acquire, answer), requestedAt, signal);
  }

  /** Called only when the adapter has `waitForRelease`. */
  sendWait(ms: number, signal: AbortSignal, claim: TClaim): Promise<unknown> {
    const { adapter } = this.#context;
    const wait = adapter.waitForRelease as (
      key: string,
      maxWait: TimeSpan,
      signal: AbortSignal,
      claim: TClaim,
    ) => Promise<unknown>;
    return wait.call(adapter, this.#key.toString(), TimeSpan.fromMilliseconds(ms), signal, claim);
  }

  handedOver(answer: unknown, waitedFrom: number, signal: AbortSignal): TAcquire | undefined {
    const handOff = this.checked("waitForRelease", this.#answers.waitForRelease, answer);
    if (handOff?.acquired !== true) {
      return undefined;
    }
    const startedAt = handOffStart(waitedFrom, handOff.remainingTime, this.#ttl);
    return this.#took(handOff as unknown as TAcquire, startedAt, signal);
  }

  backendError(operation: string, error: unknown): Error {
    return this.#context.reporter.backendError(this.face, operation, error);
  }

  /**
   * A backend call given up on: a hold it grants late is released again, and acquires wait
   * until that is done, so that the late release cannot free a newer hold.
   */
  abandon(pending: Promise<unknown>): void {
    this.#waitFor(
      (pending as Promise<HoldAcquireResult | HandOff>)
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

  cutShort(
    operation: string,
    refused: Refused<TAcquire> | undefined,
    cause: TimeoutError,
  ): TCutShort {
    this.emit(this.#events.unexpectedError, { operation, error: cause });
    return this.cutShortResult(refused, cause);
  }

  /**
   * Records what the adapter answered to a request made at `requestedAt`. A hold granted after
   * the caller gave up is released again, and the caller gets the signal's reason.
   */
  #took<TResult extends HoldAcquireResult>(
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

  /** The store's word on this owner's token (a revived face learns it from `getState`). */
  protected learnToken(fencingToken: number): void {
    this.#fencingToken = fencingToken;
  }

  protected forgetHold(): void {
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
   * `settle`) becomes UNEXPECTED_ERROR plus the primitive's backend error. No async function
   * and one `then`: this is every operation's path, and each promise layer costs ticks.
   */
  protected call<TValue, TResult>(
    operation: string,
    answer: AnswerCheck<TValue>,
    fn: (adapter: TAdapter, key: string) => Promise<TValue>,
    settle: (value: TValue) => TResult,
  ): Promise<TResult> {
    return callAdapter(this.#context.adapter, this.#key.toString(), fn).then(
      (value) => settle(this.checked(operation, answer, value)),
      (error: unknown) => {
        throw this.backendError(operation, error);
      },
    );
  }

  /**
   * `value` when it has the shape `answer` expects of the adapter's `operation`; else reported
   * (UNEXPECTED_ERROR) and thrown as the primitive's result error.
   */
  protected checked<TValue>(
    operation: string,
    answer: AnswerCheck<TValue>,
    value: unknown,
  ): TValue {
    if (answer.fits(value)) {
      return value;
    }
    if (mayHaveAcquired(operation, value)) {
      // The adapter may have taken the key for this owner: let it go, or the hold stays until
      // its TTL, or forever. The next acquire waits for it.
      this.#letGo();
    }
    throw this.#context.reporter.wrongAnswer(this.face, operation, answer, value);
  }

  protected emit(event: string, data: object): void {
    this.#context.reporter.emitNamed(this.face, event, data);
  }
}
