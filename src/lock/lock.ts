import { InvalidArgumentError } from "../errors/invalid-argument-error.js";
import type { IEventDispatcher } from "../event-bus/event-bus-contracts.js";
import type { IKey } from "../namespace/namespace.js";
import { TimeoutError } from "../resilience/resilience-errors.js";
import { parseSettings } from "../settings/parse-settings.js";
import { onAbort } from "../task/abort-listeners.js";
import { Task } from "../task/task.js";
import { delay, MAX_TIMER_MS } from "../task/timers.js";
import { type ITimeSpan, TimeSpan } from "../time-span/time-span.js";
import type {
  ILock,
  LockAutoRefreshSettings,
  LockBlockingSettings,
  LockRunBlockingSettings,
  LockRunContext,
  LockRunnable,
  LockRunResult,
  LockRunSettings,
} from "./contracts/lock.js";
import type {
  ILockAdapter,
  LockAcquireResult,
  LockAdapterState,
  LockHandOff,
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
import { publicOwner } from "./lock-owner.js";
import {
  LOCK_DEFAULTS,
  lockBlockingSettingsSchema,
  lockRunBlockingSettingsSchema,
  lockRunSettingsSchema,
  refreshTtlSchema,
} from "./lock-settings.js";

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

/**
 * The margin a holder takes off its own reckoning of when its hold ends (Redlock's): the hold
 * may have ended `ttl × CLOCK_DRIFT_FACTOR + CLOCK_DRIFT_MS` before the send time of the acquire
 * or refresh plus the TTL, since the holder's clock and the backend's may run at rates up to 1%
 * apart, and their timers fire a millisecond or two apart. A `run*` function's signal aborts at
 * that moment, whether or not a refresh has answered by then.
 */
export const CLOCK_DRIFT_FACTOR = 0.01;
/** See {@link CLOCK_DRIFT_FACTOR}. */
export const CLOCK_DRIFT_MS = 2;

/**
 * How long past its `time` a blocking acquire still waits for the backend's answer to a call
 * under way (ms). A healthy backend answers well within it (Redis in under a millisecond, SQL in
 * a few, a distant or majority-acknowledged write in tens); one that does not (stopped, its
 * connection hanging, a statement blocked on a row lock) is given up on, and the acquire
 * resolves `false` (or throws `FailedAcquireLockError`) at `time` plus this, at the latest.
 */
export const BLOCKING_SLACK_MS = 250;

/** The performance.now() time by which a hold asked for at `sentAt` may have ended. */
const holdEnd = (sentAt: number, ttl: TimeSpan): number => {
  const ms = ttl.toMilliseconds();
  return sentAt + ms - (ms * CLOCK_DRIFT_FACTOR + CLOCK_DRIFT_MS);
};

/**
 * The shapes of adapter answers, checked on every call (a `typeof` or two, no schema): an
 * adapter written to another contract (daiso-core's `acquire` answers a boolean) fails loudly
 * instead of being read as "held by someone else".
 */
const ANSWERS = {
  acquire: {
    expected:
      "{ acquired: true, fencingToken: number } or { acquired: false, owner: string, remainingTime: TimeSpan | null }",
    fits: (value: unknown): value is LockAcquireResult => {
      const answer = value as LockAcquireResult | null | undefined;
      return answer?.acquired === true
        ? Number.isSafeInteger(answer.fencingToken)
        : answer?.acquired === false &&
            typeof answer.owner === "string" &&
            isRemainingTime(answer.remainingTime);
    },
  },
  boolean: {
    expected: "a boolean",
    fits: (value: unknown): value is boolean => typeof value === "boolean",
  },
  getState: {
    expected: "null or { owner: string, remainingTime: TimeSpan | null, fencingToken: number }",
    fits: (value: unknown): value is LockAdapterState | null => {
      const state = value as LockAdapterState | null;
      return (
        state === null ||
        (typeof state === "object" &&
          typeof state.owner === "string" &&
          Number.isSafeInteger(state.fencingToken) &&
          isRemainingTime(state.remainingTime))
      );
    },
  },
  waitForRelease: {
    expected: "undefined, or { acquired: true, fencingToken: number } for a hand-off",
    fits: (value: unknown): value is LockWaitResult => {
      const handOff = value as LockHandOff | undefined;
      return (
        handOff === undefined ||
        (handOff?.acquired === true &&
          Number.isSafeInteger(handOff.fencingToken) &&
          (handOff.remainingTime === undefined || isRemainingTime(handOff.remainingTime)))
      );
    },
  },
} as const;

type Answer = (typeof ANSWERS)[keyof typeof ANSWERS];
type AnswerOf<TAnswer extends Answer> = TAnswer["fits"] extends (value: unknown) => value is infer T
  ? T
  : never;

function isRemainingTime(value: unknown): boolean {
  return (
    value === null ||
    typeof (value as { toMilliseconds?: unknown } | undefined)?.toMilliseconds === "function"
  );
}

/** daiso-core's `Invokable`: an object with an `invoke` method. */
function isInvokable(fn: unknown): fn is { invoke: (context: LockRunContext) => unknown } {
  return typeof (fn as { invoke?: unknown } | null)?.invoke === "function";
}

/**
 * What `run*` can run: a function, an object with `invoke` (daiso-core's `Invokable`), or a
 * `Task`. Checked when the run is made, before anything is acquired.
 */
function checkRunnable(fn: unknown): void {
  if (
    typeof fn === "function" ||
    isInvokable(fn) ||
    typeof (fn as { withSignal?: unknown } | null)?.withSignal === "function"
  ) {
    return;
  }
  const hint =
    fn instanceof Promise
      ? " (a Promise has already started: pass a function that returns it)"
      : "";
  throw new InvalidArgumentError(
    `Invalid run function: must be a function, an object with invoke(), or a Task${hint}`,
    [{ path: "fn", message: "must be a function, an object with invoke(), or a Task" }],
  );
}

/** A pause that does not keep the process alive. */
const pauseUnref = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref?.();
  });

