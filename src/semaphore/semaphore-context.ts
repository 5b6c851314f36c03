import type { ProviderContext } from "../primitive/provider-core.js";
import type { ISemaphoreAdapter } from "./contracts/semaphore-adapter.js";
import type { SemaphoreReporter } from "./semaphore-reporter.js";

/** What a provider shares with its semaphores. */
export type SemaphoreContext = ProviderContext<ISemaphoreAdapter, SemaphoreReporter>;
