import type { IEventListenable } from "../../event-bus/event-bus-contracts.js";
import type { ITimeSpan } from "../../time-span/time-span.js";
import type { ISharedLock } from "./shared-lock.js";
import type { SharedLockEventMap } from "./shared-lock-events.js";

/** Settings of `create`, for one shared lock. */
export type SharedLockCreateSettings = {
  /**
   * The most readers of the key at once: a whole number from 1 to 1,000,000. Give every user of
   * a key the same limit; when limits differ (a rolling deploy that changes it), a reader slot
   * is taken only while the live slots number fewer than the caller's limit and every live
   * slot's, as the semaphore's limit rule says. A writer is always alone.
   */
  limit: number;
  /**
   * How long a writer hold or reader slot lasts unless refreshed; `null`: until released.
   * @default the provider's `defaultTtl` (5 minutes)
   */
  ttl?: ITimeSpan | null;
  /**
   * The owner, given: two shared locks with the same `lockId` share their holds, in any process.
   * It is a bearer credential that `getState`, events and errors show to anyone who looks at
   * the key: whoever reads it can release or refresh the hold. Choose an unguessable one when
   * that matters, or hand a shared lock across processes by serializing it instead. A `lockId`
   * of the form `<id>.<32 hex>` is a whole credential (id and proof): the shared lock acts as
   * that one, and its `id` is the part before the last dot.
   * @default a random public id plus a secret proof, which only the shared lock (and its
   * serialization) knows
   */
  lockId?: string;
};

/** Creating shared locks only. */
export type ISharedLockProviderBase = {
  /** @throws InvalidArgumentError on an empty key or bad settings (a `limit` that is not a whole number from 1). */
  create(key: string, settings: SharedLockCreateSettings): ISharedLock;
};

/** Listening to shared lock events only. */
export type ISharedLockListenable = IEventListenable<SharedLockEventMap>;

/** Ending what a provider made. */
export type ISharedLockProviderClosable = {
  /**
   * Ends what the provider itself made (the event bus it made when none was given) and the
   * adapter's own resources (its `close()`); never what you gave it. See `ILockProvider.close`.
   */
  close(): Promise<void>;
  /** `close()`, for `await using provider = new SharedLockProvider(...)`. */
  [Symbol.asyncDispose](): Promise<void>;
};

/** Creating shared locks and listening to their events. */
export type ISharedLockProvider = ISharedLockProviderBase &
  ISharedLockListenable &
  ISharedLockProviderClosable & {
    /** The provider's events as listening only: the same listeners as the provider's own methods. */
    readonly events: ISharedLockListenable;
  };