/**
 * One `run*` while its function runs: the function's signal, made only when the function asks
 * for it (an AbortController costs microseconds on Node 20, more than an in-process hold), and
 * its keep-alive state (its place in a refresh queue).
 */
class HeldRun {
  readonly #callerSignal: AbortSignal;
  #controller: AbortController | undefined;
  #lost: LockLostError | undefined;
  /** Removes the listener on the caller's signal, while there is one. */
  #stopListening: (() => void) | undefined;
  stopped = false;
  /** A timer of its own, for the rare waits off the regular interval (a refresh retried). */
  timer: ReturnType<typeof setTimeout> | undefined;
  /**
   * Aborts the signal when the hold may have ended: armed only while no answered refresh
   * stands between now and then (a refresh under way or failing, after `maxHoldTime`, or with
   * `autoRefresh: false` once the signal is read).
   */
  expiryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Called when the signal is first made (while the run goes on). */
  onSignal: () => void = ignore;
  /** Keep-alive: ms between refreshes, and the performance.now() time refreshing stops. */
  every = 0;
  stopAt = Number.POSITIVE_INFINITY;
  /** Keep-alive: called when a refresh is due. */
  onDue: () => void = ignore;
  /** The refresh queue it waits in, its place there, and when it is due (performance.now()). */
  refreshQueue: RefreshQueue | undefined;
  prevDue: HeldRun | undefined;
  nextDue: HeldRun | undefined;
  dueAt = 0;

  constructor(callerSignal: AbortSignal) {
    this.#callerSignal = callerSignal;
  }

