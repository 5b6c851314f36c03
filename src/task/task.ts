import { NEVER_ABORTED, onAbort } from "../lifecycle/abort-listeners.js";
import type { ITimeSpan } from "../time-span/time-span.js";
import { delay } from "../timers/timers.js";
import type { Middleware, Middlewares, TaskWork } from "./middleware.js";

/**
 * A lazy, awaitable unit of work. See {@link Task}.
 */
export type ITask<TValue> = PromiseLike<TValue> & {
  /**
   * Returns a new task whose work is wrapped by `middlewares`. Each call wraps everything
   * piped before it, so in `task.pipe(a).pipe(b)` the middleware `b` is outermost; an array
   * is listed outermost first, so `task.pipe([b, a])` is the same as `task.pipe(a).pipe(b)`.
   */
  pipe(middlewares: Middlewares<TValue>): ITask<TValue>;
  /** `pipe` when `condition` holds; a function is asked at each run. */
  pipeWhen(condition: boolean | (() => boolean), middlewares: Middlewares<TValue>): ITask<TValue>;
  /** Returns a new task whose runs are aborted when `signal` aborts. */
  withSignal(signal: AbortSignal): ITask<TValue>;
  /** Runs the task without waiting for it; a failure goes to the detached-error handler. */
  detach(): void;
  /** Runs the task (once) and handles its failure, as `Promise.prototype.catch` does. */
  catch<TResult = never>(
    onrejected?: ((reason: unknown) => TResult | PromiseLike<TResult>) | null,
  ): Promise<TValue | TResult>;
  /** Runs the task (once) and calls `onfinally` when it settles, like `Promise.prototype.finally`. */
  finally(onfinally?: (() => void) | null): Promise<TValue>;
};

/** Receives the failure of a detached task. */
export type DetachedErrorHandler = (error: unknown) => void;

type Run<TValue> = (signal: AbortSignal) => Promise<TValue>;

type TaskSource<TValue> = TValue | PromiseLike<TValue>;

type AwaitedAll<T extends readonly unknown[]> = { -readonly [K in keyof T]: Awaited<T[K]> };

const defaultDetachedErrorHandler: DetachedErrorHandler = (error) => {
  console.error("[hasp] a detached task failed:", error);
};

let detachedErrorHandler: DetachedErrorHandler = defaultDetachedErrorHandler;

function reportDetachedError(error: unknown): void {
  try {
    detachedErrorHandler(error);
  } catch (handlerError) {
    // A throwing handler must not turn into an unhandled rejection either.
    defaultDetachedErrorHandler(handlerError);
  }
}

/**
 * Calls `work` with `signal`, and settles with the signal's reason as soon as the signal
 * aborts, whether or not the work notices. The work keeps its signal to stop side effects.
 */
function runWork<TValue>(work: TaskWork<TValue>, signal: AbortSignal): Promise<TValue> {
  if (signal.aborted) {
    return Promise.reject(signal.reason);
  }
  if (signal === NEVER_ABORTED) {
    // Nothing can abort this run: no listener (on a signal every such run shares).
    try {
      return Promise.resolve(work(signal));
    } catch (error) {
      return Promise.reject(error);
    }
  }
  return new Promise<TValue>((resolve, reject) => {
    const stopListening = onAbort(signal, () => reject(signal.reason));
    const settle =
      <T>(fn: (value: T) => void) =>
      (value: T) => {
        stopListening();
        fn(value);
      };
    try {
      Promise.resolve(work(signal)).then(settle(resolve), settle(reject));
    } catch (error) {
      settle(reject)(error);
    }
  });
}

function toList<TValue>(middlewares: Middlewares<TValue>): ReadonlyArray<Middleware<TValue>> {
  return typeof middlewares === "function" ? [middlewares] : middlewares;
}

function wrap<TValue>(middleware: Middleware<TValue>, inner: Run<TValue>): Run<TValue> {
  return (signal) =>
    runWork(
      (runSignal) =>
        middleware({ signal: runSignal, next: (nextSignal) => inner(nextSignal ?? runSignal) }),
      signal,
    );
}

