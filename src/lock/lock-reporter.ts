// The lock's reporter: the shared `Reporter` given the lock's events and errors.

import type { IEventDispatcher } from "../event-bus/event-bus-contracts.js";
import { type EventData, Reporter } from "../primitive/reporter.js";
import type { ILock } from "./contracts/lock.js";
import {
  isLockBackendError,
  LockAdapterResultError,
  LockBackendError,
} from "./contracts/lock-errors.js";
import { LOCK_EVENTS, type LockEventMap, type LockEventName } from "./contracts/lock-events.js";

/** What the reporter adds to every lock event. */
type Added = "lock" | "key" | "lockId" | "at";

/** An event's own data: what the reporter adds (the lock, its key and id, the time) left out. */
export type LockEventData<TName extends LockEventName> = EventData<LockEventMap, TName, Added>;

export class LockReporter extends Reporter<
  LockEventMap,
  ILock,
  Added,
  LockBackendError,
  LockAdapterResultError
> {
  /** `isListened`: `false` while nobody can hear events (emitting, most of a cycle's CPU, is skipped). */
  constructor(events: IEventDispatcher<LockEventMap>, isListened: () => boolean, adapter: object) {
    super({
      kind: "lock",
      events,
      isListened,
      adapter,
      payload: (lock, data, key, at) => ({ ...data, lock, key, lockId: lock.id, at }),
      unexpectedError: LOCK_EVENTS.UNEXPECTED_ERROR,
      backendError: (key, operation, options) => new LockBackendError(key, operation, options),
      isBackendError: isLockBackendError,
      resultError: (key, adapterName, operation, returned, expected) =>
        new LockAdapterResultError(key, adapterName, operation, returned, expected),
    });
  }
}
