/** What a middleware receives each time the task it wraps runs. */
export type MiddlewareContext<TValue> = {
  /** The run's signal. Aborted when the caller (or an outer middleware) gives up. */
  readonly signal: AbortSignal;
  /**
   * Runs everything the middleware wraps, once per call (so `retry` calls it again for each
   * attempt). Pass a signal to give the inner work a different one, e.g. one that
   * `timeout` aborts; by default the inner work gets {@link MiddlewareContext.signal}.
   */
  next(signal?: AbortSignal): Promise<TValue>;
};

/**
 * Wraps a task's work: decides whether, when and how often to call `next`, and what to
 * return. Middlewares are composed with `Task.pipe`.
 *
 * @example
 * const logDuration: Middleware<unknown> = async ({ next }) => {
 *   const start = performance.now();
 *   try {
 *     return await next();
 *   } finally {
 *     console.log(`took ${performance.now() - start} ms`);
 *   }
 * };
 */
export type Middleware<TValue> = (context: MiddlewareContext<TValue>) => Promise<TValue>;

/** A middleware that works for a task of any value type, such as `retry` or `timeout`. */
export type GenericMiddleware = <TValue>(context: MiddlewareContext<TValue>) => Promise<TValue>;

/** One middleware, or several listed outermost first. */
export type Middlewares<TValue> = Middleware<TValue> | ReadonlyArray<Middleware<TValue>>;

/** The work of a task: called with the run's signal. */
export type TaskWork<TValue> = (signal: AbortSignal) => TValue | PromiseLike<TValue>;
