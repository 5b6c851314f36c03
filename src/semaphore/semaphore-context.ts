import type { TimeSpan } from "../time-span/time-span.js";
import type { ISemaphoreAdapter } from "./contracts/semaphore-adapter.js";
import type { SemaphoreReporter } from "./semaphore-reporter.js";

/** What a provider shares with its semaphores. */
export type SemaphoreContext = {
  readonly adapter: ISemaphoreAdapter;
  readonly blockingTime: TimeSpan;
  readonly blockingInterval: TimeSpan;
  /** What `refresh()` without a TTL gives; `undefined`: the semaphore's own TTL. */
  readonly refreshTime: TimeSpan | undefined;
  readonly reporter: SemaphoreReporter;
};
