// What a `run*` can run, and what its function receives, for every primitive (a lock's
// `LockRunnable`, a semaphore's `SemaphoreRunnable`: the same shape).

import { InvalidArgumentError } from "../errors/invalid-argument-error.js";
import type { ITask } from "../task/task.js";

/** What a run's function receives (`LockRunContext` and its kin). */
export type RunContextShape = { readonly signal: AbortSignal; readonly fencingToken: number };

/** What a run can run (`LockRunnable` and its kin). */
export type Runnable<TValue> =
  | ((context: RunContextShape) => TValue | PromiseLike<TValue>)
  | { invoke(context: RunContextShape): TValue | PromiseLike<TValue> }
  | ITask<TValue>;

/** daiso-core's `Invokable`: an object with an `invoke` method. */
function isInvokable(fn: unknown): fn is { invoke: (context: RunContextShape) => unknown } {
  return typeof (fn as { invoke?: unknown } | null)?.invoke === "function";
}

/**
 * What `run*` can run: a function, an object with `invoke` (daiso-core's `Invokable`), or a
 * `Task`. Checked when the run is made, before anything is acquired.
 */
export function checkRunnable(fn: unknown): void {
  if (
    typeof fn === "function" ||
    isInvokable(fn) ||
    typeof (fn as { withSignal?: unknown } | null)?.withSignal === "function"
  ) {
    return;
  }
  const hint =
    fn instanceof Promise
      ? " (a Promise has already started: pass a function that returns it)"
      : "";
  throw new InvalidArgumentError(
    `Invalid run function: must be a function, an object with invoke(), or a Task${hint}`,
    [{ path: "fn", message: "must be a function, an object with invoke(), or a Task" }],
  );
}

/** What gives a run's function its signal (a `HeldRun`), on first read. */
type SignalSource = { readonly signal: AbortSignal };

/** Calls a run's function with what its kind receives (see `LockRunnable`). */
export function callRunnable<TValue>(
  fn: Runnable<TValue>,
  run: SignalSource,
  fencingToken: number,
): TValue | PromiseLike<TValue> {
  if (typeof fn === "function") {
    return fn(new RunContext(run, fencingToken));
  }
  if (isInvokable(fn)) {
    return fn.invoke(new RunContext(run, fencingToken)) as TValue | PromiseLike<TValue>;
  }
  return fn.withSignal(run.signal);
}

/** What a `run*` function receives; its signal is made on first read. */
class RunContext implements RunContextShape {
  readonly #run: SignalSource;
  readonly fencingToken: number;

  constructor(run: SignalSource, fencingToken: number) {
    this.#run = run;
    this.fencingToken = fencingToken;
  }

  get signal(): AbortSignal {
    return this.#run.signal;
  }
}
