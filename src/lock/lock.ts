import type { IKey } from "../namespace/namespace.js";
import { HeldRun } from "../primitive/keep-alive.js";
import { publicOwner } from "../primitive/owner.js";
import {
  blockingSettingsSchema,
  refreshTtlSchema,
  runBlockingSettingsSchema,
  runSettingsSchema,
} from "../primitive/primitive-settings.js";
import { callRunnable, checkRunnable } from "../primitive/run-context.js";
import { parseSettings } from "../settings/parse-settings.js";
import { Task } from "../task/task.js";
import type { ITimeSpan, TimeSpan } from "../time-span/time-span.js";
import type {
  ILock,
  LockAutoRefreshSettings,
  LockBlockingSettings,
  LockRunBlockingSettings,
  LockRunnable,
  LockRunResult,
  LockRunSettings,
} from "./contracts/lock.js";
import {
  FailedAcquireLockError,
  FailedRefreshLockError,
  FailedReleaseLockError,
} from "./contracts/lock-errors.js";
import { LOCK_EVENTS } from "./contracts/lock-events.js";
import type { ILockState } from "./contracts/lock-state.js";
import type { LockContext } from "./lock-context.js";
import { type BlockingAcquireResult, LockHold } from "./lock-hold.js";
import { LOCK_DEFAULTS } from "./lock-settings.js";

const identity = <T>(value: T): T => value;

/** A `run*`'s parsed settings: `time` and `interval` only count when it blocks. */
type RunSettings = Readonly<LockBlockingSettings> & {
  readonly autoRefresh: boolean | Readonly<LockAutoRefreshSettings>;
};

/** How a `run*` takes the lock and answers (see `Lock.#run`): one constant per method. */
type RunMode = {
  /** Waits for the lock as `acquireBlocking` does; else one attempt. */
  readonly blocking: boolean;
  /** Resolves to fn's value and throws FailedAcquireLockError; else resolves to a LockRunResult. */
  readonly orFail: boolean;
};

const RUN = { blocking: false, orFail: false } as const;
const RUN_OR_FAIL = { blocking: false, orFail: true } as const;
const RUN_BLOCKING = { blocking: true, orFail: false } as const;
const RUN_BLOCKING_OR_FAIL = { blocking: true, orFail: true } as const;

