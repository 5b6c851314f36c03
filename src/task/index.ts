/**
 * Lazy, awaitable units of work, composed with middlewares through `pipe`.
 *
 * @module hasp/task
 */
export type {
  GenericMiddleware,
  Middleware,
  MiddlewareContext,
  Middlewares,
  TaskWork,
} from "./middleware.js";
export { type DetachedErrorHandler, type ITask, Task } from "./task.js";