function compose<TValue>(middlewares: Middlewares<TValue>, inner: Run<TValue>): Run<TValue> {
  return toList(middlewares).reduceRight<Run<TValue>>(
    (run, middleware) => wrap(middleware, run),
    inner,
  );
}

function linkSignals(
  first: AbortSignal | undefined,
  second: AbortSignal | undefined,
): AbortSignal | undefined {
  if (first === undefined || second === undefined || first === second) {
    return first ?? second;
  }
  return AbortSignal.any([first, second]);
}

/**
 * A lazy, awaitable unit of work: nothing runs until the task is awaited (or `then` is
 * called, or it is detached), and awaiting it again returns the same result without running
 * the work twice. `pipe` composes middlewares around the *work*, so a piped task runs the
 * work afresh, as `retry` needs.
 *
 * Each run has an `AbortSignal` that reaches the work; callers bind their own with
 * {@link withSignal} (or the constructor), and middlewares such as `timeout` abort it. When
 * the signal aborts, the task rejects at once with the signal's reason.
 *
 * @example
 * const task = new Task(async (signal) => fetch(url, { signal }));
 * const response = await task.pipe(retry({ maxAttempts: 3 }));
 */
export class Task<TValue> implements ITask<TValue> {
  readonly #work: TaskWork<TValue>;
  readonly #signal: AbortSignal | undefined;
  #result: Promise<TValue> | undefined;

  /**
   * @param work Called with the run's signal when the task first runs.
   * @param signal Aborts the task's runs.
   */
  constructor(work: TaskWork<TValue>, signal?: AbortSignal) {
    // Only the work is kept: a task is built per lock operation and mostly awaited unpiped, so
    // the run function middlewares wrap is made when `pipe` asks for it.
    this.#work = work;
    this.#signal = signal;
  }

  /**
   * Replaces the handler that receives failures of detached tasks, and returns the previous
   * one. The default writes the error to `console.error`. Pass `null` to restore it.
   */
  static setDetachedErrorHandler(handler: DetachedErrorHandler | null): DetachedErrorHandler {
    const previous = detachedErrorHandler;
    detachedErrorHandler = handler ?? defaultDetachedErrorHandler;
    return previous;
  }

  /** Whether `value` is a {@link Task}. */
  static isTask(value: unknown): value is Task<unknown> {
    return value instanceof Task;
  }

  /** A task that resolves to `value` (awaiting it first when it is promise-like). */
  static resolve<TValue>(value: TaskSource<TValue>): Task<Awaited<TValue>> {
    return new Task(() => value as Awaited<TValue> | PromiseLike<Awaited<TValue>>);
  }

  /** A task that rejects with `error`. */
  static reject<TValue = never>(error: unknown): Task<TValue> {
    return new Task<TValue>(() => Promise.reject(error));
  }

  /**
   * A task that waits for `timeSpan`, and rejects with the abort reason as soon as `signal`
   * or the run's signal aborts (its timer is cleared either way).
   */
  static delay(timeSpan: ITimeSpan, signal?: AbortSignal): Task<void> {
    return new Task<void>((runSignal) => delay(timeSpan, runSignal), signal);
  }

  /**
   * A task from callback-style work: call `resolve` or `reject` once. The work also gets the
   * run's signal.
   */
  static fromCallback<TValue>(
    work: (
      resolve: (value: TValue | PromiseLike<TValue>) => void,
      reject: (error: unknown) => void,
      signal: AbortSignal,
    ) => void,
  ): Task<TValue> {
    return new Task<TValue>(
      (signal) => new Promise<TValue>((resolve, reject) => work(resolve, reject, signal)),
    );
  }

  /** Turns a function into one that returns a lazy {@link Task} of its result. */
  static wrapFn<TArgs extends unknown[], TReturn>(
    fn: (...args: TArgs) => TReturn,
  ): (...args: TArgs) => Task<Awaited<TReturn>> {
    return (...args) =>
      new Task(() => fn(...args) as Awaited<TReturn> | PromiseLike<Awaited<TReturn>>);
  }

