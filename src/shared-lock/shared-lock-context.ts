import type { HoldAdapter, HoldContext } from "../primitive/hold.js";
import type { ProviderContext } from "../primitive/provider-core.js";
import type { ISharedLock } from "./contracts/shared-lock.js";
import type {
  ISharedLockAdapter,
  SharedLockWaitClaim,
  SharedLockWaitResult,
} from "./contracts/shared-lock-adapter.js";
import type { SharedLockReporter } from "./shared-lock-reporter.js";

/** What a provider shares with its shared locks (and what a serde registers it by). */
export type SharedLockContext = ProviderContext<ISharedLockAdapter, SharedLockReporter>;

/**
 * One side of the adapter (the writer's or the readers'), as the shared `Hold` sees an adapter:
 * its release, refresh and wait, plus the whole adapter for what only that side's hold sends.
 */
export type SharedLockSide = HoldAdapter & {
  /** The adapter itself: acquires, force releases and getState go to it directly. */
  readonly adapter: ISharedLockAdapter;
  /** Bound to the adapter; absent when the adapter has none (the blocking loop then polls). */
  readonly waitForRelease?: (
    key: string,
    maxWait: HoldWait,
    signal: AbortSignal,
    claim: SharedLockWaitClaim,
  ) => Promise<SharedLockWaitResult>;
};

type HoldWait = Parameters<NonNullable<ISharedLockAdapter["waitForRelease"]>>[1];

/** What one side's holds share: the provider's context over that side of the adapter. */
export type SharedLockSideContext = HoldContext<SharedLockSide, ISharedLock>;

/** Both sides of one provider, made once per provider (see `sharedLockSides`). */
export type SharedLockSides = {
  readonly writer: SharedLockSideContext;
  readonly reader: SharedLockSideContext;
};
