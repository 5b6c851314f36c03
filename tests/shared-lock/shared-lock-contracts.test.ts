import { expect, expectTypeOf, test } from "vitest";
import type { WaitClaim, WaitHandOff } from "../../src/backends/wait-queue/wait-queue.js";
import type { WaitingAdapter } from "../../src/primitive/blocking-acquire.js";
import type { HoldAcquireResult, HoldAdapter } from "../../src/primitive/hold.js";
import type {
  ISharedLockAdapter,
  SharedLockHandOff,
  SharedLockReaderAcquireResult,
  SharedLockWaitClaim,
  SharedLockWriterAcquireResult,
} from "../../src/shared-lock/contracts/shared-lock-adapter.js";
import type {
  SHARED_LOCK_EVENTS,
  SharedLockEventMap,
} from "../../src/shared-lock/contracts/shared-lock-events.js";
import {
  type ISharedLockState,
  SHARED_LOCK_STATE,
} from "../../src/shared-lock/contracts/shared-lock-state.js";
import type { TimeSpan } from "../../src/time-span/time-span.js";

// Compile-time checks (`npm run typecheck`): the contracts fit the machinery the shared lock is
// to be built on, so the plan's "two holds over HoldFace, one wait queue" needs no change to it.

test("each side's acquire answers are answers the shared Hold and blocking loop take", () => {
  const writer: HoldAcquireResult = {} as SharedLockWriterAcquireResult;
  const reader: HoldAcquireResult = {} as SharedLockReaderAcquireResult;
  const handOff: WaitHandOff = {} as SharedLockHandOff;
  expect([writer, reader, handOff]).toHaveLength(3);
});

test("a side of the adapter is a HoldAdapter and a WaitingAdapter, bound once per provider", () => {
  const adapter = {} as ISharedLockAdapter;
  const writerSide: HoldAdapter & WaitingAdapter = {
    release: (key, owner) => adapter.releaseWriter(key, owner),
    refresh: (key, owner, ttl) => adapter.refreshWriter(key, owner, ttl),
    waitForRelease: adapter.waitForRelease,
    waitAcquires: adapter.waitAcquires ?? false,
    waitsPastExpiry: adapter.waitsPastExpiry ?? false,
  };
  expect(writerSide).toBeDefined();
});

test("a claim is the wait queue's claim: a writer's has no limit, like the lock's", () => {
  const toWaitClaim = (claim: SharedLockWaitClaim): WaitClaim =>
    claim.side === "writer"
      ? { owner: claim.lockId, ttl: claim.ttl }
      : { owner: claim.lockId, ttl: claim.ttl, limit: claim.limit };
  expect(toWaitClaim({ side: "writer", lockId: "w", ttl: null })).not.toHaveProperty("limit");
});

test("states narrow on type, and every event name has a payload", () => {
  const remaining = (state: ISharedLockState): TimeSpan | null | undefined => {
    switch (state.type) {
      case SHARED_LOCK_STATE.WRITER_ACQUIRED:
      case SHARED_LOCK_STATE.WRITER_UNAVAILABLE:
      case SHARED_LOCK_STATE.READER_ACQUIRED:
        return state.remainingTime;
      default:
        // @ts-expect-error: no other state has a remaining time
        return state.remainingTime;
    }
  };
  expect(remaining({ type: SHARED_LOCK_STATE.EXPIRED })).toBeUndefined();
  type Names = (typeof SHARED_LOCK_EVENTS)[keyof typeof SHARED_LOCK_EVENTS];
  expectTypeOf<Names>().toEqualTypeOf<keyof SharedLockEventMap>();
});
