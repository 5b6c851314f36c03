import type { IKey } from "../../namespace/namespace.js";
import type { ITask } from "../../task/task.js";
import type { ITimeSpan, TimeSpan } from "../../time-span/time-span.js";
import type { ISemaphoreState } from "./semaphore-state.js";

/** How long and how often a blocking acquire tries. */
export type SemaphoreBlockingSettings = {
  /**
   * How long to keep trying before giving up. Whatever the backend does, the acquire returns
   * by this time plus 250 ms: a backend call still unanswered then is given up (the acquire
   * fails, with a `TimeoutError` as the `LimitReachedSemaphoreError`'s cause, and
   * `UNEXPECTED_ERROR` is sent), and a slot the backend grants later is released again.
   * @default the provider's `defaultBlockingTime` (1 minute)
   */
  time?: ITimeSpan;
  /**
   * The pause between attempts when the adapter cannot signal a release. Never longer than
   * the soonest expiry of a live slot. With a signalling adapter a release wakes the waiter
   * (or hands it the slot) at once.
   * @default the provider's `defaultBlockingInterval` (100 ms)
   */
  interval?: ITimeSpan;
};

/** Keeping the slot alive while `run*` runs its function. */
export type SemaphoreAutoRefreshSettings = {
  /**
   * How often to refresh.
   * @default a third of the semaphore's TTL
   */
  interval?: ITimeSpan;
  /**
   * Stop refreshing after this long in total; the slot then expires one TTL later, and the
   * function's signal is aborted when it does.
   * @default no cap
   */
  maxHoldTime?: ITimeSpan;
};

/** Settings of `run` and `runOrFail`. */
export type SemaphoreRunSettings = {
  /**
   * Refresh the slot while the function runs (only for a semaphore with a TTL). When a refresh
   * fails the function's signal is aborted with a `SemaphoreSlotLostError` and
   * `FAILED_REFRESH` is sent. `false` turns it off (the signal still aborts when the slot may
   * have ended).
   * @default true (every third of the TTL)
   */
  autoRefresh?: boolean | SemaphoreAutoRefreshSettings;
};

/** Settings of `runBlocking` and `runBlockingOrFail`: a run with a blocking acquire. */
export type SemaphoreRunBlockingSettings = SemaphoreRunSettings & SemaphoreBlockingSettings;

/** What the function given to `run*` receives. */
export type SemaphoreRunContext = {
  /**
   * Aborted when the run is aborted, or with a `SemaphoreSlotLostError` when the slot is lost
   * or may have ended by the semaphore's own reckoning (from the moment the acquire or the last
   * successful refresh was sent, plus the TTL, less 1% of the TTL plus 2 ms).
   */
  signal: AbortSignal;
  /** The fencing token of this slot: pass it to the resource the semaphore protects. */
  fencingToken: number;
};

/**
 * A function (sync or async), an object with an `invoke` method, or a `Task`, run while the
 * slot is held. A function and `invoke` receive the {@link SemaphoreRunContext}.
 */
export type SemaphoreRunnable<TValue> =
  | ((context: SemaphoreRunContext) => TValue | PromiseLike<TValue>)
  | {
      /** Called as the function would be, with the run's context. */
      invoke(context: SemaphoreRunContext): TValue | PromiseLike<TValue>;
    }
  | ITask<TValue>;

/** The outcome of `run`/`runBlocking`: whether a slot was taken, and the function's value. */
export type SemaphoreRunResult<TValue> =
  | [acquired: true, value: TValue]
  | [acquired: false, value: null];

/**
 * One slot of a counting semaphore: at most `limit` slots of a key are live at once, on the
 * backend's clock. Every method returns a lazy `Task`: await it (or `detach()` it) to run it,
 * and compose it with `pipe` (`retry`, `timeout`).
 *
 * "No slot free" is a `false` (or a `LimitReachedSemaphoreError` from the `…OrFail` forms); a
 * backend failure is a `SemaphoreBackendError`, never a `false`.
 */
