import type { IKey } from "../namespace/namespace.js";
import { HeldRun } from "../primitive/keep-alive.js";
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
  ISemaphore,
  SemaphoreAutoRefreshSettings,
  SemaphoreBlockingSettings,
  SemaphoreRunBlockingSettings,
  SemaphoreRunnable,
  SemaphoreRunResult,
  SemaphoreRunSettings,
} from "./contracts/semaphore.js";
import {
  FailedRefreshSemaphoreError,
  FailedReleaseSemaphoreError,
  LimitReachedSemaphoreError,
} from "./contracts/semaphore-errors.js";
import { SEMAPHORE_EVENTS } from "./contracts/semaphore-events.js";
import type { ISemaphoreState } from "./contracts/semaphore-state.js";
import type { SemaphoreContext } from "./semaphore-context.js";
import { type SemaphoreBlockingResult, SemaphoreHold } from "./semaphore-hold.js";
import { SEMAPHORE_DEFAULTS } from "./semaphore-settings.js";

const identity = <T>(value: T): T => value;

/** A `run*`'s parsed settings: `time` and `interval` only count when it blocks. */
type RunSettings = Readonly<SemaphoreBlockingSettings> & {
  readonly autoRefresh: boolean | Readonly<SemaphoreAutoRefreshSettings>;
};

/** How a `run*` takes its slot and answers: one constant per method (see `Lock`). */
type RunMode = { readonly blocking: boolean; readonly orFail: boolean };

const RUN = { blocking: false, orFail: false } as const;
const RUN_OR_FAIL = { blocking: false, orFail: true } as const;
const RUN_BLOCKING = { blocking: true, orFail: false } as const;
const RUN_BLOCKING_OR_FAIL = { blocking: true, orFail: true } as const;

/** What a semaphore is made of; the provider and the serde transformer give it. */
export type SemaphoreSettings = {
  readonly context: SemaphoreContext;
  readonly key: IKey;
  /** The credential the adapter stores. */
  readonly owner: string;
  /** Its public part. */
  readonly id: string;
  readonly limit: number;
  readonly ttl: TimeSpan | null;
};

/**
 * One slot of a counting semaphore, for one holder; created by `SemaphoreProvider.create`. See
 * `ISemaphore`. Its slot (token, expiry, adapter calls and their reports) is a `SemaphoreHold`;
 * the semaphore turns its settings into calls on it, and runs functions while it holds a slot.
 */
export class Semaphore implements ISemaphore {
  readonly #hold: SemaphoreHold;

  /** @internal Use `SemaphoreProvider.create`. */
  constructor(settings: SemaphoreSettings) {
    this.#hold = new SemaphoreHold({ ...settings, face: this });
  }

  /** @internal The context of the provider that made `semaphore`, for its serialization only. */
  static contextOf(semaphore: Semaphore): SemaphoreContext {
    return semaphore.#hold.context;
  }

  /** @internal The credential of `semaphore`, for its serialization only. */
  static ownerOf(semaphore: Semaphore): string {
    return semaphore.#hold.owner;
  }

  get key(): IKey {
    return this.#hold.key;
  }

  get slotId(): string {
    return this.#hold.id;
  }

