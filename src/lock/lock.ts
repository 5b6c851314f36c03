import type { IEventDispatcher } from "../event-bus/event-bus-contracts.js";
import type { IKey } from "../namespace/namespace.js";
import { TimeoutError } from "../resilience/resilience-errors.js";
import { parseSettings } from "../settings/parse-settings.js";
import { Task } from "../task/task.js";
import { type ITimeSpan, TimeSpan } from "../time-span/time-span.js";
import { delay, pauseUnref } from "../timers/timers.js";
import { BLOCKING_SLACK_MS, BlockingDeadline, CUT_SHORT } from "./blocking-deadline.js";
import type {
  ILock,
  LockAutoRefreshSettings,
  LockBlockingSettings,
  LockRunBlockingSettings,
  LockRunnable,
  LockRunResult,
  LockRunSettings,
} from "./contracts/lock.js";
import type {
  ILockAdapter,
  LockAcquireResult,
  LockWaitClaim,
  LockWaitResult,
} from "./contracts/lock-adapter.js";
import {
  FailedAcquireLockError,
  FailedRefreshLockError,
  FailedReleaseLockError,
  isLockBackendError,
  LockAdapterResultError,
  LockBackendError,
  LockLostError,
} from "./contracts/lock-errors.js";
import { LOCK_EVENTS, type LockEventMap, type LockEventName } from "./contracts/lock-events.js";
import { type ILockState, LOCK_STATE } from "./contracts/lock-state.js";
import { HeldRun, holdEnd, type KeptHold } from "./keep-alive.js";
import { ANSWERS, type Answer, type AnswerOf } from "./lock-adapter-answers.js";
import { publicOwner } from "./lock-owner.js";
import {
  LOCK_DEFAULTS,
  lockBlockingSettingsSchema,
  lockRunBlockingSettingsSchema,
  lockRunSettingsSchema,
  refreshTtlSchema,
} from "./lock-settings.js";
import { callRunnable, checkRunnable } from "./run-context.js";

/** What a provider shares with its locks. */
export type LockContext = {
  /** `false` while nobody can hear events: emitting is then skipped (it is most of a cycle's CPU). */
  readonly isListened: () => boolean;
  readonly adapter: ILockAdapter;
  readonly blockingTime: TimeSpan;
  readonly blockingInterval: TimeSpan;
  /** What `refresh()` without a TTL gives; `undefined`: the lock's own TTL. */
  readonly refreshTime: TimeSpan | undefined;
  readonly events: IEventDispatcher<LockEventMap>;
};

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type EventData<TName extends LockEventName> = DistributiveOmit<
  LockEventMap[TName],
  "lock" | "key" | "lockId" | "at"
>;

const identity = <T>(value: T): T => value;

const ignore = () => {};

/**
 * Pauses before each background try of a run's release that failed (ms): a connection that
 * was cut is usually back within them, and the key is then free long before its TTL.
 */
const RELEASE_RETRY_PAUSES_MS = [25, 100, 400];

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

type BlockingAcquireResult = LockAcquireResult | CutShortResult;

/** How a `run*` takes the lock and answers (see `Lock.#run`). */
type RunOptions = {
  readonly autoRefresh: boolean | Readonly<LockAutoRefreshSettings>;
  /** Waits for the lock as `acquireBlocking` does; absent: one attempt. */
  readonly blocking?: Readonly<LockBlockingSettings>;
  /** Resolves to fn's value and throws FailedAcquireLockError; else resolves to a LockRunResult. */
  readonly orFail: boolean;
};

/** A lock on one key for one owner; created by `LockProvider.create`. See `ILock`. */
export class Lock implements ILock {
  readonly #context: LockContext;
  readonly #key: IKey;
  /** The public id: what getState, events and errors show of this owner. */
  readonly #id: string;
  /** What the adapter stores as the owner: the id and the proof of a generated lock. */
  readonly #owner: string;
  readonly #ttl: TimeSpan | null;
  #fencingToken: number | null = null;
  /**
   * performance.now() time by which this instance's hold may have ended: from before the
   * request, less the drift margin (see {@link CLOCK_DRIFT_FACTOR}).
   */
  #expiresAt: number | null = null;
  /**
   * Work of this id that nobody awaits any more (a run's failed release tried again, a late
   * answer to a call given up on, released again): this lock's acquires wait for it, so that a
   * late release cannot free a newer hold. Never rejects.
   */
  #unsettled: Promise<void> | undefined;
  #keptHoldOf: KeptHold | undefined;

