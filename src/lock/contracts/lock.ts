import type { IKey } from "../../namespace/namespace.js";
import type { ITask } from "../../task/task.js";
import type { ITimeSpan, TimeSpan } from "../../time-span/time-span.js";
import type { ILockState } from "./lock-state.js";

/** How long and how often a blocking acquire tries. */
export type LockBlockingSettings = {
  /**
   * How long to keep trying before giving up. Whatever the backend does, the acquire returns
   * by this time plus 250 ms: a backend call still unanswered then is given up (the acquire
   * fails, with a `TimeoutError` as the `FailedAcquireLockError`'s cause, and `UNEXPECTED_ERROR`
   * is sent), and a hold the backend grants later is released again.
   * @default the provider's `defaultBlockingTime` (1 minute)
   */
  time?: ITimeSpan;
  /**
   * The pause between attempts when the adapter cannot signal a release. Never longer than the
   * holder's remaining time. With a signalling adapter a release wakes the waiter at once.
   * @default the provider's `defaultBlockingInterval` (100 ms)
   */
  interval?: ITimeSpan;
};

/** Keeping the lock alive while `run*` runs its function. */
export type LockAutoRefreshSettings = {
  /**
   * How often to refresh.
   * @default a third of the lock's TTL
   */
  interval?: ITimeSpan;
  /**
   * Stop refreshing after this long in total; the hold then expires one TTL later, and the
   * function's signal is aborted when it does.
   * @default no cap
   */
  maxHoldTime?: ITimeSpan;
};

/** Settings of `run` and `runOrFail`. */
export type LockRunSettings = {
  /**
   * Refresh the lock while the function runs (only for a lock with a TTL). When a refresh
   * fails the function's signal is aborted with a `LockLostError` and `FAILED_REFRESH` is sent.
   * `false` turns it off (the signal still aborts when the hold may have ended).
   * @default true (every third of the TTL)
   */
  autoRefresh?: boolean | LockAutoRefreshSettings;
};

/** Settings of `runBlocking` and `runBlockingOrFail`: a run with a blocking acquire. */
export type LockRunBlockingSettings = LockRunSettings & LockBlockingSettings;

/** What the function given to `run*` receives. */
export type LockRunContext = {
  /**
   * Aborted when the run is aborted, or with a `LockLostError` when the lock is lost or may have
   * ended by the lock's own reckoning, answered refresh or not: from the moment the acquire (or
   * the last successful refresh) was sent, plus the TTL, less 1% of the TTL plus 2 ms.
   */
  signal: AbortSignal;
  /** The fencing token of this hold: pass it to the resource the lock protects. */
  fencingToken: number;
};

/**
 * A function (sync or async), an object with an `invoke` method (daiso-core's `Invokable`), or a
 * `Task`, run while the lock is held. A function and `invoke` receive the {@link LockRunContext}.
 */
export type LockRunnable<TValue> =
  | ((context: LockRunContext) => TValue | PromiseLike<TValue>)
  | {
      /** Called as the function would be, with the run's context. */
      invoke(context: LockRunContext): TValue | PromiseLike<TValue>;
    }
  | ITask<TValue>;

/**
 * Makes the public id of each lock a provider creates without a `lockId`: a function, or an
 * object with an `invoke` method (daiso-core's `Invokable<[], string>`).
 */
export type LockIdFactory =
  | (() => string)
  | {
      /** Returns the new lock's public id. */
      invoke(): string;
    };

/** The outcome of `run`/`runBlocking`: whether the lock was taken, and the function's value. */
export type LockRunResult<TValue> =
  | [acquired: true, value: TValue]
  | [acquired: false, value: null];

/**
 * A lock on one key, owned by one id. Every method returns a lazy `Task`: await it (or
 * `detach()` it) to run it, and compose it with `pipe` (`retry`, `timeout`).
 *
 * "Held by someone else" is a `false` (or a `Failed…LockError` from the `…OrFail` forms); a
 * backend failure is a `LockBackendError`, never a `false`.
 */
