// The shared lock's reporter: the shared `Reporter` given the shared lock's events and errors.

import type { IEventDispatcher } from "../event-bus/event-bus-contracts.js";
import { type EventData, Reporter } from "../primitive/reporter.js";
import type { ISharedLock } from "./contracts/shared-lock.js";
import {
  isSharedLockBackendError,
  SharedLockAdapterResultError,
  SharedLockBackendError,
} from "./contracts/shared-lock-errors.js";
import {
  SHARED_LOCK_EVENTS,
  type SharedLockEventMap,
  type SharedLockEventName,
} from "./contracts/shared-lock-events.js";

/** What the reporter adds to every shared lock event. */
type Added = "sharedLock" | "key" | "lockId" | "at";

/** An event's own data: what the reporter adds (the shared lock, its key and id, the time) left out. */
export type SharedLockEventData<TName extends SharedLockEventName> = EventData<
  SharedLockEventMap,
  TName,
  Added
>;

export class SharedLockReporter extends Reporter<
  SharedLockEventMap,
  ISharedLock,
  Added,
  SharedLockBackendError,
  SharedLockAdapterResultError
> {
  constructor(
    events: IEventDispatcher<SharedLockEventMap>,
    isListened: () => boolean,
    adapter: object,
  ) {
    super({
      kind: "shared lock",
      events,
      isListened,
      adapter,
      payload: (sharedLock, data, key, at) => ({
        ...data,
        sharedLock,
        key,
        lockId: sharedLock.id,
        at,
      }),
      unexpectedError: SHARED_LOCK_EVENTS.UNEXPECTED_ERROR,
      backendError: (key, operation, options) =>
        new SharedLockBackendError(key, operation, options),
      isBackendError: isSharedLockBackendError,
      resultError: (key, adapterName, operation, returned, expected) =>
        new SharedLockAdapterResultError(key, adapterName, operation, returned, expected),
    });
  }
}
