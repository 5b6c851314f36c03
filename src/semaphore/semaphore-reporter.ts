// The semaphore's reporter: the shared `Reporter` given the semaphore's events and errors.

import type { IEventDispatcher } from "../event-bus/event-bus-contracts.js";
import { type EventData, Reporter } from "../primitive/reporter.js";
import type { ISemaphore } from "./contracts/semaphore.js";
import {
  isSemaphoreBackendError,
  SemaphoreAdapterResultError,
  SemaphoreBackendError,
} from "./contracts/semaphore-errors.js";
import {
  SEMAPHORE_EVENTS,
  type SemaphoreEventMap,
  type SemaphoreEventName,
} from "./contracts/semaphore-events.js";

/** What the reporter adds to every semaphore event. */
type Added = "semaphore" | "key" | "slotId" | "at";

/** An event's own data: what the reporter adds (the semaphore, its key and id, the time) left out. */
export type SemaphoreEventData<TName extends SemaphoreEventName> = EventData<
  SemaphoreEventMap,
  TName,
  Added
>;

export class SemaphoreReporter extends Reporter<
  SemaphoreEventMap,
  ISemaphore,
  Added,
  SemaphoreBackendError,
  SemaphoreAdapterResultError
> {
  constructor(
    events: IEventDispatcher<SemaphoreEventMap>,
    isListened: () => boolean,
    adapter: object,
  ) {
    super({
      kind: "semaphore",
      events,
      isListened,
      adapter,
      payload: (semaphore, data, key, at) => ({
        ...data,
        semaphore,
        key,
        slotId: semaphore.slotId,
        at,
      }),
      unexpectedError: SEMAPHORE_EVENTS.UNEXPECTED_ERROR,
      backendError: (key, operation, options) => new SemaphoreBackendError(key, operation, options),
      isBackendError: isSemaphoreBackendError,
      resultError: (key, adapterName, operation, returned, expected) =>
        new SemaphoreAdapterResultError(key, adapterName, operation, returned, expected),
    });
  }
}
