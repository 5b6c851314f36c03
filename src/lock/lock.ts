import type { IKey } from "../namespace/namespace.js";
import { publicOwner } from "../primitive/owner.js";
import { RUN, RUN_BLOCKING, RUN_BLOCKING_OR_FAIL, RUN_OR_FAIL } from "../primitive/run-held.js";
import { Task } from "../task/task.js";
import type { ITimeSpan, TimeSpan } from "../time-span/time-span.js";
import type {
  ILock,
  LockBlockingSettings,
  LockRunBlockingSettings,
  LockRunnable,
  LockRunResult,
  LockRunSettings,
} from "./contracts/lock.js";
import type { ILockState } from "./contracts/lock-state.js";
import type { LockContext } from "./lock-context.js";
import { LockHold } from "./lock-hold.js";

/**
 * A lock on one key for one owner; created by `LockProvider.create`. See `ILock`. Its hold (the
 * token, the expiry, the adapter calls and their reports, the Tasks its methods return) is a
 * `LockHold`.
 */
export class Lock implements ILock {
  readonly #hold: LockHold;

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
    this.#hold = new LockHold(this, context, key, owner, ttl, id);
  }

  /** @internal The context of the provider that made `lock`, for its serialization only. */
  static contextOf(lock: Lock): LockContext {
    return lock.#hold.context;
  }

  /** @internal The credential of `lock`, for its serialization only. */
  static ownerOf(lock: Lock): string {
    return lock.#hold.owner;
  }

  get key(): IKey {
    return this.#hold.key;
  }

  get id(): string {
    return this.#hold.id;
  }

  get ttl(): TimeSpan | null {
    return this.#hold.ttl;
  }

  get fencingToken(): number | null {
    return this.#hold.fencingToken;
  }

  acquire(): Task<boolean> {
    return this.#hold.acquireTask();
  }

  acquireOrFail(): Task<number> {
    return this.#hold.acquireOrFailTask();
  }

  acquireBlocking(settings: LockBlockingSettings = {}): Task<boolean> {
    return this.#hold.acquireBlockingTask(settings);
  }

  acquireBlockingOrFail(settings: LockBlockingSettings = {}): Task<number> {
    return this.#hold.acquireBlockingOrFailTask(settings);
  }

  release(): Task<boolean> {
    return this.#hold.releaseTask();
  }

  releaseOrFail(): Task<void> {
    return this.#hold.releaseOrFailTask();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.#hold.dispose();
  }

  forceRelease(): Task<boolean> {
    return new Task(() => this.#hold.forceRelease());
  }

  refresh(ttl?: ITimeSpan): Task<boolean> {
    return this.#hold.refreshTask(ttl);
  }

  refreshOrFail(ttl?: ITimeSpan): Task<void> {
    return this.#hold.refreshOrFailTask(ttl);
  }

  getState(): Task<ILockState> {
    return new Task(() => this.#hold.getState());
  }

  runOrFail<TValue>(fn: LockRunnable<TValue>, settings: LockRunSettings = {}): Task<TValue> {
    return this.#hold.runTask(fn, settings, RUN_OR_FAIL);
  }

  runBlockingOrFail<TValue>(
    fn: LockRunnable<TValue>,
    settings: LockRunBlockingSettings = {},
  ): Task<TValue> {
    return this.#hold.runTask(fn, settings, RUN_BLOCKING_OR_FAIL);
  }

  run<TValue>(
    fn: LockRunnable<TValue>,
    settings: LockRunSettings = {},
  ): Task<LockRunResult<TValue>> {
    return this.#hold.runTask(fn, settings, RUN);
  }

  runBlocking<TValue>(
    fn: LockRunnable<TValue>,
    settings: LockRunBlockingSettings = {},
  ): Task<LockRunResult<TValue>> {
    return this.#hold.runTask(fn, settings, RUN_BLOCKING);
  }
}
