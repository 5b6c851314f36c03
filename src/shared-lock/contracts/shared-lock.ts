import type { IKey } from "../../namespace/namespace.js";
import type { ITask } from "../../task/task.js";
import type { ITimeSpan, TimeSpan } from "../../time-span/time-span.js";
import type { ISharedLockState } from "./shared-lock-state.js";

/** How long and how often a blocking acquire (writer or reader) tries. */
export type SharedLockBlockingSettings = {
  /**
   * How long to keep trying before giving up. Whatever the backend does, the acquire returns
   * by this time plus 250 ms: a backend call still unanswered then is given up (the acquire
   * fails, with a `TimeoutError` as the error's cause, and `UNEXPECTED_ERROR` is sent), and a
   * hold the backend grants later is released again.
   * @default the provider's `defaultBlockingTime` (1 minute)
   */
  time?: ITimeSpan;
  /**
   * The pause between attempts when the adapter cannot signal a release. Never longer than
   * the soonest expiry of what blocks the caller. With a signalling adapter the key passes at
   * the release itself, in arrival order. On a polling adapter a waiting writer's intent lasts
   * this long plus a grace between its attempts: while it does, new readers stay out.
   * @default the provider's `defaultBlockingInterval` (100 ms)
   */
  interval?: ITimeSpan;
};

/** Keeping the writer hold or reader slot alive while `run*` runs its function. */
export type SharedLockAutoRefreshSettings = {
  /**
   * How often to refresh.
   * @default a third of the shared lock's TTL
   */
  interval?: ITimeSpan;
  /**
   * Stop refreshing after this long in total; the hold then expires one TTL later, and the
   * function's signal is aborted when it does.
   * @default no cap
   */
  maxHoldTime?: ITimeSpan;
};

/** Settings of the `run*` methods without a blocking acquire. */
export type SharedLockRunSettings = {
  /**
   * Refresh the hold while the function runs (only for a shared lock with a TTL). When a
   * refresh fails the function's signal is aborted with a `SharedLockLostError` and
   * `WRITER_FAILED_REFRESH` or `READER_FAILED_REFRESH` is sent. `false` turns it off (the
   * signal still aborts when the hold may have ended).
   * @default true (every third of the TTL)
   */
  autoRefresh?: boolean | SharedLockAutoRefreshSettings;
};

/** Settings of the `run*Blocking*` methods: a run with a blocking acquire. */
export type SharedLockRunBlockingSettings = SharedLockRunSettings & SharedLockBlockingSettings;

/** What the function given to `run*` receives. */
export type SharedLockRunContext = {
  /**
   * Aborted when the run is aborted, or with a `SharedLockLostError` when the hold is lost or
   * may have ended by the shared lock's own reckoning (from the moment the acquire or the last
   * successful refresh was sent, plus the TTL, less 1% of the TTL plus 2 ms).
   */
  signal: AbortSignal;
  /**
   * The fencing token of this hold: pass it to the resource the shared lock protects. A
   * writer's is greater than every token issued for the key before it, readers' included.
   */
  fencingToken: number;
};

/**
 * A function (sync or async), an object with an `invoke` method, or a `Task`, run while the
 * hold is kept. A function and `invoke` receive the {@link SharedLockRunContext}.
 */
export type SharedLockRunnable<TValue> =
  | ((context: SharedLockRunContext) => TValue | PromiseLike<TValue>)
  | {
      /** Called as the function would be, with the run's context. */
      invoke(context: SharedLockRunContext): TValue | PromiseLike<TValue>;
    }
  | ITask<TValue>;

/** The outcome of a non-throwing `run*`: whether the hold was taken, and the function's value. */
export type SharedLockRunResult<TValue> =
  | [acquired: true, value: TValue]
  | [acquired: false, value: null];

