import type { ProviderContext } from "../primitive/provider-core.js";
import type { ILockAdapter } from "./contracts/lock-adapter.js";
import type { LockReporter } from "./lock-reporter.js";

/** What a provider shares with its locks. */
export type LockContext = ProviderContext<ILockAdapter, LockReporter>;
