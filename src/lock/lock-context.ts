import type { TimeSpan } from "../time-span/time-span.js";
import type { ILockAdapter } from "./contracts/lock-adapter.js";
import type { LockReporter } from "./lock-reporter.js";

/** What a provider shares with its locks. */
export type LockContext = {
  readonly adapter: ILockAdapter;
  readonly blockingTime: TimeSpan;
  readonly blockingInterval: TimeSpan;
  /** What `refresh()` without a TTL gives; `undefined`: the lock's own TTL. */
  readonly refreshTime: TimeSpan | undefined;
  readonly reporter: LockReporter;
};