export type ILock = {
  /**
   * The key: `key.get()` is the key as the caller wrote it, `key.toString()` the key as stored
   * (with the namespace), as daiso-core's `IKey`.
   */
  readonly key: IKey;
  /**
   * The owner's public id: what `getState`'s `owner`, events and errors show. A generated id
   * (32 hex digits) is not enough to act as the owner: the lock also holds a secret proof, which
   * only its serialization carries. An explicit `lockId` is both the id and the credential.
   */
  readonly id: string;
  /** `null`: holds never expire. */
  readonly ttl: TimeSpan | null;
  /**
   * The fencing token of this instance's current hold, as the store issued it: set by a
   * successful acquire, and by a `getState()` that finds the hold this lock's; `null` before
   * either (a revived lock starts with `null`) and after a release.
   */
  readonly fencingToken: number | null;

  /** `true` when taken (or re-taken by this owner: the TTL restarts), `false` when held by another. */
  acquire(): ITask<boolean>;
  /**
   * Resolves to the fencing token.
   * @throws FailedAcquireLockError when held by another.
   */
  acquireOrFail(): ITask<number>;
  /** Tries until taken or `time` runs out; waits for a release signal where the adapter has one. */
  acquireBlocking(settings?: LockBlockingSettings): ITask<boolean>;
  /** @throws FailedAcquireLockError when `time` ran out. */
  acquireBlockingOrFail(settings?: LockBlockingSettings): ITask<number>;
  /** `false`: this lock did not hold the key; nothing changed. Releasing twice is harmless. */
  release(): ITask<boolean>;
  /** @throws FailedReleaseLockError when this lock did not hold the key. */
  releaseOrFail(): ITask<void>;
  /**
   * Releases the hold this instance took (and has not released), so that `await using` frees
   * the key when the block ends, however it ends; does nothing when it holds none. Never
   * throws: a release that fails is reported (`UNEXPECTED_ERROR`) and tried again in the
   * background, and one that finds the key no longer this owner's sends `FAILED_RELEASE`.
   *
   * @example
   * await using lock = provider.create("report");
   * if (await lock.acquire()) {
   *   await buildReport();
   * } // released here
   */
  [Symbol.asyncDispose](): Promise<void>;
  /** Frees the key whoever holds it; `false` when nobody did. */
  forceRelease(): ITask<boolean>;
  /**
   * Restarts the TTL: with `ttl`, else the provider's `defaultRefreshTime` when it has one, else
   * the lock's own. `lock.ttl` stays what it was created with. `false`: this lock does not hold
   * the key, or the lock never expires (`ttl: null`); nothing changed.
   */
  refresh(ttl?: ITimeSpan): ITask<boolean>;
  /** @throws FailedRefreshLockError in the `false` cases of `refresh`. */
  refreshOrFail(ttl?: ITimeSpan): ITask<void>;
  /**
   * Who holds the key now, by the backend's clock. Changes nothing in the store; when this lock
   * holds the key, `fencingToken` takes the store's token.
   */
  getState(): ITask<ILockState>;
  /**
   * Acquires (or throws `FailedAcquireLockError`), runs `fn`, and releases in a `finally`. The
   * release never replaces `fn`'s result or error.
   */
  runOrFail<TValue>(fn: LockRunnable<TValue>, settings?: LockRunSettings): ITask<TValue>;
  /** `runOrFail` with a blocking acquire. */
  runBlockingOrFail<TValue>(
    fn: LockRunnable<TValue>,
    settings?: LockRunBlockingSettings,
  ): ITask<TValue>;
  /** `[true, value]` when the lock was taken and `fn` ran, `[false, null]` when it was held. */
  run<TValue>(fn: LockRunnable<TValue>, settings?: LockRunSettings): ITask<LockRunResult<TValue>>;
  /** `run` with a blocking acquire. */
  runBlocking<TValue>(
    fn: LockRunnable<TValue>,
    settings?: LockRunBlockingSettings,
  ): ITask<LockRunResult<TValue>>;
};
