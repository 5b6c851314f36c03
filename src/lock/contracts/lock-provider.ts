import type { IEventListenable } from "../../event-bus/event-bus-contracts.js";
import type { ITimeSpan } from "../../time-span/time-span.js";
import type { ILock } from "./lock.js";
import type { LockEventMap } from "./lock-events.js";

/** Settings of `create`, for one lock. */
export type LockCreateSettings = {
  /**
   * How long a hold lasts unless refreshed; `null`: until released.
   * @default the provider's `defaultTtl` (5 minutes)
   */
  ttl?: ITimeSpan | null;
  /**
   * The owner, given: two locks with the same `lockId` share the hold, in any process (a CMS
   * user locks a document with their user id and unlocks it later, elsewhere, with the same id).
   * It is a bearer credential that `getState`, events and errors show to anyone who looks at
   * the key: whoever reads it can release or refresh the hold. Choose an unguessable one when
   * that matters, or hand a lock across processes by serializing it instead. A `lockId` of the
   * form `<id>.<32 hex>` is a lock's whole credential (id and proof): the lock acts as that one,
   * and its `id` is the part before the last dot.
   * @default a random public id plus a secret proof, which only the lock itself (and its
   * serialization) knows
   */
  lockId?: string;
};

/** Creating locks only. */
export type ILockProviderBase = {
  /** @throws InvalidArgumentError on an empty key or bad settings. */
  create(key: string, settings?: LockCreateSettings): ILock;
};

/** Listening to lock events only. */
export type ILockListenable = IEventListenable<LockEventMap>;

/** Ending what a provider made. */
export type ILockProviderClosable = {
  /**
   * Ends what the provider itself made, and the adapter's own resources: closes the event
   * bus it made when none was given (its listeners go), then calls the adapter's `close()`,
   * if it has one (a subscriber or
   * listening connection, a sweep timer; a provider sharing its adapter with another ends
   * it for both). It never closes what you gave it to use: your Redis client, Kysely
   * instance, pg pool or event bus stay open, yours to close (listeners added through the
   * provider to a bus you gave stay on it). Not needed for the process to exit: closing your
   * own clients is enough. Locks of a closed provider still run their operations, but their
   * blocking acquires poll instead of hearing releases. Closing again does nothing more.
   */
  close(): Promise<void>;
  /** `close()`, for `await using provider = new LockProvider(...)`. */
  [Symbol.asyncDispose](): Promise<void>;
};

/** Creating locks and listening to their events. */
export type ILockProvider = ILockProviderBase &
  ILockListenable &
  ILockProviderClosable & {
    /**
     * The provider's events as listening only (daiso's `provider.events`): hand it to code that
     * should hear lock events but not create locks. The same listeners as the provider's own
     * `addListener`, … methods.
     */
    readonly events: ILockListenable;
  };
