import type { IKey } from "../namespace/namespace.js";
import { RUN, RUN_BLOCKING, RUN_BLOCKING_OR_FAIL, RUN_OR_FAIL } from "../primitive/run-held.js";
import { Task } from "../task/task.js";
import type { ITimeSpan, TimeSpan } from "../time-span/time-span.js";
import type {
  ISemaphore,
  SemaphoreBlockingSettings,
  SemaphoreRunBlockingSettings,
  SemaphoreRunnable,
  SemaphoreRunResult,
  SemaphoreRunSettings,
} from "./contracts/semaphore.js";
import type { ISemaphoreState } from "./contracts/semaphore-state.js";
import type { SemaphoreContext } from "./semaphore-context.js";
import { SemaphoreHold, type SemaphoreSettings } from "./semaphore-hold.js";

/**
 * One slot of a counting semaphore, for one holder; created by `SemaphoreProvider.create`. See
 * `ISemaphore`. Its slot (token, expiry, adapter calls and their reports, the Tasks its methods
 * return) is a `SemaphoreHold`.
 */
export class Semaphore implements ISemaphore {
  readonly #hold: SemaphoreHold;

  /** @internal Use `SemaphoreProvider.create`. */
  constructor(settings: SemaphoreSettings) {
    this.#hold = new SemaphoreHold(this, settings);
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
    return this.#hold.acquireTask();
  }

  acquireOrFail(): Task<number> {
    return this.#hold.acquireOrFailTask();
  }

  acquireBlocking(settings: SemaphoreBlockingSettings = {}): Task<boolean> {
    return this.#hold.acquireBlockingTask(settings);
  }

  acquireBlockingOrFail(settings: SemaphoreBlockingSettings = {}): Task<number> {
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

  forceReleaseAll(): Task<boolean> {
    return new Task(() => this.#hold.forceReleaseAll());
  }

  refresh(ttl?: ITimeSpan): Task<boolean> {
    return this.#hold.refreshTask(ttl);
  }

  refreshOrFail(ttl?: ITimeSpan): Task<void> {
    return this.#hold.refreshOrFailTask(ttl);
  }

  getState(): Task<ISemaphoreState> {
    return new Task(() => this.#hold.getState());
  }

  runOrFail<TValue>(
    fn: SemaphoreRunnable<TValue>,
    settings: SemaphoreRunSettings = {},
  ): Task<TValue> {
    return this.#hold.runTask(fn, settings, RUN_OR_FAIL);
  }

  runBlockingOrFail<TValue>(
    fn: SemaphoreRunnable<TValue>,
    settings: SemaphoreRunBlockingSettings = {},
  ): Task<TValue> {
    return this.#hold.runTask(fn, settings, RUN_BLOCKING_OR_FAIL);
  }

  run<TValue>(
    fn: SemaphoreRunnable<TValue>,
    settings: SemaphoreRunSettings = {},
  ): Task<SemaphoreRunResult<TValue>> {
    return this.#hold.runTask(fn, settings, RUN);
  }

  runBlocking<TValue>(
    fn: SemaphoreRunnable<TValue>,
    settings: SemaphoreRunBlockingSettings = {},
  ): Task<SemaphoreRunResult<TValue>> {
    return this.#hold.runTask(fn, settings, RUN_BLOCKING);
  }
}
