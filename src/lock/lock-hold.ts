// One owner's hold on one key, behind a `Lock`: the shared `HoldFace` (token, expiry, the
// adapter calls every primitive makes alike, their reports, the face's Tasks) with what only a
// lock has: its acquire's arguments, its claim, getState's owner, forceRelease, its events and
// errors.

import type { IKey } from "../namespace/namespace.js";
import { HoldFace, holdEvents } from "../primitive/hold-face.js";
import { publicOwner } from "../primitive/owner.js";
import type { TimeoutError } from "../resilience/resilience-errors.js";
import type { TimeSpan } from "../time-span/time-span.js";
import type { ILock } from "./contracts/lock.js";
import type { ILockAdapter, LockAcquireResult, LockWaitClaim } from "./contracts/lock-adapter.js";
import {
  FailedAcquireLockError,
  FailedRefreshLockError,
  FailedReleaseLockError,
  LockLostError,
} from "./contracts/lock-errors.js";
import { LOCK_EVENTS } from "./contracts/lock-events.js";
import { type ILockState, LOCK_STATE } from "./contracts/lock-state.js";
import { ANSWERS } from "./lock-adapter-answers.js";
import type { LockContext } from "./lock-context.js";

/** A blocking acquire given up at its cut-off, with a backend call unanswered. */
type CutShortResult = {
  acquired: false;
  /** The holder the last answer named; `undefined` when no answer named one. */
  owner: string | undefined;
  /** As that answer said. */
  remainingTime: TimeSpan | null;
  /** The time (and its slack) that ran out. */
  cause: TimeoutError;
};

export type BlockingAcquireResult = LockAcquireResult | CutShortResult;

type Refused = Extract<LockAcquireResult, { acquired: false }>;

const LOCK_HOLD_EVENTS = holdEvents(LOCK_EVENTS);

export class LockHold extends HoldFace<
  ILockAdapter,
  ILock,
  LockAcquireResult,
  LockWaitClaim,
  CutShortResult
> {
  readonly #adapter: ILockAdapter;

  constructor(
    lock: ILock,
    context: LockContext,
    key: IKey,
    owner: string,
    ttl: TimeSpan | null,
    id: string,
  ) {
    super({
      face: lock,
      context,
      key,
      owner,
      id,
      ttl,
      events: LOCK_HOLD_EVENTS,
      answers: ANSWERS,
    });
    this.#adapter = context.adapter;
  }

  override get context(): LockContext {
    return super.context as LockContext;
  }

  forceRelease(): Promise<boolean> {
    return this.forceReleaseBy("forceRelease", LOCK_EVENTS.FORCE_RELEASED, (adapter, key) =>
      adapter.forceRelease(key),
    );
  }

  getState(): Promise<ILockState> {
    return this.call(
      "getState",
      ANSWERS.getState,
      (adapter, key) => adapter.getState(key),
      (state): ILockState => {
        if (state === null) {
          return { type: LOCK_STATE.EXPIRED };
        }
        if (state.owner !== this.owner) {
          return {
            type: LOCK_STATE.UNAVAILABLE,
            owner: publicOwner(state.owner),
            remainingTime: state.remainingTime,
          };
        }
        // The store's word: a revived lock learns its hold's token here.
        this.learnToken(state.fencingToken);
        return {
          type: LOCK_STATE.ACQUIRED,
          remainingTime: state.remainingTime,
          fencingToken: state.fencingToken,
        };
      },
    );
  }

  sendAcquire(): Promise<unknown> {
    return this.#adapter.acquire(this.key.toString(), this.owner, this.ttl);
  }

  claim(): LockWaitClaim {
    return { lockId: this.owner, ttl: this.ttl };
  }

  lostError(): Error {
    return new LockLostError(this.key.get(), this.id);
  }

  protected announce(result: BlockingAcquireResult): void {
    const { reporter } = this.context;
    if (!reporter.isListened()) {
      return;
    }
    if (result.acquired) {
      reporter.emit(this.face, LOCK_EVENTS.ACQUIRED, {
        fencingToken: result.fencingToken,
        ttl: this.ttl,
      });
    } else if (result.owner !== undefined) {
      reporter.emit(this.face, LOCK_EVENTS.UNAVAILABLE, {
        owner: publicOwner(result.owner),
        remainingTime: result.remainingTime,
      });
    }
  }

  protected notAcquiredError(result: Refused | CutShortResult): Error {
    return new FailedAcquireLockError(
      this.key.get(),
      this.id,
      result.owner === undefined ? undefined : publicOwner(result.owner),
      "cause" in result ? { cause: result.cause } : undefined,
    );
  }

  protected notReleasedError(): Error {
    return new FailedReleaseLockError(this.key.get(), this.id);
  }

  protected notRefreshedError(): Error {
    return new FailedRefreshLockError(this.key.get(), this.id);
  }

  protected cutShortResult(refused: Refused | undefined, cause: TimeoutError): CutShortResult {
    return refused === undefined
      ? { acquired: false, owner: undefined, remainingTime: null, cause }
      : { ...refused, cause };
  }
}