  /**
   * @internal Use `LockProvider.create`. `owner` is the credential the adapter stores; `id` its
   * public part, given when the caller already has it.
   */
  constructor(
    context: LockContext,
    key: IKey,
    owner: string,
    ttl: TimeSpan | null,
    id: string = publicOwner(owner),
  ) {
    this.#context = context;
    this.#key = key;
    this.#id = id;
    this.#owner = owner;
    this.#ttl = ttl;
  }

  /** @internal The context of the provider that made `lock`, for its serialization only. */
  static contextOf(lock: Lock): LockContext {
    return lock.#context;
  }

  /** @internal The credential of `lock`, for its serialization only. */
  static ownerOf(lock: Lock): string {
    return lock.#owner;
  }

  get key(): IKey {
    return this.#key;
  }

  get id(): string {
    return this.#id;
  }

  get ttl(): TimeSpan | null {
    return this.#ttl;
  }

  get fencingToken(): number | null {
    return this.#fencingToken;
  }

  acquire(): Task<boolean> {
    return new Task((signal) =>
      this.#tryAcquire(signal, (result) => {
        this.#announce(result);
        return result.acquired;
      }),
    );
  }

  acquireOrFail(): Task<number> {
    return new Task((signal) => this.#tryAcquire(signal, (result) => this.#orFail(result)));
  }

  acquireBlocking(settings: LockBlockingSettings = {}): Task<boolean> {
    const parsed = parseSettings("blocking settings", lockBlockingSettingsSchema, settings);
    return new Task(async (signal) => {
      const result = await this.#acquireBlocking(parsed, signal);
      this.#announce(result);
      return result.acquired;
    });
  }

  acquireBlockingOrFail(settings: LockBlockingSettings = {}): Task<number> {
    const parsed = parseSettings("blocking settings", lockBlockingSettingsSchema, settings);
    return new Task(async (signal) => this.#orFail(await this.#acquireBlocking(parsed, signal)));
  }

  release(): Task<boolean> {
    return new Task(() => this.#release());
  }

  releaseOrFail(): Task<void> {
    return new Task(async () => {
      if (!(await this.#release())) {
        throw new FailedReleaseLockError(this.#key.get(), this.#id);
      }
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#fencingToken === null) {
      return;
    }
    try {
      await this.#release();
    } catch {
      // Reported (UNEXPECTED_ERROR) by #release; a dispose never throws over the block's outcome.
      this.#retryRelease();
    }
  }

  forceRelease(): Task<boolean> {
    return new Task(() =>
      this.#call(
        "forceRelease",
        ANSWERS.boolean,
        (adapter, key) => adapter.forceRelease(key),
        (hasReleased) => {
          this.#forgetHold();
          this.#emit(LOCK_EVENTS.FORCE_RELEASED, { hasReleased });
          return hasReleased;
        },
      ),
    );
  }

  refresh(ttl?: ITimeSpan): Task<boolean> {
    const parsed = parseSettings("refresh ttl", refreshTtlSchema, ttl);
    return new Task(() => this.#refresh(parsed));
  }

  refreshOrFail(ttl?: ITimeSpan): Task<void> {
    const parsed = parseSettings("refresh ttl", refreshTtlSchema, ttl);
    return new Task(async () => {
      if (!(await this.#refresh(parsed))) {
        throw new FailedRefreshLockError(this.#key.get(), this.#id);
      }
    });
  }

  getState(): Task<ILockState> {
    return new Task(() =>
      this.#call(
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
      ),
    );
  }

  runOrFail<TValue>(fn: LockRunnable<TValue>, settings: LockRunSettings = {}): Task<TValue> {
    checkRunnable(fn);
    const { autoRefresh } = parseSettings("run settings", lockRunSettingsSchema, settings);
    return this.#run(fn, { autoRefresh, orFail: true });
  }

  runBlockingOrFail<TValue>(
    fn: LockRunnable<TValue>,
    settings: LockRunBlockingSettings = {},
  ): Task<TValue> {
    checkRunnable(fn);
    const parsed = parseSettings("run settings", lockRunBlockingSettingsSchema, settings);
    return this.#run(fn, { autoRefresh: parsed.autoRefresh, blocking: parsed, orFail: true });
  }

  run<TValue>(
    fn: LockRunnable<TValue>,
    settings: LockRunSettings = {},
  ): Task<LockRunResult<TValue>> {
    checkRunnable(fn);
    const { autoRefresh } = parseSettings("run settings", lockRunSettingsSchema, settings);
    return this.#run(fn, { autoRefresh, orFail: false });
  }

  runBlocking<TValue>(
    fn: LockRunnable<TValue>,
    settings: LockRunBlockingSettings = {},
  ): Task<LockRunResult<TValue>> {
    checkRunnable(fn);
    const parsed = parseSettings("run settings", lockRunBlockingSettingsSchema, settings);
    return this.#run(fn, { autoRefresh: parsed.autoRefresh, blocking: parsed, orFail: false });
  }

  /**
   * One acquire request, whose result goes through `settle` (in the same step: no promise of
   * its own). A hold granted after the caller gave up is released again.
   */
  #tryAcquire<TResult>(
    signal: AbortSignal,
    settle: (result: LockAcquireResult) => TResult,
  ): Promise<TResult> {
    if (this.#unsettled !== undefined) {
      return this.#unsettled.then(() => this.#tryAcquire(signal, settle));
    }
    const requestedAt = performance.now();
    return this.#call(
      "acquire",
      ANSWERS.acquire,
      (adapter, key) => adapter.acquire(key, this.#owner, this.#ttl),
      (result) => settle(this.#took(result, requestedAt, signal)),
    );
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

  async #acquireBlocking(
    settings: Readonly<LockBlockingSettings>,
    signal: AbortSignal,
  ): Promise<BlockingAcquireResult> {
    const { blockingTime, blockingInterval } = this.#context;
    const time = (settings.time ?? blockingTime).toMilliseconds();
    const interval = (settings.interval ?? blockingInterval).toMilliseconds();
    const deadline = performance.now() + time;
    // Whatever the backend does, the acquire ends by then: a call still unanswered is given up.
    const cutOff = new BlockingDeadline(time + BLOCKING_SLACK_MS);
    try {
      // A retried release of this id (or a late one of a call given up) must not free the new
      // hold: nothing is sent before it ends.
      if (this.#unsettled !== undefined && (await cutOff.race(this.#unsettled)) === CUT_SHORT) {
        return this.#gaveUp("acquire", undefined, cutOff, signal);
      }
      return await this.#acquireUntil(deadline, interval, cutOff, signal);
    } finally {
      cutOff.end();
    }
  }

  /** #acquireBlocking's attempts and waits, each call raced against `cutOff`. */
  async #acquireUntil(
    deadline: number,
    interval: number,
    cutOff: BlockingDeadline,
    signal: AbortSignal,
  ): Promise<BlockingAcquireResult> {
    const { adapter } = this.#context;
    const key = this.#key.toString();
    let requestedAt = performance.now();
    let claim: LockWaitClaim | undefined;
    /** The last answer that named the holder. */
    let held: LockAcquireResult | undefined;
    // An adapter whose claimed wait is also an acquire starts with the wait: one round trip,
    // whether the key is free or the wait queues. The last attempt is an acquire: its answer
    // (the holder) is the result.
    const waitFirst = adapter.waitAcquires === true && adapter.waitForRelease !== undefined;
    for (;;) {
      let wait = deadline - performance.now();
      if (!waitFirst || wait <= 0) {
        // The adapter is awaited here, not through #tryAcquire: each promise layer costs a tick.
        let pending: Promise<LockAcquireResult>;
        let answer: LockAcquireResult | typeof CUT_SHORT;
        try {
          pending = adapter.acquire(key, this.#owner, this.#ttl);
          answer = await cutOff.race(pending);
        } catch (error) {
          throw this.#backendError("acquire", error);
        }
        if (answer === CUT_SHORT) {
          this.#abandon(pending);
          return this.#gaveUp("acquire", held, cutOff, signal);
        }
        const result = this.#took(
          this.#checked("acquire", ANSWERS.acquire, answer),
          requestedAt,
          signal,
        );
        const left = deadline - performance.now();
        if (result.acquired || left <= 0) {
          return result;
        }
        held = result;
        // Never sleep past the holder's expiry (it frees the key without any signal), unless
        // the adapter serves its queue then: waking would lose the waiter's place.
        const holderLeft = adapter.waitsPastExpiry
          ? Number.POSITIVE_INFINITY
          : (result.remainingTime?.toMilliseconds() ?? Number.POSITIVE_INFINITY);
        wait = Math.max(1, Math.min(left, holderLeft));
      }
      const waitedFrom = performance.now();
      const { waitForRelease } = adapter;
      if (waitForRelease === undefined) {
        await delay(TimeSpan.fromMilliseconds(Math.min(wait, interval)), signal);
      } else {
        // The claim lets the adapter hand the key over at the release (if it can): no second
        // attempt, and no newcomer taking the key between the release and this waiter's retry.
        claim ??= { lockId: this.#owner, ttl: this.#ttl };
        let pending: Promise<LockWaitResult>;
        let handOff: LockWaitResult | typeof CUT_SHORT;
        try {
          // The adapter ends the wait at `wait`, before the cut-off, when the backend answers.
          // It gets the caller's signal, not one aborted at the cut-off: an AbortController
          // costs microseconds, and leaving a hung backend's queue needs the backend anyway (a
          // late hand-off is released by #abandon).
          pending = waitForRelease.call(
            adapter,
            key,
            TimeSpan.fromMilliseconds(wait),
            signal,
            claim,
          );
          handOff = await cutOff.race(pending);
        } catch (error) {
          this.#waitFailed(error, signal);
        }
        if (handOff === CUT_SHORT) {
          this.#abandon(pending);
          return this.#gaveUp("waitForRelease", held, cutOff, signal);
        }
        this.#checked("waitForRelease", ANSWERS.waitForRelease, handOff);
        if (handOff?.acquired === true) {
          // A hold taken by the wait, or handed over at a release, starts after it began, or
          // later still by what the adapter says it has left (a long wait would else leave the
          // lock little or nothing of its lease by its own reckoning).
          const from =
            handOff.remainingTime === undefined || this.#ttl === null
              ? waitedFrom
              : performance.now() +
                handOff.remainingTime.toMilliseconds() -
                this.#ttl.toMilliseconds();
          return this.#took(handOff, Math.max(waitedFrom, from), signal);
        }
      }
      requestedAt = performance.now();
    }
  }

  /**
   * A blocking acquire whose cut-off passed with `operation` unanswered: the caller's abort is
   * thrown; a backend that did not answer in time is reported (UNEXPECTED_ERROR), and the
   * acquire fails as one that ran out of time, naming the holder the last answer named.
   */
  #gaveUp(
    operation: string,
    held: LockAcquireResult | undefined,
    cutOff: BlockingDeadline,
    signal: AbortSignal,
  ): CutShortResult {
    if (signal.aborted) {
      throw signal.reason;
    }
    const cause = new TimeoutError(TimeSpan.fromMilliseconds(cutOff.after));
    this.#emit(LOCK_EVENTS.UNEXPECTED_ERROR, { operation, error: cause });
    return held?.acquired === false
      ? { ...held, cause }
      : { acquired: false, owner: undefined, remainingTime: null, cause };
  }

  /**
   * A backend call given up on: a hold it grants late is released again, and this lock's
   * acquires wait until that is done, so that the late release cannot free a newer hold.
   */
  #abandon(pending: Promise<LockAcquireResult | LockWaitResult>): void {
    this.#waitFor(
      pending
        .then((result) => {
          // This lock's own live hold, taken again, is kept (the TTL restarted).
          if (result?.acquired === true && result.fencingToken !== this.#fencingToken) {
            return this.#send((adapter, key) => adapter.release(key, this.#owner));
          }
          return undefined;
        })
        .then(ignore, ignore),
    );
  }

  /** An abort is the caller giving up, not a backend failure: it is neither wrapped nor reported. */
  #waitFailed(error: unknown, signal: AbortSignal): never {
    if (signal.aborted) {
      throw signal.reason;
    }
    throw this.#backendError("waitForRelease", error);
  }

  #release(): Promise<boolean> {
    return this.#call(
      "release",
      ANSWERS.boolean,
      (adapter, key) => adapter.release(key, this.#owner),
      (released) => this.#released(released),
    );
  }

  #released(released: boolean): boolean {
    if (released) {
      this.#forgetHold();
    }
    // Checked here too, so that no event data is even built while nobody listens.
    if (this.#context.isListened()) {
      this.#emit(released ? LOCK_EVENTS.RELEASED : LOCK_EVENTS.FAILED_RELEASE, {});
    }
    return released;
  }

  #refresh(ttl: TimeSpan | undefined): Promise<boolean> {
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

  /**
   * Every `run*`, in one async step (each layer costs a promise and a tick): takes the lock
   * (blocking when `blocking` is given), runs `fn` while held and keeps the hold alive, and
   * always releases; the release never masks fn's outcome. Resolves to fn's value when `orFail`
   * (which throws FailedAcquireLockError when the lock is not taken), else to a LockRunResult.
   */
  #run<TValue>(fn: LockRunnable<TValue>, options: RunOptions & { orFail: true }): Task<TValue>;
  #run<TValue>(
    fn: LockRunnable<TValue>,
    options: RunOptions & { orFail: false },
  ): Task<LockRunResult<TValue>>;
  #run<TValue>(
    fn: LockRunnable<TValue>,
    options: RunOptions,
  ): Task<TValue | LockRunResult<TValue>> {
    return new Task((signal) => this.#runHeld(fn, options, signal));
  }

  async #runHeld<TValue>(
    fn: LockRunnable<TValue>,
    { autoRefresh, blocking, orFail }: RunOptions,
    signal: AbortSignal,
  ): Promise<TValue | LockRunResult<TValue>> {
    const result =
      blocking === undefined
        ? await this.#tryAcquire(signal, identity)
        : await this.#acquireBlocking(blocking, signal);
    if (orFail) {
      this.#orFail(result);
    } else {
      this.#announce(result);
    }
    if (!result.acquired) {
      return [false, null];
    }
    const run = new HeldRun(signal, this.#keptHold);
    if (this.#ttl !== null) {
      run.keepAlive(autoRefresh, this.#ttl.toMilliseconds(), LOCK_DEFAULTS.refreshFraction);
    }
    try {
      const value = await callRunnable(fn, run, result.fencingToken);
      return orFail ? value : [true, value];
    } finally {
      run.end();
      // A failed release is reported by its event (FAILED_RELEASE / UNEXPECTED_ERROR), never
      // thrown over fn's outcome. The adapter is awaited directly: one tick, not three.
      try {
        const released = await this.#context.adapter.release(this.#key.toString(), this.#owner);
        if (ANSWERS.boolean.fits(released)) {
          this.#released(released);
        } else {
          this.#wrongAnswer("release", ANSWERS.boolean, released);
        }
      } catch (error) {
        this.#backendError("release", error);
        this.#retryRelease();
      }
    }
  }

  /**
   * A run's release failed (the backend unreachable for a moment): tries it again a few times
   * in the background, so that the key is not held until its TTL. Only the outcome is told (a
   * RELEASED event); the failures were reported by the first one. This lock's next acquire
   * waits for the tries, so that a late release of this id cannot free the newer hold.
   */
  #retryRelease(): void {
    const key = this.#key.toString();
    const token = this.#fencingToken;
    const retry = (async () => {
      for (const pause of RELEASE_RETRY_PAUSES_MS) {
        await pauseUnref(pause);
        if (this.#fencingToken !== token || this.#untilExpiry() <= 0) {
          return; // released meanwhile (an explicit release), or gone with its TTL
        }
        try {
          if (await this.#send((adapter) => adapter.release(key, this.#owner))) {
            this.#released(true);
          }
          return;
        } catch {
          // The next pause, or the TTL.
        }
      }
    })();
    // The tries catch their own failures: this chain cannot reject.
    this.#waitFor(retry);
  }

  /** Makes this lock's acquires wait for `work` too (see #unsettled); `work` never rejects. */
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

  /** What a run's keep-alive asks of this lock (made at its first run). */
  get #keptHold(): KeptHold {
    this.#keptHoldOf ??= {
      expiresAt: () => this.#expiresAt ?? Number.POSITIVE_INFINITY,
      // The lock's own TTL, whatever the provider's refreshTime (the run's signal counts on it).
      refresh: () => this.#refresh(this.#ttl ?? undefined),
      lostError: () => new LockLostError(this.#key.get(), this.#id),
    };
    return this.#keptHoldOf;
  }

  #untilExpiry(): number {
    return (this.#expiresAt ?? Number.POSITIVE_INFINITY) - performance.now();
  }

  #orFail(result: BlockingAcquireResult): number {
    this.#announce(result);
    if (!result.acquired) {
      throw new FailedAcquireLockError(
        this.#key.get(),
        this.#id,
        result.owner === undefined ? undefined : publicOwner(result.owner),
        "cause" in result ? { cause: result.cause } : undefined,
      );
    }
    return result.fencingToken;
  }

  #announce(result: BlockingAcquireResult): void {
    if (!this.#context.isListened()) {
      return;
    }
    if (result.acquired) {
      this.#emit(LOCK_EVENTS.ACQUIRED, { fencingToken: result.fencingToken, ttl: this.#ttl });
    } else if (result.owner !== undefined) {
      this.#emit(LOCK_EVENTS.UNAVAILABLE, {
        owner: publicOwner(result.owner),
        remainingTime: result.remainingTime,
      });
    }
  }

  #forgetHold(): void {
    this.#fencingToken = null;
    this.#expiresAt = null;
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
    return this.#send(fn).then(
      (value) => settle(this.#checked(operation, answer, value)),
      (error: unknown) => {
        throw this.#backendError(operation, error);
      },
    );
  }

  /** Calls the adapter for this lock's key: a synchronous throw becomes a rejection. */
  #send<T>(fn: (adapter: ILockAdapter, key: string) => Promise<T>): Promise<T> {
    try {
      return fn(this.#context.adapter, this.#key.toString());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Lets go of a hold nobody wants (granted after its caller gave up, or by an answer of the
   * wrong shape) in the background: a failure leaves it to its TTL, and this lock's next
   * acquire waits for it.
   */
  #letGo(): void {
    this.#waitFor(
      this.#send((adapter, key) => adapter.release(key, this.#owner)).then(ignore, ignore),
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
    throw this.#wrongAnswer(operation, answer, value);
  }

  /** An answer of the wrong shape: reported as UNEXPECTED_ERROR, returned as the error. */
  #wrongAnswer(operation: string, answer: Answer, value: unknown): LockAdapterResultError {
    const { adapter } = this.#context;
    const said = value as { acquired?: unknown; owner?: unknown } | null | undefined;
    if (
      (operation === "acquire" || operation === "waitForRelease") &&
      (value === true || said?.acquired === true)
    ) {
      // The adapter may have taken the key for this lock (daiso-core's acquire answers true once
      // it did): let it go, or the hold stays until its TTL, or forever. The next acquire of this
      // lock waits for it.
      this.#letGo();
    }
    // An owner read from the store is a credential: the error and its event show its public id.
    const shown =
      typeof said?.owner === "string" ? { ...said, owner: publicOwner(said.owner) } : value;
    const error = new LockAdapterResultError(
      this.#key.get(),
      (adapter as { constructor?: { name?: string } }).constructor?.name || "Object",
      operation,
      shown,
      answer.expected,
    );
    this.#emit(LOCK_EVENTS.UNEXPECTED_ERROR, { operation, error });
    return error;
  }

  /** A failure of the adapter: reported as UNEXPECTED_ERROR, thrown as a LockBackendError. */
  #backendError(operation: string, error: unknown): LockBackendError {
    // An adapter's own LockBackendError (a failure it explains): its cause and hint, our key.
    if (!isLockBackendError(error)) {
      this.#emit(LOCK_EVENTS.UNEXPECTED_ERROR, { operation, error });
      return new LockBackendError(this.#key.get(), operation, { cause: error });
    }
    const { cause, hint } = error;
    const rekeyed = new LockBackendError(this.#key.get(), operation, { cause, hint });
    // Its hint (what to do) is the news: listeners get the whole error, not only its cause.
    this.#emit(LOCK_EVENTS.UNEXPECTED_ERROR, { operation, error: rekeyed });
    return rekeyed;
  }

  /**
   * Dispatches in a microtask queued as the operation completes: in-process listeners have
   * heard the event when the caller's `await` resumes, yet run outside the adapter's callback
   * (a listener using the lock finds its state settled). The bus isolates listener failures and
   * does not wait for async ones; the transport keeps the order of dispatches.
   */
  #emit<TName extends LockEventName>(event: TName, data: EventData<TName>): void {
    if (!this.#context.isListened()) {
      return;
    }
    const payload = {
      ...data,
      lock: this,
      key: this.#key.get(),
      lockId: this.#id,
      at: new Date(),
    } as unknown as LockEventMap[TName];
    queueMicrotask(() => {
      let dispatched: Promise<void>;
      try {
        dispatched = this.#context.events.dispatch(event, payload);
      } catch (error) {
        dispatched = Promise.reject(error);
      }
      dispatched.catch((error: unknown) => {
        console.error(
          `[hasp] the lock event ${event} of "${this.#key.get()}" was not dispatched:`,
          error,
        );
      });
    });
  }
}