/**
 * A lock on one key for one owner; created by `LockProvider.create`. See `ILock`. Its hold (the
 * token, the expiry, the adapter calls and their reports) is a `LockHold`; a lock turns its
 * settings into calls on it, and runs functions while it is held.
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
    return new Task((signal) =>
      this.#hold.tryAcquire(signal, (result) => {
        this.#announce(result);
        return result.acquired;
      }),
    );
  }

  acquireOrFail(): Task<number> {
    return new Task((signal) => this.#hold.tryAcquire(signal, (result) => this.#orFail(result)));
  }

  acquireBlocking(settings: LockBlockingSettings = {}): Task<boolean> {
    const parsed = parseSettings("blocking settings", blockingSettingsSchema, settings);
    return new Task(async (signal) => {
      const result = await this.#hold.acquireBlocking(parsed, signal);
      this.#announce(result);
      return result.acquired;
    });
  }

  acquireBlockingOrFail(settings: LockBlockingSettings = {}): Task<number> {
    const parsed = parseSettings("blocking settings", blockingSettingsSchema, settings);
    return new Task(async (signal) =>
      this.#orFail(await this.#hold.acquireBlocking(parsed, signal)),
    );
  }

  release(): Task<boolean> {
    return new Task(() => this.#hold.release());
  }

  releaseOrFail(): Task<void> {
    return new Task(async () => {
      if (!(await this.#hold.release())) {
        throw new FailedReleaseLockError(this.key.get(), this.id);
      }
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const hold = this.#hold;
    if (hold.fencingToken === null) {
      return;
    }
    try {
      await hold.release();
    } catch {
      // Reported (UNEXPECTED_ERROR) by the release; a dispose never throws over the block's outcome.
      hold.retryRelease();
    }
  }

  forceRelease(): Task<boolean> {
    return new Task(() => this.#hold.forceRelease());
  }

  refresh(ttl?: ITimeSpan): Task<boolean> {
    const parsed = parseSettings("refresh ttl", refreshTtlSchema, ttl);
    return new Task(() => this.#hold.refreshFor(parsed));
  }

  refreshOrFail(ttl?: ITimeSpan): Task<void> {
    const parsed = parseSettings("refresh ttl", refreshTtlSchema, ttl);
    return new Task(async () => {
      if (!(await this.#hold.refreshFor(parsed))) {
        throw new FailedRefreshLockError(this.key.get(), this.id);
      }
    });
  }

  getState(): Task<ILockState> {
    return new Task(() => this.#hold.getState());
  }

  runOrFail<TValue>(fn: LockRunnable<TValue>, settings: LockRunSettings = {}): Task<TValue> {
    checkRunnable(fn);
    return this.#run(fn, parseSettings("run settings", runSettingsSchema, settings), RUN_OR_FAIL);
  }

  runBlockingOrFail<TValue>(
    fn: LockRunnable<TValue>,
    settings: LockRunBlockingSettings = {},
  ): Task<TValue> {
    checkRunnable(fn);
    const parsed = parseSettings("run settings", runBlockingSettingsSchema, settings);
    return this.#run(fn, parsed, RUN_BLOCKING_OR_FAIL);
  }

  run<TValue>(
    fn: LockRunnable<TValue>,
    settings: LockRunSettings = {},
  ): Task<LockRunResult<TValue>> {
    checkRunnable(fn);
    return this.#run(fn, parseSettings("run settings", runSettingsSchema, settings), RUN);
  }

  runBlocking<TValue>(
    fn: LockRunnable<TValue>,
    settings: LockRunBlockingSettings = {},
  ): Task<LockRunResult<TValue>> {
    checkRunnable(fn);
    const parsed = parseSettings("run settings", runBlockingSettingsSchema, settings);
    return this.#run(fn, parsed, RUN_BLOCKING);
  }

  /**
   * Every `run*`: a Task of {@link #runHeld}. Resolves to fn's value when `orFail` (which throws
   * FailedAcquireLockError when the lock is not taken), else to a LockRunResult.
   */
  #run<TValue>(
    fn: LockRunnable<TValue>,
    settings: RunSettings,
    mode: RunMode & { orFail: true },
  ): Task<TValue>;
  #run<TValue>(
    fn: LockRunnable<TValue>,
    settings: RunSettings,
    mode: RunMode & { orFail: false },
  ): Task<LockRunResult<TValue>>;
  #run<TValue>(
    fn: LockRunnable<TValue>,
    settings: RunSettings,
    mode: RunMode,
  ): Task<TValue | LockRunResult<TValue>> {
    return new Task((signal) => this.#runHeld(fn, settings, mode, signal));
  }

  /**
   * Every `run*`, in one async step (each layer costs a promise and a tick): takes the lock
   * (blocking when `blocking` is given), runs `fn` while held and keeps the hold alive, and
   * always releases; the release never masks fn's outcome.
   */
  async #runHeld<TValue>(
    fn: LockRunnable<TValue>,
    settings: RunSettings,
    { blocking, orFail }: RunMode,
    signal: AbortSignal,
  ): Promise<TValue | LockRunResult<TValue>> {
    const hold = this.#hold;
    const result = blocking
      ? await hold.acquireBlocking(settings, signal)
      : await hold.tryAcquire(signal, identity);
    if (orFail) {
      this.#orFail(result);
    } else {
      this.#announce(result);
    }
    if (!result.acquired) {
      return [false, null];
    }
    const run = new HeldRun(signal, hold);
    const { ttl } = hold;
    if (ttl !== null) {
      run.keepAlive(settings.autoRefresh, ttl.toMilliseconds(), LOCK_DEFAULTS.refreshFraction);
    }
    try {
      const value = await callRunnable(fn, run, result.fencingToken);
      return orFail ? value : [true, value];
    } finally {
      run.end();
      // A failed release is reported by its event (FAILED_RELEASE / UNEXPECTED_ERROR), never
      // thrown over fn's outcome. The adapter is awaited directly: one tick, not three.
      try {
        hold.runReleased(await hold.sendRelease());
      } catch (error) {
        hold.releaseFailed(error);
      }
    }
  }

  /** Tells an acquire's outcome, and throws FailedAcquireLockError when the key was not taken. */
  #orFail(result: BlockingAcquireResult): number {
    this.#announce(result);
    if (!result.acquired) {
      throw new FailedAcquireLockError(
        this.key.get(),
        this.id,
        result.owner === undefined ? undefined : publicOwner(result.owner),
        "cause" in result ? { cause: result.cause } : undefined,
      );
    }
    return result.fencingToken;
  }

  #announce(result: BlockingAcquireResult): void {
    const { reporter } = this.#hold.context;
    if (!reporter.isListened()) {
      return;
    }
    if (result.acquired) {
      reporter.emit(this, LOCK_EVENTS.ACQUIRED, {
        fencingToken: result.fencingToken,
        ttl: this.ttl,
      });
    } else if (result.owner !== undefined) {
      reporter.emit(this, LOCK_EVENTS.UNAVAILABLE, {
        owner: publicOwner(result.owner),
        remainingTime: result.remainingTime,
      });
    }
  }
}