  /** Aborted when the caller's signal aborts, or with a `LockLostError` when the hold is lost. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#lost !== undefined) {
        this.#controller.abort(this.#lost);
      } else if (this.#callerSignal.aborted) {
        this.#controller.abort(this.#callerSignal.reason);
      } else if (!this.stopped) {
        // A listener removed by `end`, rather than AbortSignal.any: on Node 20 every `any`
        // over a long-lived caller signal stays referenced by it (nodejs/node#55351). Shared
        // with the other runs on that signal: many runs do not make many listeners.
        this.#stopListening = onAbort(this.#callerSignal, () => this.handleEvent());
        this.onSignal();
      }
    }
    return this.#controller.signal;
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    this.#controller?.abort(this.#callerSignal.reason);
  }

  get lost(): boolean {
    return this.#lost !== undefined;
  }

  lose(error: LockLostError): void {
    if (this.#lost === undefined) {
      this.#lost = error;
      clearTimeout(this.timer);
      clearTimeout(this.expiryTimer);
      this.refreshQueue?.remove(this);
      this.#controller?.abort(error);
    }
  }

  end(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.expiryTimer);
    this.refreshQueue?.remove(this);
    this.#stopListening?.();
    this.#stopListening = undefined;
  }
}

/**
 * The runs of the process that refresh every `every` ms, in the order they are due: a run joins
 * at the tail when it starts or has refreshed (due = now + every, so the order holds), and one
 * Node timer is armed for the head. A run that ends just leaves; the timer is not touched (only
 * unref'd when no run is left, so it never keeps the process alive), fires in vain at most once
 * and is re-armed for the new head, or dropped with the queue. So a short run costs no timer at
 * all, where a setTimeout and clearTimeout per run cost more than an in-process hold.
 */
class RefreshQueue {
  head: HeldRun | undefined;
  tail: HeldRun | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  /**
   * The `setTimeout` the timer came from, and which arming it was: a lingering timer is only
   * relied on in the timer world that made it (fake timers in tests swap `setTimeout`), and a
   * timer left behind in another world is ignored when it fires.
   */
  armedWith: typeof setTimeout | undefined;
  armings = 0;

  constructor(readonly every: number) {}

  static join(run: HeldRun): void {
    let queue = refreshQueues.get(run.every);
    if (queue === undefined) {
      queue = new RefreshQueue(run.every);
      refreshQueues.set(run.every, queue);
    }
    run.dueAt = performance.now() + run.every;
    run.refreshQueue = queue;
    run.prevDue = queue.tail;
    if (queue.tail === undefined) {
      queue.head = run;
    } else {
      queue.tail.nextDue = run;
    }
    queue.tail = run;
    if (queue.timer === undefined || queue.armedWith !== setTimeout) {
      queue.arm(run.dueAt);
    } else if (queue.head === run) {
      queue.timer.ref();
    }
  }

  remove(run: HeldRun): void {
    if (run.prevDue === undefined) {
      this.head = run.nextDue;
    } else {
      run.prevDue.nextDue = run.nextDue;
    }
    if (run.nextDue === undefined) {
      this.tail = run.prevDue;
    } else {
      run.nextDue.prevDue = run.prevDue;
    }
    run.prevDue = undefined;
    run.nextDue = undefined;
    run.refreshQueue = undefined;
    if (this.head === undefined) {
      this.timer?.unref();
    }
  }

  arm(at: number): void {
    const ms = Math.min(Math.max(1, Math.ceil(at - performance.now())), MAX_TIMER_MS);
    this.armings += 1;
    this.armedWith = setTimeout;
    this.timer = setTimeout(refreshDueRuns, ms, this, this.armings);
  }
}

const refreshQueues = new Map<number, RefreshQueue>();

function refreshDueRuns(queue: RefreshQueue, arming: number): void {
  if (arming !== queue.armings) {
    return;
  }
  queue.timer = undefined;
  const now = performance.now();
  let run = queue.head;
  while (run !== undefined && run.dueAt <= now) {
    queue.remove(run);
    run.onDue();
    run = queue.head;
  }
  if (run !== undefined) {
    queue.arm(run.dueAt);
  } else if (refreshQueues.get(queue.every) === queue) {
    refreshQueues.delete(queue.every);
  }
}

/** What `BlockingDeadline.race` answers when the cut-off came first. */
const CUT_SHORT = Symbol("cut short");

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

/**
 * When a blocking acquire stops waiting for the backend: `after` ms from its start (its `time`
 * plus BLOCKING_SLACK_MS). One timer for the whole acquire, however many calls it makes. It
 * does not listen to the caller's signal: callers share signals among many acquires (a
 * listener each would pile up on it), and the adapter's wait and the pauses already end at an
 * abort; only a call the backend does not answer outlives the abort, until the cut-off.
 */
class BlockingDeadline {
  readonly #at: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #passed = false;
  /** Settles the race under way. */
  #cut: ((value: typeof CUT_SHORT) => void) | undefined;

  constructor(readonly after: number) {
    this.#at = performance.now() + after;
    this.#arm();
  }

  /** `pending`'s outcome, or CUT_SHORT when the cut-off passes first. */
  race<T>(pending: Promise<T>): Promise<T | typeof CUT_SHORT> {
    if (this.#passed) {
      return Promise.resolve(CUT_SHORT);
    }
    return new Promise((resolve, reject) => {
      this.#cut = resolve;
      pending.then(resolve, reject);
    });
  }