  /**
   * Runs every value (tasks in parallel) and resolves to their results in order. On the first
   * failure it rejects and aborts the tasks still running.
   */
  static all<const T extends readonly unknown[]>(values: T): Task<AwaitedAll<T>> {
    return Task.#combine(values, (promises, abort) =>
      Promise.all(promises).catch((error: unknown) => {
        abort();
        throw error;
      }),
    ) as Task<AwaitedAll<T>>;
  }

  /** Runs every value and resolves to each one's outcome; never rejects. */
  static allSettled<const T extends readonly unknown[]>(
    values: T,
  ): Task<{ -readonly [K in keyof T]: PromiseSettledResult<Awaited<T[K]>> }> {
    return Task.#combine(values, (promises) => Promise.allSettled(promises)) as Task<{
      -readonly [K in keyof T]: PromiseSettledResult<Awaited<T[K]>>;
    }>;
  }

  /** Settles like the first value to settle, and aborts the tasks still running. */
  static race<const T extends readonly unknown[]>(values: T): Task<Awaited<T[number]>> {
    return Task.#combine(values, (promises, abort) =>
      Promise.race(promises).finally(abort),
    ) as Task<Awaited<T[number]>>;
  }

  /**
   * Resolves like the first value to succeed, and aborts the tasks still running; rejects
   * with an `AggregateError` when all fail.
   */
  static any<const T extends readonly unknown[]>(values: T): Task<Awaited<T[number]>> {
    return Task.#combine(values, (promises, abort) =>
      Promise.any(promises).then((value) => {
        abort();
        return value;
      }),
    ) as Task<Awaited<T[number]>>;
  }

  static #combine<TResult>(
    values: readonly unknown[],
    settle: (promises: Promise<unknown>[], abort: () => void) => Promise<TResult>,
  ): Task<TResult> {
    return new Task<TResult>((signal) => {
      // The children run under their own controller, so one can be stopped without the parent.
      const controller = new AbortController();
      const childSignal = AbortSignal.any([signal, controller.signal]);
      const promises = values.map((value) =>
        value instanceof Task ? value.#start(childSignal) : Promise.resolve(value),
      );
      return settle(promises, () => controller.abort());
    });
  }

  pipe(middlewares: Middlewares<TValue>): Task<TValue> {
    return new Task(compose(middlewares, this.#runner()), this.#signal);
  }

  pipeWhen(condition: boolean | (() => boolean), middlewares: Middlewares<TValue>): Task<TValue> {
    if (typeof condition === "boolean") {
      return condition ? this.pipe(middlewares) : this;
    }
    const inner = this.#runner();
    const piped = compose(middlewares, inner);
    return new Task((signal) => (condition() ? piped(signal) : inner(signal)), this.#signal);
  }

  withSignal(signal: AbortSignal): Task<TValue> {
    return new Task(this.#work, linkSignals(this.#signal, signal));
  }

  detach(): void {
    this.#start().then(undefined, reportDetachedError);
  }

  // biome-ignore lint/suspicious/noThenProperty: a Task is deliberately thenable.
  then<TResult1 = TValue, TResult2 = never>(
    onfulfilled?: ((value: TValue) => TResult1 | PromiseLike<TResult1>) | null,
    onrejected?: ((reason: unknown) => TResult2 | PromiseLike<TResult2>) | null,
  ): Promise<TResult1 | TResult2> {
    return this.#start().then(onfulfilled, onrejected);
  }

  catch<TResult = never>(
    onrejected?: ((reason: unknown) => TResult | PromiseLike<TResult>) | null,
  ): Promise<TValue | TResult> {
    return this.#start().catch(onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<TValue> {
    return this.#start().finally(onfinally);
  }

  /** Starts the work once; later calls (and other signals) share the first run's result. */
  #start(extraSignal?: AbortSignal): Promise<TValue> {
    this.#result ??= runWork(this.#work, linkSignals(this.#signal, extraSignal) ?? NEVER_ABORTED);
    return this.#result;
  }

  /** The work as a run of its own, for middlewares to wrap. */
  #runner(): Run<TValue> {
    const work = this.#work;
    return (signal) => runWork(work, signal);
  }

  /** `"Task"`, so that `String(task)` reads `[object Task]`. */
  get [Symbol.toStringTag](): string {
    return "Task";
  }
}
