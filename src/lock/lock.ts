import { parseSettings } from "../errors/invalid-argument-error.js";
import type { IEventDispatcher } from "../event-bus/event-bus-contracts.js";
import type { IKey } from "../namespace/namespace.js";
import { Task } from "../task/task.js";
import { delay, MAX_TIMER_MS } from "../task/timers.js";
import { type ITimeSpan, TimeSpan } from "../time-span/time-span.js";
import type {
  ILock,
  LockAutoRefreshSettings,
  LockBlockingSettings,
  LockRunBlockingSettings,
  LockRunnable,
  LockRunResult,
  LockRunSettings,
} from "./contracts/lock.js";
import type { ILockAdapter, LockAcquireResult } from "./contracts/lock-adapter.js";
import {
  FailedAcquireLockError,
  FailedRefreshLockError,
  FailedReleaseLockError,
  LockBackendError,
  LockLostError,
} from "./contracts/lock-errors.js";
import { LOCK_EVENTS, type LockEventMap, type LockEventName } from "./contracts/lock-events.js";
import { type ILockState, LOCK_STATE } from "./contracts/lock-state.js";
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
  readonly events: IEventDispatcher<LockEventMap>;
};

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type EventData<TName extends LockEventName> = DistributiveOmit<
  LockEventMap[TName],
  "lock" | "key" | "lockId" | "at"
>;

const nextImmediate = () => new Promise<void>((resolve) => setImmediate(resolve));

const identity = <T>(value: T): T => value;

/** A lock on one key for one owner; created by `LockProvider.create`. See `ILock`. */
export class Lock implements ILock {
  readonly #context: LockContext;
  readonly #key: IKey;
  readonly #id: string;
  readonly #ttl: TimeSpan | null;
  #fencingToken: number | null;
  /** performance.now() deadline of this instance's hold, measured from before the request. */
  #expiresAt: number | null = null;
  /** Events of this lock go out one after another, after the operation resolved. */
  #events: Promise<void> | undefined;

  /** @internal Use `LockProvider.create`. */
  constructor(
    context: LockContext,
    key: IKey,
    id: string,
    ttl: TimeSpan | null,
    fencingToken: number | null = null,
  ) {
    this.#context = context;
    this.#key = key;
    this.#id = id;
    this.#ttl = ttl;
    this.#fencingToken = fencingToken;
  }

  /** @internal Whether this lock was made by the provider owning `context`. */
  static belongsTo(lock: Lock, context: LockContext): boolean {
    return lock.#context === context;
  }