  end(): void {
    clearTimeout(this.#timer);
    this.#cut = undefined;
  }

  /** Re-armed when it fires early, or past the timer range. */
  #arm(): void {
    const left = this.#at - performance.now();
    if (left > 0) {
      this.#timer = setTimeout(() => this.#arm(), Math.min(Math.ceil(left), MAX_TIMER_MS));
      return;
    }
    this.#passed = true;
    this.#cut?.(CUT_SHORT);
    this.#cut = undefined;
  }
}

/** Calls a run's function with what its kind receives (see {@link LockRunnable}). */
function callRunnable<TValue>(
  fn: LockRunnable<TValue>,
  run: HeldRun,
  fencingToken: number,
): TValue | PromiseLike<TValue> {
  if (typeof fn === "function") {
    return fn(new RunContext(run, fencingToken));
  }
  if (isInvokable(fn)) {
    return fn.invoke(new RunContext(run, fencingToken)) as TValue | PromiseLike<TValue>;
  }
  return fn.withSignal(run.signal);
}

/** What a `run*` function receives; its signal is made on first read. */
class RunContext implements LockRunContext {
  readonly #run: HeldRun;
  readonly fencingToken: number;

  constructor(run: HeldRun, fencingToken: number) {
    this.#run = run;
    this.fencingToken = fencingToken;
  }

