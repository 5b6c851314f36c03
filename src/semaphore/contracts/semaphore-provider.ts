import type { IEventListenable } from "../../event-bus/event-bus-contracts.js";
import type { ITimeSpan } from "../../time-span/time-span.js";
import type { ISemaphore } from "./semaphore.js";
import type { SemaphoreEventMap } from "./semaphore-events.js";

/** Settings of `create`, for one semaphore. */
export type SemaphoreCreateSettings = {
  /**
   * The most live slots of the key: a whole number from 1 to 1,000,000. Give every user of a
   * key the same limit; when limits differ (a rolling deploy that changes it), a slot is taken
   * only while the live slots number fewer than the caller's limit and every live slot's, so
   * no holder ever shares the key with more slots than its own limit allows.
   */
  limit: number;
  /**
   * How long a slot lasts unless refreshed; `null`: until released.
   * @default the provider's `defaultTtl` (5 minutes)
   */
  ttl?: ITimeSpan | null;
  /**
   * The slot's holder, given: two semaphores with the same `slotId` share one slot, in any
   * process. It is a bearer credential (whoever knows it can release or refresh the slot);
   * hand a semaphore across processes by serializing it instead when that matters.
   * @default a random public id plus a secret proof, which only the semaphore (and its
   * serialization) knows
   */
  slotId?: string;
};

/** Creating semaphores only. */
export type ISemaphoreProviderBase = {
  /** @throws InvalidArgumentError on an empty key or bad settings (a `limit` that is not a whole number from 1). */
  create(key: string, settings: SemaphoreCreateSettings): ISemaphore;
};

/** Listening to semaphore events only. */
export type ISemaphoreListenable = IEventListenable<SemaphoreEventMap>;

/** Ending what a provider made. */
export type ISemaphoreProviderClosable = {
  /**
   * Ends what the provider itself made (the event bus it made when none was given) and the
   * adapter's own resources (its `close()`); never what you gave it. See `ILockProvider.close`.
   */
  close(): Promise<void>;
  /** `close()`, for `await using provider = new SemaphoreProvider(...)`. */
  [Symbol.asyncDispose](): Promise<void>;
};

/** Creating semaphores and listening to their events. */
export type ISemaphoreProvider = ISemaphoreProviderBase &
  ISemaphoreListenable &
  ISemaphoreProviderClosable & {
    /** The provider's events as listening only: the same listeners as the provider's own methods. */
    readonly events: ISemaphoreListenable;
  };