  get key(): string {
    return this.#key.get();
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
        throw new FailedReleaseLockError(this.key, this.#id);
      }
    });
  }

  forceRelease(): Task<boolean> {
    return new Task(() =>
      this.#call(
        "forceRelease",
        (adapter, key) => adapter.forceRelease(key),
        (existed) => {
          this.#forgetHold();
          this.#emit(LOCK_EVENTS.FORCE_RELEASED, { existed });
          return existed;
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
        throw new FailedRefreshLockError(this.key, this.#id);
      }
    });
  }

  getState(): Task<ILockState> {
    return new Task(() =>
      this.#call(
        "getState",
        (adapter, key) => adapter.getState(key),
        (state): ILockState => {
          if (state === null) {
            return { type: LOCK_STATE.EXPIRED };
          }
          if (state.owner !== this.#id) {
            return {
              type: LOCK_STATE.UNAVAILABLE,
              owner: state.owner,
              remainingTime: state.remainingTime,
            };
          }
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
    const { autoRefresh } = parseSettings("run settings", lockRunSettingsSchema, settings);
    return new Task(async (signal) => {
      const token = await this.#tryAcquire(signal, (result) => this.#orFail(result));
      return this.#runHeld(fn, token, autoRefresh, signal);
    });
  }

  runBlockingOrFail<TValue>(
    fn: LockRunnable<TValue>,
    settings: LockRunBlockingSettings = {},
  ): Task<TValue> {
    const { autoRefresh, ...blocking } = parseSettings(
      "run settings",
      lockRunBlockingSettingsSchema,
      settings,
    );
    return new Task(async (signal) => {
      const token = this.#orFail(await this.#acquireBlocking(blocking, signal));
      return this.#runHeld(fn, token, autoRefresh, signal);
    });
  }

  run<TValue>(
    fn: LockRunnable<TValue>,
    settings: LockRunSettings = {},
  ): Task<LockRunResult<TValue>> {
    const { autoRefresh } = parseSettings("run settings", lockRunSettingsSchema, settings);
    return new Task(async (signal) => {
      const result = await this.#tryAcquire(signal, identity);
      this.#announce(result);
      return result.acquired
        ? this.#runHeld(fn, result.fencingToken, autoRefresh, signal).then(
            (value): LockRunResult<TValue> => [true, value],
          )
        : [false, null];
    });
  }

  runBlocking<TValue>(
    fn: LockRunnable<TValue>,
    settings: LockRunBlockingSettings = {},
  ): Task<LockRunResult<TValue>> {
    const { autoRefresh, ...blocking } = parseSettings(
      "run settings",
      lockRunBlockingSettingsSchema,
      settings,
    );
    return new Task(async (signal) => {
      const result = await this.#acquireBlocking(blocking, signal);
      this.#announce(result);
      return result.acquired
        ? this.#runHeld(fn, result.fencingToken, autoRefresh, signal).then(
            (value): LockRunResult<TValue> => [true, value],
          )
        : [false, null];
    });
  }

  /**
   * One acquire request, whose result goes through `settle` (in the same step: no promise of
   * its own). A hold granted after the caller gave up is released again.
   */
  #tryAcquire<TResult>(
    signal: AbortSignal,
    settle: (result: LockAcquireResult) => TResult,
  ): Promise<TResult> {
    const requestedAt = performance.now();
    return this.#call(
      "acquire",
      (adapter, key) => adapter.acquire(key, this.#id, this.#ttl),
      (result) => {
        if (result.acquired) {
          const isNewHold = result.fencingToken !== this.#fencingToken;
          if (signal.aborted && isNewHold) {
            this.#context.adapter.release(this.#key.toString(), this.#id).catch(() => {});
            throw signal.reason;
          }
          this.#fencingToken = result.fencingToken;
          this.#expiresAt = this.#ttl === null ? null : requestedAt + this.#ttl.toMilliseconds();
        }
        return settle(result);
      },
    );
  }

  async #acquireBlocking(
    settings: Readonly<LockBlockingSettings>,
    signal: AbortSignal,
  ): Promise<LockAcquireResult> {
    const time = TimeSpan.from(settings.time ?? this.#context.blockingTime).toMilliseconds();
    const interval = TimeSpan.from(
      settings.interval ?? this.#context.blockingInterval,
    ).toMilliseconds();
    const { adapter } = this.#context;
    const deadline = performance.now() + time;
    for (;;) {
      const result = await this.#tryAcquire(signal, identity);
      const left = deadline - performance.now();
      if (result.acquired || left <= 0) {
        return result;
      }
      // Never sleep past the holder's expiry: it frees the key without any signal.
      const holderLeft = result.remainingTime?.toMilliseconds() ?? Number.POSITIVE_INFINITY;
      const wait = Math.max(1, Math.min(left, holderLeft));
      if (adapter.waitForRelease === undefined) {
        await delay(TimeSpan.fromMilliseconds(Math.min(wait, interval)), signal);
      } else {
        await this.#waitForRelease(adapter.waitForRelease.bind(adapter), wait, signal);
      }
    }
  }

  /** An abort is the caller giving up, not a backend failure: it is neither wrapped nor reported. */
  async #waitForRelease(
    waitForRelease: NonNullable<ILockAdapter["waitForRelease"]>,
    wait: number,
    signal: AbortSignal,
  ): Promise<void> {
    try {
      await waitForRelease(this.#key.toString(), TimeSpan.fromMilliseconds(wait), signal);
    } catch (error) {
      if (signal.aborted) {
        throw signal.reason;
      }
      this.#emit(LOCK_EVENTS.UNEXPECTED_ERROR, { operation: "waitForRelease", error });
      throw new LockBackendError(this.key, "waitForRelease", { cause: error });
    }
  }

  #release(): Promise<boolean> {
    return this.#call(
      "release",
      (adapter, key) => adapter.release(key, this.#id),
      (released) => {
        if (released) {
          this.#forgetHold();
          this.#emit(LOCK_EVENTS.RELEASED, {});
        } else {
          this.#emit(LOCK_EVENTS.FAILED_RELEASE, {});
        }
        return released;
      },
    );
  }

  #refresh(ttl: TimeSpan | undefined): Promise<boolean> {
    const newTtl = ttl ?? this.#ttl;
    if (this.#ttl === null || newTtl === null) {
      this.#emit(LOCK_EVENTS.FAILED_REFRESH, {});
      return Promise.resolve(false);
    }
    const requestedAt = performance.now();
    return this.#call(
      "refresh",
      (adapter, key) => adapter.refresh(key, this.#id, newTtl),
      (refreshed) => {
        if (refreshed) {
          this.#expiresAt = requestedAt + newTtl.toMilliseconds();
          this.#emit(LOCK_EVENTS.REFRESHED, { ttl: newTtl });
        } else {
          this.#emit(LOCK_EVENTS.FAILED_REFRESH, {});
        }
        return refreshed;
      },
    );
  }

  /** Runs `fn` while held, keeps the hold alive, and always releases; the release never masks fn. */
  async #runHeld<TValue>(
    fn: LockRunnable<TValue>,
    fencingToken: number,
    autoRefresh: boolean | Readonly<LockAutoRefreshSettings>,
    signal: AbortSignal,
  ): Promise<TValue> {
    const lost = new AbortController();
    const fnSignal = AbortSignal.any([signal, lost.signal]);
    const stopRefreshing = this.#keepAlive(autoRefresh, lost);
    try {
      return typeof fn === "function"
        ? await fn({ signal: fnSignal, fencingToken })
        : await fn.withSignal(fnSignal);
    } finally {
      stopRefreshing();
      // A failed release is reported by its event (FAILED_RELEASE / UNEXPECTED_ERROR).
      await this.#release().catch(() => {});
    }
  }

  /** Refreshes the hold every interval until stopped; aborts `lost` when the hold is lost. */
  #keepAlive(
    settings: boolean | Readonly<LockAutoRefreshSettings>,
    lost: AbortController,
  ): () => void {
    const ttl = this.#ttl;
    if (ttl === null || settings === false) {
      return () => {};
    }
    const { interval, maxHoldTime } = settings === true ? {} : settings;
    const every = Math.min(
      interval?.toMilliseconds() ?? ttl.toMilliseconds() * LOCK_DEFAULTS.refreshFraction,
      MAX_TIMER_MS,
    );
    const stopAt =
      maxHoldTime === undefined
        ? Number.POSITIVE_INFINITY
        : performance.now() + maxHoldTime.toMilliseconds();
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const loseHold = () => lost.abort(new LockLostError(this.key, this.#id));
    const schedule = (ms: number, fn: () => void) => {
      timer = setTimeout(fn, Math.max(0, Math.min(ms, MAX_TIMER_MS)));
    };
    const untilExpiry = () => (this.#expiresAt ?? Number.POSITIVE_INFINITY) - performance.now();
    const tick = async () => {
      if (stopped) {
        return;
      }
      if (performance.now() >= stopAt) {
        // The cap is reached: the hold runs out one TTL after the last refresh (re-armed past
        // the timer range).
        const expire = () => {
          if (stopped) {
            return;
          }
          if (untilExpiry() > MAX_TIMER_MS) {
            schedule(MAX_TIMER_MS, expire);
          } else {
            schedule(untilExpiry(), loseHold);
          }
        };
        expire();
        return;
      }
      let refreshed: boolean | "error";
      try {
        refreshed = await this.#refresh(undefined);
      } catch {
        refreshed = "error";
      }
      if (stopped) {
        return;
      }
      if (refreshed === false || (refreshed === "error" && untilExpiry() <= 0)) {
        loseHold();
      } else if (refreshed === "error") {
        // A passing backend failure: try again before the hold runs out.
        schedule(Math.min(every, untilExpiry() / 2), () => void tick());
      } else {
        schedule(every, () => void tick());
      }
    };
    schedule(every, () => void tick());
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }

  #orFail(result: LockAcquireResult): number {
    this.#announce(result);
    if (!result.acquired) {
      throw new FailedAcquireLockError(this.key, this.#id, result.owner);
    }
    return result.fencingToken;
  }

  #announce(result: LockAcquireResult): void {
    if (result.acquired) {
      this.#emit(LOCK_EVENTS.ACQUIRED, { fencingToken: result.fencingToken, ttl: this.#ttl });
    } else {
      this.#emit(LOCK_EVENTS.UNAVAILABLE, {
        owner: result.owner,
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
  #call<T, TResult>(
    operation: string,
    fn: (adapter: ILockAdapter, key: string) => Promise<T>,
    settle: (value: T) => TResult,
  ): Promise<TResult> {
    let pending: Promise<T>;
    try {
      pending = fn(this.#context.adapter, this.#key.toString());
    } catch (error) {
      pending = Promise.reject(error);
    }
    return pending.then(settle, (error: unknown) => {
      this.#emit(LOCK_EVENTS.UNEXPECTED_ERROR, { operation, error });
      throw new LockBackendError(this.key, operation, { cause: error });
    });
  }

  /** Dispatches after the operation resolved, in order per lock, never failing the operation. */
  #emit<TName extends LockEventName>(event: TName, data: EventData<TName>): void {
    if (!this.#context.isListened()) {
      return;
    }
    const payload = {
      ...data,
      lock: this,
      key: this.key,
      lockId: this.#id,
      at: new Date(),
    } as unknown as LockEventMap[TName];
    this.#events = (this.#events ?? Promise.resolve())
      .then(nextImmediate)
      .then(() => this.#context.events.dispatch(event, payload))
      .catch((error: unknown) => {
        console.error(`[hasp] the lock event ${event} of "${this.key}" was not dispatched:`, error);
      });
  }
}