export type ISemaphore = {
  /** The key: `key.get()` as the caller wrote it, `key.toString()` as stored (namespaced). */
  readonly key: IKey;
  /**
   * The public id of this semaphore's slot: what events and errors show. A generated id is not
   * enough to act as the holder (the semaphore also holds a secret proof, which only its
   * serialization carries); an explicit `slotId` is both the id and the credential.
   */
  readonly slotId: string;
  /** The most slots of the key this semaphore shares it with (its own included). */
  readonly limit: number;
  /** `null`: slots never expire. */
  readonly ttl: TimeSpan | null;
  /**
   * The fencing token of this instance's current slot: set by a successful acquire and by a
   * `getState()` that finds the slot this semaphore's; `null` before either and after a release.
   */
  readonly fencingToken: number | null;

  /** `true` when a slot was taken (or this one re-taken: the TTL restarts), `false` when none is free. */
  acquire(): ITask<boolean>;
  /**
   * Resolves to the slot's fencing token.
   * @throws LimitReachedSemaphoreError when no slot is free.
   */
  acquireOrFail(): ITask<number>;
  /** Tries until a slot is taken or `time` runs out; waits for a release where the adapter signals. */
  acquireBlocking(settings?: SemaphoreBlockingSettings): ITask<boolean>;
  /** @throws LimitReachedSemaphoreError when `time` ran out. */
  acquireBlockingOrFail(settings?: SemaphoreBlockingSettings): ITask<number>;
  /** `false`: this semaphore held no slot; nothing changed. Releasing twice is harmless. */
  release(): ITask<boolean>;
  /** @throws FailedReleaseSemaphoreError when this semaphore held no slot. */
  releaseOrFail(): ITask<void>;
  /**
   * Releases the slot this instance took (and has not released), for `await using`; does
   * nothing when it holds none. Never throws: a failed release is reported and tried again.
   */
  [Symbol.asyncDispose](): Promise<void>;
  /** Frees every slot of the key, whoever holds them; `false` when none was live. */
  forceReleaseAll(): ITask<boolean>;
  /**
   * Restarts the slot's TTL: with `ttl`, else the provider's `defaultRefreshTime`, else the
   * semaphore's own. `false`: this semaphore holds no slot, or it never expires (`ttl: null`).
   */
  refresh(ttl?: ITimeSpan): ITask<boolean>;
  /** @throws FailedRefreshSemaphoreError in the `false` cases of `refresh`. */
  refreshOrFail(ttl?: ITimeSpan): ITask<void>;
  /**
   * The key's slots now, by the backend's clock, as this semaphore sees them. Changes nothing in
   * the store; when this semaphore holds a slot, `fencingToken` takes the store's token.
   */
  getState(): ITask<ISemaphoreState>;
  /**
   * Acquires (or throws `LimitReachedSemaphoreError`), runs `fn`, and releases in a `finally`.
   * The release never replaces `fn`'s result or error.
   */
  runOrFail<TValue>(fn: SemaphoreRunnable<TValue>, settings?: SemaphoreRunSettings): ITask<TValue>;
  /** `runOrFail` with a blocking acquire. */
  runBlockingOrFail<TValue>(
    fn: SemaphoreRunnable<TValue>,
    settings?: SemaphoreRunBlockingSettings,
  ): ITask<TValue>;
  /** `[true, value]` when a slot was taken and `fn` ran, `[false, null]` when none was free. */
  run<TValue>(
    fn: SemaphoreRunnable<TValue>,
    settings?: SemaphoreRunSettings,
  ): ITask<SemaphoreRunResult<TValue>>;
  /** `run` with a blocking acquire. */
  runBlocking<TValue>(
    fn: SemaphoreRunnable<TValue>,
    settings?: SemaphoreRunBlockingSettings,
  ): ITask<SemaphoreRunResult<TValue>>;
};