/**
 * A reader-writer lock on one key, owned by one id: one writer at a time, or up to `limit`
 * readers together, never both, on the backend's clock. Once a writer waits, new readers wait
 * behind it (no writer starvation); where the adapter can signal, the key passes in arrival
 * order at each release. An expired reader never keeps a writer out. Every method returns a
 * lazy `Task`: await it (or `detach()` it) to run it, and compose it with `pipe` (`retry`,
 * `timeout`).
 *
 * One shared lock holds one side at a time: while it is the writer its reader acquires are
 * refused, and while it holds a reader slot its writer acquires are refused (release first;
 * there is no upgrade, which would deadlock two readers upgrading together).
 *
 * "Held" is a `false` (or a `FailedAcquireWriterLockError` / `LimitReachedReaderSemaphoreError`
 * from the `…OrFail` forms); a backend failure is a `SharedLockBackendError`, never a `false`.
 */
export type ISharedLock = {
  /** The key: `key.get()` as the caller wrote it, `key.toString()` as stored (namespaced). */
  readonly key: IKey;
  /**
   * The owner's public id: what `getState`'s `owner`, events and errors show. A generated id is
   * not enough to act as the owner (the shared lock also holds a secret proof, which only its
   * serialization carries); an explicit `lockId` is both the id and the credential.
   */
  readonly id: string;
  /** The most readers of the key this shared lock shares it with (its own reader included). */
  readonly limit: number;
  /** `null`: holds never expire. */
  readonly ttl: TimeSpan | null;
  /**
   * The fencing token of this instance's current hold, writer or reader, as the store issued
   * it: set by a successful acquire and by a `getState()` that finds the hold this lock's;
   * `null` before either and after a release.
   */
  readonly fencingToken: number | null;

  /**
   * `true` when the key was taken as writer (or re-taken by its writer: the TTL restarts);
   * `false` when a writer or readers hold it, or a writer that came first waits for it.
   */
  acquireWriter(): ITask<boolean>;
  /**
   * Resolves to the writer hold's fencing token.
   * @throws FailedAcquireWriterLockError in the `false` cases of `acquireWriter`.
   */
  acquireWriterOrFail(): ITask<number>;
  /**
   * Tries until the key is taken as writer or `time` runs out. While it waits, no new reader
   * enters; where the adapter signals, the last reader out (or the writer before it) hands it
   * the key.
   */
  acquireWriterBlocking(settings?: SharedLockBlockingSettings): ITask<boolean>;
  /** @throws FailedAcquireWriterLockError when `time` ran out. */
  acquireWriterBlockingOrFail(settings?: SharedLockBlockingSettings): ITask<number>;
  /** `false`: this shared lock was not the key's writer; nothing changed. Releasing twice is harmless. */
  releaseWriter(): ITask<boolean>;
  /** @throws FailedReleaseWriterLockError when this shared lock was not the key's writer. */
  releaseWriterOrFail(): ITask<void>;
  /** Frees the key's writer hold, whoever holds it; `false` when no writer was live. */
  forceReleaseWriter(): ITask<boolean>;
  /**
   * Restarts the writer hold's TTL: with `ttl`, else the provider's `defaultRefreshTime`, else
   * the shared lock's own. `false`: this shared lock is not the writer, or it never expires.
   */
  refreshWriter(ttl?: ITimeSpan): ITask<boolean>;
  /** @throws FailedRefreshWriterLockError in the `false` cases of `refreshWriter`. */
  refreshWriterOrFail(ttl?: ITimeSpan): ITask<void>;
  /**
   * Takes the key as writer (or throws `FailedAcquireWriterLockError`), runs `fn`, and
   * releases in a `finally`. The release never replaces `fn`'s result or error.
   */
  runWriterOrFail<TValue>(
    fn: SharedLockRunnable<TValue>,
    settings?: SharedLockRunSettings,
  ): ITask<TValue>;
  /** `runWriterOrFail` with a blocking acquire. */
  runWriterBlockingOrFail<TValue>(
    fn: SharedLockRunnable<TValue>,
    settings?: SharedLockRunBlockingSettings,
  ): ITask<TValue>;
  /** `[true, value]` when the key was taken as writer and `fn` ran, `[false, null]` when it was not. */
  runWriter<TValue>(
    fn: SharedLockRunnable<TValue>,
    settings?: SharedLockRunSettings,
  ): ITask<SharedLockRunResult<TValue>>;
  /** `runWriter` with a blocking acquire. */
  runWriterBlocking<TValue>(
    fn: SharedLockRunnable<TValue>,
    settings?: SharedLockRunBlockingSettings,
  ): ITask<SharedLockRunResult<TValue>>;

  /**
   * `true` when a reader slot was taken (or this one re-taken: the TTL restarts, even while a
   * writer waits); `false` when a writer holds the key or waits for it, or no slot is free.
   */
  acquireReader(): ITask<boolean>;
  /**
   * Resolves to the reader slot's fencing token.
   * @throws LimitReachedReaderSemaphoreError in the `false` cases of `acquireReader`.
   */
  acquireReaderOrFail(): ITask<number>;
  /**
   * Tries until a reader slot is taken or `time` runs out; where the adapter signals, a
   * writer's release admits the readers queued before the next writer together.
   */
  acquireReaderBlocking(settings?: SharedLockBlockingSettings): ITask<boolean>;
  /** @throws LimitReachedReaderSemaphoreError when `time` ran out. */
  acquireReaderBlockingOrFail(settings?: SharedLockBlockingSettings): ITask<number>;
  /** `false`: this shared lock held no reader slot; nothing changed. Releasing twice is harmless. */
  releaseReader(): ITask<boolean>;
  /** @throws FailedReleaseReaderSemaphoreError when this shared lock held no reader slot. */
  releaseReaderOrFail(): ITask<void>;
  /** Frees every reader slot of the key, whoever holds them; `false` when none was live. */
  forceReleaseAllReaders(): ITask<boolean>;
  /**
   * Restarts the reader slot's TTL: with `ttl`, else the provider's `defaultRefreshTime`, else
   * the shared lock's own. `false`: this shared lock holds no reader slot, or it never expires.
   */
  refreshReader(ttl?: ITimeSpan): ITask<boolean>;
  /** @throws FailedRefreshReaderSemaphoreError in the `false` cases of `refreshReader`. */
  refreshReaderOrFail(ttl?: ITimeSpan): ITask<void>;
  /**
   * Takes a reader slot (or throws `LimitReachedReaderSemaphoreError`), runs `fn`, and
   * releases in a `finally`. The release never replaces `fn`'s result or error.
   */
  runReaderOrFail<TValue>(
    fn: SharedLockRunnable<TValue>,
    settings?: SharedLockRunSettings,
  ): ITask<TValue>;
  /** `runReaderOrFail` with a blocking acquire. */
  runReaderBlockingOrFail<TValue>(
    fn: SharedLockRunnable<TValue>,
    settings?: SharedLockRunBlockingSettings,
  ): ITask<TValue>;
  /** `[true, value]` when a reader slot was taken and `fn` ran, `[false, null]` when none was. */
  runReader<TValue>(
    fn: SharedLockRunnable<TValue>,
    settings?: SharedLockRunSettings,
  ): ITask<SharedLockRunResult<TValue>>;
  /** `runReader` with a blocking acquire. */
  runReaderBlocking<TValue>(
    fn: SharedLockRunnable<TValue>,
    settings?: SharedLockRunBlockingSettings,
  ): ITask<SharedLockRunResult<TValue>>;

  /** Frees the key's writer and every reader slot, whoever holds them; `false` when nobody did. */
  forceRelease(): ITask<boolean>;
  /**
   * Who holds the key now, by the backend's clock, as this shared lock sees it. Changes nothing
   * in the store; when this shared lock holds the key (either side), `fencingToken` takes the
   * store's token.
   */
  getState(): ITask<ISharedLockState>;
  /**
   * Releases the hold this instance took (writer or reader, and has not released), for
   * `await using`; does nothing when it holds none. Never throws: a failed release is reported
   * and tried again in the background.
   */
  [Symbol.asyncDispose](): Promise<void>;
};