  get signal(): AbortSignal {
    return this.#run.signal;
  }
}

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
    return new Task(
      (signal) => this.#run(fn, autoRefresh, undefined, true, signal) as Promise<TValue>,
    );
  }

  runBlockingOrFail<TValue>(
    fn: LockRunnable<TValue>,
    settings: LockRunBlockingSettings = {},
  ): Task<TValue> {
    checkRunnable(fn);
    const parsed = parseSettings("run settings", lockRunBlockingSettingsSchema, settings);
    return new Task(
      (signal) => this.#run(fn, parsed.autoRefresh, parsed, true, signal) as Promise<TValue>,
    );
  }

  run<TValue>(
    fn: LockRunnable<TValue>,
    settings: LockRunSettings = {},
  ): Task<LockRunResult<TValue>> {
    checkRunnable(fn);
    const { autoRefresh } = parseSettings("run settings", lockRunSettingsSchema, settings);
    return new Task(
      (signal) =>
        this.#run(fn, autoRefresh, undefined, false, signal) as Promise<LockRunResult<TValue>>,
    );
  }

  runBlocking<TValue>(
    fn: LockRunnable<TValue>,
    settings: LockRunBlockingSettings = {},
  ): Task<LockRunResult<TValue>> {
    checkRunnable(fn);
    const parsed = parseSettings("run settings", lockRunBlockingSettingsSchema, settings);
    return new Task(
      (signal) =>
        this.#run(fn, parsed.autoRefresh, parsed, false, signal) as Promise<LockRunResult<TValue>>,
    );
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
    let pending: Promise<LockAcquireResult>;
    try {
      pending = this.#context.adapter.acquire(this.#key.toString(), this.#owner, this.#ttl);
    } catch (error) {
      pending = Promise.reject(error);
    }
    return pending.then(
      (result) =>
        settle(this.#took(this.#checked("acquire", ANSWERS.acquire, result), requestedAt, signal)),
      (error: unknown) => {
        throw this.#backendError("acquire", error);
      },
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
        this.#waitFor(
          this.#context.adapter.release(this.#key.toString(), this.#owner).then(ignore, ignore),
        );
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
            return this.#context.adapter.release(this.#key.toString(), this.#owner).then(ignore);
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
    let pending: Promise<boolean>;
    try {
      pending = this.#context.adapter.release(this.#key.toString(), this.#owner);
    } catch (error) {
      pending = Promise.reject(error);
    }
    return pending.then(
      (released) => this.#released(this.#checked("release", ANSWERS.boolean, released)),
      (error: unknown) => {
        throw this.#backendError("release", error);
      },
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
  async #run<TValue>(
    fn: LockRunnable<TValue>,
    autoRefresh: boolean | Readonly<LockAutoRefreshSettings>,
    blocking: Readonly<LockBlockingSettings> | undefined,
    orFail: boolean,
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
    const run = new HeldRun(signal);
    this.#keepAlive(autoRefresh, run);
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
          if (await this.#context.adapter.release(key, this.#owner)) {
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

  /**
   * Refreshes the hold every interval until the run ends; the run's signal aborts when the hold
   * is lost, or may have ended by this lock's reckoning with no refresh answered in time.
   */
  #keepAlive(settings: boolean | Readonly<LockAutoRefreshSettings>, run: HeldRun): void {
    const ttl = this.#ttl;
    if (ttl === null) {
      return;
    }
    if (settings === false) {
      // Only a signal somebody reads needs the timer that aborts it.
      run.onSignal = () => this.#loseAtExpiry(run);
      return;
    }
    const interval = settings === true ? undefined : settings.interval;
    const maxHoldTime = settings === true ? undefined : settings.maxHoldTime;
    run.every = Math.min(
      interval?.toMilliseconds() ?? ttl.toMilliseconds() * LOCK_DEFAULTS.refreshFraction,
      MAX_TIMER_MS,
    );
    if (maxHoldTime !== undefined) {
      run.stopAt = performance.now() + maxHoldTime.toMilliseconds();
    }
    run.onDue = () => void this.#tick(run);
    this.#refreshLater(run);
  }

  /** Queues the run's next refresh; should the hold end before it is due, aborts then. */
  #refreshLater(run: HeldRun): void {
    RefreshQueue.join(run);
    if (run.dueAt >= (this.#expiresAt ?? Number.POSITIVE_INFINITY)) {
      this.#loseAtExpiry(run);
    }
  }

  async #tick(run: HeldRun): Promise<void> {
    if (run.stopped || run.lost) {
      return;
    }
    if (performance.now() >= run.stopAt) {
      // The cap is reached: the hold runs out one TTL after the last refresh.
      this.#loseAtExpiry(run);
      return;
    }
    // A refresh may never answer (ioredis queues commands while it reconnects): the signal
    // aborts when the hold may have ended, answered or not.
    if (run.expiryTimer === undefined) {
      this.#loseAtExpiry(run);
    }
    let refreshed: boolean | "error";
    try {
      // The lock's own TTL, whatever the provider's defaultRefreshTime (run's signal counts on it).
      refreshed = await this.#refresh(this.#ttl ?? undefined);
    } catch {
      refreshed = "error";
    }
    if (run.stopped || run.lost) {
      return;
    }
    if (refreshed === false || (refreshed === "error" && this.#untilExpiry() <= 0)) {
      this.#loseHold(run);
    } else if (refreshed === "error") {
      // A passing backend failure: try again before the hold runs out (the expiry timer stays).
      const retryIn = Math.min(run.every, this.#untilExpiry() / 2);
      run.timer = setTimeout(run.onDue, Math.max(0, Math.min(retryIn, MAX_TIMER_MS)));
    } else {
      clearTimeout(run.expiryTimer);
      run.expiryTimer = undefined;
      this.#refreshLater(run);
    }
  }

  /**
   * Aborts the run's signal when the hold may have ended. The time is read again when the timer
   * fires: a refresh may have moved it meanwhile, and timers are capped at MAX_TIMER_MS.
   */
  #loseAtExpiry(run: HeldRun): void {
    if (run.stopped || run.lost) {
      return;
    }
    clearTimeout(run.expiryTimer);
    const left = this.#untilExpiry();
    if (left <= 0) {
      this.#loseHold(run);
      return;
    }
    run.expiryTimer = setTimeout(
      () => this.#loseAtExpiry(run),
      Math.min(Math.ceil(left), MAX_TIMER_MS),
    );
  }

  #loseHold(run: HeldRun): void {
    run.lose(new LockLostError(this.#key.get(), this.#id));
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
    let pending: Promise<AnswerOf<TAnswer>>;
    try {
      pending = fn(this.#context.adapter, this.#key.toString());
    } catch (error) {
      pending = Promise.reject(error);
    }
    return pending.then(
      (value) => settle(this.#checked(operation, answer, value)),
      (error: unknown) => {
        throw this.#backendError(operation, error);
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
      const key = this.#key.toString();
      const owner = this.#owner;
      this.#waitFor(
        Promise.resolve(key)
          .then((stored) => adapter.release(stored, owner))
          .then(ignore, ignore),
      );
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
