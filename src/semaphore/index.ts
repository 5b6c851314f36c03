/**
 * The semaphore provider, its factory, and the semaphore events, states and errors.
 *
 * @module hasp/semaphore
 */
export {
  FailedRefreshSemaphoreError,
  FailedReleaseSemaphoreError,
  isFailedRefreshSemaphoreError,
  isFailedReleaseSemaphoreError,
  isLimitReachedSemaphoreError,
  isSemaphoreAdapterResultError,
  isSemaphoreBackendError,
  isSemaphoreError,
  isSemaphoreSlotLostError,
  LimitReachedSemaphoreError,
  SemaphoreAdapterResultError,
  SemaphoreBackendError,
  SemaphoreError,
  SemaphoreSlotLostError,
} from "./contracts/semaphore-errors.js";
export { SEMAPHORE_EVENTS, type SemaphoreEventMap } from "./contracts/semaphore-events.js";
export { type ISemaphoreState, SEMAPHORE_STATE } from "./contracts/semaphore-state.js";
export { SemaphoreProvider, type SemaphoreProviderSettings } from "./semaphore-provider.js";
export {
  SemaphoreProviderFactory,
  type SemaphoreProviderFactorySettings,
} from "./semaphore-provider-factory.js";
