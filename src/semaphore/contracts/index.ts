/**
 * The semaphore contracts: the types of semaphores, providers and adapters, their states,
 * events and errors.
 *
 * @module hasp/semaphore/contracts
 */
export type {
  ISemaphore,
  SemaphoreAutoRefreshSettings,
  SemaphoreBlockingSettings,
  SemaphoreRunBlockingSettings,
  SemaphoreRunContext,
  SemaphoreRunnable,
  SemaphoreRunResult,
  SemaphoreRunSettings,
} from "./semaphore.js";
export type {
  ISemaphoreAdapter,
  SemaphoreAcquireResult,
  SemaphoreAdapterState,
  SemaphoreHandOff,
  SemaphoreSlotState,
  SemaphoreWaitClaim,
  SemaphoreWaitResult,
} from "./semaphore-adapter.js";
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
} from "./semaphore-errors.js";
export {
  SEMAPHORE_EVENTS,
  type SemaphoreAcquiredEvent,
  type SemaphoreAllForceReleasedEvent,
  type SemaphoreEventBase,
  type SemaphoreEventMap,
  type SemaphoreEventName,
  type SemaphoreFailedRefreshEvent,
  type SemaphoreFailedReleaseEvent,
  type SemaphoreLimitReachedEvent,
  type SemaphoreRefreshedEvent,
  type SemaphoreReleasedEvent,
  type SemaphoreUnexpectedErrorEvent,
} from "./semaphore-events.js";
export type {
  ISemaphoreListenable,
  ISemaphoreProvider,
  ISemaphoreProviderBase,
  ISemaphoreProviderClosable,
  SemaphoreCreateSettings,
} from "./semaphore-provider.js";
export {
  type ISemaphoreAcquiredState,
  type ISemaphoreExpiredState,
  type ISemaphoreLimitReachedState,
  type ISemaphoreState,
  type ISemaphoreUnacquiredState,
  SEMAPHORE_STATE,
  type SemaphoreStateType,
} from "./semaphore-state.js";
