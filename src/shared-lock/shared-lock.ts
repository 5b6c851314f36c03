import type { IKey } from "../namespace/namespace.js";
import { RUN, RUN_BLOCKING, RUN_BLOCKING_OR_FAIL, RUN_OR_FAIL } from "../primitive/run-held.js";
import { Task } from "../task/task.js";
import type { ITimeSpan, TimeSpan } from "../time-span/time-span.js";
import type {
  ISharedLock,
  SharedLockBlockingSettings,
  SharedLockRunBlockingSettings,
  SharedLockRunnable,
  SharedLockRunResult,
  SharedLockRunSettings,
} from "./contracts/shared-lock.js";
import type { ISharedLockState } from "./contracts/shared-lock-state.js";
import type { SharedLockContext } from "./shared-lock-context.js";
import { SharedLockReaderHold } from "./shared-lock-reader-hold.js";
import { type SharedLockSettings, SharedLockWriterHold } from "./shared-lock-writer-hold.js";

/**
 * A reader-writer lock on one key, for one owner; created by `SharedLockProvider.create`. See
 * `ISharedLock`. Its writer hold and its reader slot are two holds over the two sides of the
 * adapter (a `SharedLockWriterHold` and a `SharedLockReaderHold`); each method hands over to one.
 */
export class SharedLock implements ISharedLock {
  readonly #context: SharedLockContext;
  readonly #writer: SharedLockWriterHold;
  readonly #reader: SharedLockReaderHold;

  /** @internal Use `SharedLockProvider.create`. */
  constructor(settings: SharedLockSettings) {
    this.#context = settings.context;
    this.#writer = new SharedLockWriterHold(this, settings);
    this.#reader = new SharedLockReaderHold(this, settings);
  }

  /** @internal The context of the provider that made `sharedLock`, for its serialization only. */
  static contextOf(sharedLock: SharedLock): SharedLockContext {
    return sharedLock.#context;
  }

  /** @internal The credential of `sharedLock`, for its serialization only. */
  static ownerOf(sharedLock: SharedLock): string {
    return sharedLock.#writer.owner;
  }

  get key(): IKey {
    return this.#writer.key;
  }

  get id(): string {
    return this.#writer.id;
  }

  get limit(): number {
    return this.#reader.limit;
  }

  get ttl(): TimeSpan | null {
    return this.#writer.ttl;
  }

  get fencingToken(): number | null {
    return this.#writer.fencingToken ?? this.#reader.fencingToken;
  }

  acquireWriter(): Task<boolean> {
    return this.#writer.acquireTask();
  }

  acquireWriterOrFail(): Task<number> {
    return this.#writer.acquireOrFailTask();
  }

  acquireWriterBlocking(settings: SharedLockBlockingSettings = {}): Task<boolean> {
    return this.#writer.acquireBlockingTask(settings);
  }

  acquireWriterBlockingOrFail(settings: SharedLockBlockingSettings = {}): Task<number> {
    return this.#writer.acquireBlockingOrFailTask(settings);
  }

  releaseWriter(): Task<boolean> {
    return this.#writer.releaseTask();
  }

  releaseWriterOrFail(): Task<void> {
    return this.#writer.releaseOrFailTask();
  }

  forceReleaseWriter(): Task<boolean> {
    return new Task(() => this.#writer.forceReleaseWriter());
  }

  refreshWriter(ttl?: ITimeSpan): Task<boolean> {
    return this.#writer.refreshTask(ttl);
  }

  refreshWriterOrFail(ttl?: ITimeSpan): Task<void> {
    return this.#writer.refreshOrFailTask(ttl);
  }

  runWriterOrFail<TValue>(
    fn: SharedLockRunnable<TValue>,
    settings: SharedLockRunSettings = {},
  ): Task<TValue> {
    return this.#writer.runTask(fn, settings, RUN_OR_FAIL);
  }

  runWriterBlockingOrFail<TValue>(
    fn: SharedLockRunnable<TValue>,
    settings: SharedLockRunBlockingSettings = {},
  ): Task<TValue> {
    return this.#writer.runTask(fn, settings, RUN_BLOCKING_OR_FAIL);
  }

  runWriter<TValue>(
    fn: SharedLockRunnable<TValue>,
    settings: SharedLockRunSettings = {},
  ): Task<SharedLockRunResult<TValue>> {
    return this.#writer.runTask(fn, settings, RUN);
  }

  runWriterBlocking<TValue>(
    fn: SharedLockRunnable<TValue>,
    settings: SharedLockRunBlockingSettings = {},
  ): Task<SharedLockRunResult<TValue>> {
    return this.#writer.runTask(fn, settings, RUN_BLOCKING);
  }

  acquireReader(): Task<boolean> {
    return this.#reader.acquireTask();
  }

  acquireReaderOrFail(): Task<number> {
    return this.#reader.acquireOrFailTask();
  }

  acquireReaderBlocking(settings: SharedLockBlockingSettings = {}): Task<boolean> {
    return this.#reader.acquireBlockingTask(settings);
  }

  acquireReaderBlockingOrFail(settings: SharedLockBlockingSettings = {}): Task<number> {
    return this.#reader.acquireBlockingOrFailTask(settings);
  }

  releaseReader(): Task<boolean> {
    return this.#reader.releaseTask();
  }

  releaseReaderOrFail(): Task<void> {
    return this.#reader.releaseOrFailTask();
  }

  forceReleaseAllReaders(): Task<boolean> {
    return new Task(() => this.#reader.forceReleaseAllReaders());
  }

  refreshReader(ttl?: ITimeSpan): Task<boolean> {
    return this.#reader.refreshTask(ttl);
  }

  refreshReaderOrFail(ttl?: ITimeSpan): Task<void> {
    return this.#reader.refreshOrFailTask(ttl);
  }

  runReaderOrFail<TValue>(
    fn: SharedLockRunnable<TValue>,
    settings: SharedLockRunSettings = {},
  ): Task<TValue> {
    return this.#reader.runTask(fn, settings, RUN_OR_FAIL);
  }

  runReaderBlockingOrFail<TValue>(
    fn: SharedLockRunnable<TValue>,
    settings: SharedLockRunBlockingSettings = {},
  ): Task<TValue> {
    return this.#reader.runTask(fn, settings, RUN_BLOCKING_OR_FAIL);
  }

  runReader<TValue>(
    fn: SharedLockRunnable<TValue>,
    settings: SharedLockRunSettings = {},
  ): Task<SharedLockRunResult<TValue>> {
    return this.#reader.runTask(fn, settings, RUN);
  }

  runReaderBlocking<TValue>(
    fn: SharedLockRunnable<TValue>,
    settings: SharedLockRunBlockingSettings = {},
  ): Task<SharedLockRunResult<TValue>> {
    return this.#reader.runTask(fn, settings, RUN_BLOCKING);
  }

  forceRelease(): Task<boolean> {
    return new Task(() => this.#writer.forceRelease(this.#reader));
  }

  getState(): Task<ISharedLockState> {
    return new Task(() => this.#writer.getState(this.#reader));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    // Each does nothing when it holds nothing; one owner holds one side at a time.
    await Promise.all([this.#writer.dispose(), this.#reader.dispose()]);
  }
}