  get limit(): number {
    return this.#hold.limit;
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

  acquireBlocking(settings: SemaphoreBlockingSettings = {}): Task<boolean> {
    const parsed = parseSettings("blocking settings", blockingSettingsSchema, settings);
    return new Task(async (signal) => {
      const result = await this.#hold.acquireBlocking(parsed, signal);
      this.#announce(result);
      return result.acquired;
    });
  }

  acquireBlockingOrFail(settings: SemaphoreBlockingSettings = {}): Task<number> {
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
        throw new FailedReleaseSemaphoreError(this.key.get(), this.slotId);
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

  forceReleaseAll(): Task<boolean> {
    return new Task(() => this.#hold.forceReleaseAll());
  }

  refresh(ttl?: ITimeSpan): Task<boolean> {
    const parsed = parseSettings("refresh ttl", refreshTtlSchema, ttl);
    return new Task(() => this.#hold.refreshFor(parsed));
  }

  refreshOrFail(ttl?: ITimeSpan): Task<void> {
    const parsed = parseSettings("refresh ttl", refreshTtlSchema, ttl);
    return new Task(async () => {
      if (!(await this.#hold.refreshFor(parsed))) {
        throw new FailedRefreshSemaphoreError(this.key.get(), this.slotId);
      }
    });
  }

  getState(): Task<ISemaphoreState> {
    return new Task(() => this.#hold.getState());
  }

  runOrFail<TValue>(
    fn: SemaphoreRunnable<TValue>,
    settings: SemaphoreRunSettings = {},
  ): Task<TValue> {
    checkRunnable(fn);
    const parsed = parseSettings("run settings", runSettingsSchema, settings);
    return this.#run(fn, parsed, RUN_OR_FAIL);
  }

  runBlockingOrFail<TValue>(
    fn: SemaphoreRunnable<TValue>,
    settings: SemaphoreRunBlockingSettings = {},
  ): Task<TValue> {
    checkRunnable(fn);
    const parsed = parseSettings("run settings", runBlockingSettingsSchema, settings);
    return this.#run(fn, parsed, RUN_BLOCKING_OR_FAIL);
  }

  run<TValue>(
    fn: SemaphoreRunnable<TValue>,
    settings: SemaphoreRunSettings = {},
  ): Task<SemaphoreRunResult<TValue>> {
    checkRunnable(fn);
    return this.#run(fn, parseSettings("run settings", runSettingsSchema, settings), RUN);
  }

  runBlocking<TValue>(
    fn: SemaphoreRunnable<TValue>,
    settings: SemaphoreRunBlockingSettings = {},
  ): Task<SemaphoreRunResult<TValue>> {
    checkRunnable(fn);
    const parsed = parseSettings("run settings", runBlockingSettingsSchema, settings);
    return this.#run(fn, parsed, RUN_BLOCKING);
  }

  #run<TValue>(
    fn: SemaphoreRunnable<TValue>,
    settings: RunSettings,
    mode: RunMode & { orFail: true },
  ): Task<TValue>;
  #run<TValue>(
    fn: SemaphoreRunnable<TValue>,
    settings: RunSettings,
    mode: RunMode & { orFail: false },
  ): Task<SemaphoreRunResult<TValue>>;
  #run<TValue>(
    fn: SemaphoreRunnable<TValue>,
    settings: RunSettings,
    mode: RunMode,
  ): Task<TValue | SemaphoreRunResult<TValue>> {
    return new Task((signal) => this.#runHeld(fn, settings, mode, signal));
  }

  /**
   * Every `run*`, in one async step: takes a slot (blocking when `blocking`), runs `fn` while
   * held and keeps the slot alive, and always releases; the release never masks fn's outcome.
   */
  async #runHeld<TValue>(
    fn: SemaphoreRunnable<TValue>,
    settings: RunSettings,
    { blocking, orFail }: RunMode,
    signal: AbortSignal,
  ): Promise<TValue | SemaphoreRunResult<TValue>> {
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
      run.keepAlive(settings.autoRefresh, ttl.toMilliseconds(), SEMAPHORE_DEFAULTS.refreshFraction);
    }
    try {
      const value = await callRunnable(fn, run, result.fencingToken);
      return orFail ? value : [true, value];
    } finally {
      run.end();
      try {
        hold.runReleased(await hold.sendRelease());
      } catch (error) {
        hold.releaseFailed(error);
      }
    }
  }

  /** Tells an acquire's outcome, and throws LimitReachedSemaphoreError when no slot was taken. */
  #orFail(result: SemaphoreBlockingResult): number {
    this.#announce(result);
    if (!result.acquired) {
      throw new LimitReachedSemaphoreError(
        this.key.get(),
        this.slotId,
        result.limit,
        "cause" in result ? { cause: result.cause } : undefined,
      );
    }
    return result.fencingToken;
  }

  #announce(result: SemaphoreBlockingResult): void {
    const { reporter } = this.#hold.context;
    if (!reporter.isListened()) {
      return;
    }
    if (result.acquired) {
      reporter.emit(this, SEMAPHORE_EVENTS.ACQUIRED, {
        fencingToken: result.fencingToken,
        ttl: this.ttl,
        limit: this.limit,
      });
    } else if (result.limit !== undefined && result.acquiredSlotsCount !== undefined) {
      reporter.emit(this, SEMAPHORE_EVENTS.LIMIT_REACHED, {
        limit: result.limit,
        acquiredSlotsCount: result.acquiredSlotsCount,
      });
    }
  }
}
