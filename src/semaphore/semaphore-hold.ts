// One holder's slot of one key, behind a `Semaphore`: the shared `HoldFace` (token, expiry, the
// adapter calls every primitive makes alike, their reports, the face's Tasks) with what only a
// semaphore has: its limit, its acquire's arguments and claim, getState's counts,
// forceReleaseAll, its events and errors.

import type { IKey } from "../namespace/namespace.js";
import { HoldFace, holdEvents } from "../primitive/hold-face.js";
import type { TimeoutError } from "../resilience/resilience-errors.js";
import type { TimeSpan } from "../time-span/time-span.js";
import type { ISemaphore } from "./contracts/semaphore.js";
import type {
  ISemaphoreAdapter,
  SemaphoreAcquireResult,
  SemaphoreAdapterState,
  SemaphoreWaitClaim,
} from "./contracts/semaphore-adapter.js";
import {
  FailedRefreshSemaphoreError,
  FailedReleaseSemaphoreError,
  LimitReachedSemaphoreError,
  SemaphoreSlotLostError,
} from "./contracts/semaphore-errors.js";
import { SEMAPHORE_EVENTS } from "./contracts/semaphore-events.js";
import { type ISemaphoreState, SEMAPHORE_STATE } from "./contracts/semaphore-state.js";
import { SEMAPHORE_ANSWERS } from "./semaphore-adapter-answers.js";
import type { SemaphoreContext } from "./semaphore-context.js";

/** A blocking acquire given up at its cut-off, with a backend call unanswered. */
type CutShortResult = {
  acquired: false;
  /** As the last refusal said; `undefined` when no answer came. */
  limit: number | undefined;
  acquiredSlotsCount: number | undefined;
  remainingTime: TimeSpan | null;
  /** The time (and its slack) that ran out. */
  cause: TimeoutError;
};

export type SemaphoreBlockingResult = SemaphoreAcquireResult | CutShortResult;

type Refused = Extract<SemaphoreAcquireResult, { acquired: false }>;

const SEMAPHORE_HOLD_EVENTS = holdEvents(SEMAPHORE_EVENTS);

/** What a semaphore is made of; the provider and the serde transformer give it. */
export type SemaphoreSettings = {
  readonly context: SemaphoreContext;
  readonly key: IKey;
  /** What the adapter stores as the holder: the id and the proof of a generated slot. */
  readonly owner: string;
  /** The public id: what events and errors show of this holder. */
  readonly id: string;
  readonly limit: number;
  readonly ttl: TimeSpan | null;
};

export class SemaphoreHold extends HoldFace<
  ISemaphoreAdapter,
  ISemaphore,
  SemaphoreAcquireResult,
  SemaphoreWaitClaim,
  CutShortResult
> {
  readonly #adapter: ISemaphoreAdapter;
  readonly #limit: number;

  constructor(semaphore: ISemaphore, settings: SemaphoreSettings) {
    // Each setting named, not spread: a spread here cost about a microsecond per semaphore.
    super({
      face: semaphore,
      context: settings.context,
      key: settings.key,
      owner: settings.owner,
      id: settings.id,
      ttl: settings.ttl,
      events: SEMAPHORE_HOLD_EVENTS,
      answers: SEMAPHORE_ANSWERS,
    });
    this.#adapter = settings.context.adapter;
    this.#limit = settings.limit;
  }

  override get context(): SemaphoreContext {
    return super.context as SemaphoreContext;
  }

  get limit(): number {
    return this.#limit;
  }

  forceReleaseAll(): Promise<boolean> {
    return this.forceReleaseBy(
      "forceReleaseAll",
      SEMAPHORE_EVENTS.ALL_FORCE_RELEASED,
      (adapter, key) => adapter.forceReleaseAll(key),
    );
  }

  getState(): Promise<ISemaphoreState> {
    return this.call(
      "getState",
      SEMAPHORE_ANSWERS.getState,
      (adapter, key) => adapter.getState(key, this.owner),
      (state) => this.#stateOf(state),
    );
  }

  /** The adapter's state as this semaphore sees it: the limit in force is the smaller one. */
  #stateOf(state: SemaphoreAdapterState | null): ISemaphoreState {
    if (state === null) {
      return { type: SEMAPHORE_STATE.EXPIRED };
    }
    const limit = Math.min(this.#limit, state.limit);
    const { acquiredSlotsCount, slot } = state;
    const freeSlotsCount = Math.max(0, limit - acquiredSlotsCount);
    if (slot !== null) {
      // The store's word: a revived semaphore learns its slot's token here.
      this.learnToken(slot.fencingToken);
      return {
        type: SEMAPHORE_STATE.ACQUIRED,
        limit,
        remainingTime: slot.remainingTime,
        fencingToken: slot.fencingToken,
        freeSlotsCount,
        acquiredSlotsCount,
      };
    }
    return freeSlotsCount === 0
      ? { type: SEMAPHORE_STATE.LIMIT_REACHED, limit, acquiredSlotsCount }
      : { type: SEMAPHORE_STATE.UNACQUIRED, limit, freeSlotsCount, acquiredSlotsCount };
  }

  sendAcquire(): Promise<unknown> {
    return this.#adapter.acquire(this.key.toString(), this.owner, this.#limit, this.ttl);
  }

  claim(): SemaphoreWaitClaim {
    return { slotId: this.owner, limit: this.#limit, ttl: this.ttl };
  }

  lostError(): Error {
    return new SemaphoreSlotLostError(this.key.get(), this.id);
  }

  protected announce(result: SemaphoreBlockingResult): void {
    const { reporter } = this.context;
    if (!reporter.isListened()) {
      return;
    }
    if (result.acquired) {
      reporter.emit(this.face, SEMAPHORE_EVENTS.ACQUIRED, {
        fencingToken: result.fencingToken,
        ttl: this.ttl,
        limit: this.#limit,
      });
    } else if (result.limit !== undefined && result.acquiredSlotsCount !== undefined) {
      reporter.emit(this.face, SEMAPHORE_EVENTS.LIMIT_REACHED, {
        limit: result.limit,
        acquiredSlotsCount: result.acquiredSlotsCount,
      });
    }
  }

  protected notAcquiredError(result: Refused | CutShortResult): Error {
    return new LimitReachedSemaphoreError(
      this.key.get(),
      this.id,
      result.limit,
      "cause" in result ? { cause: result.cause } : undefined,
    );
  }

  protected notReleasedError(): Error {
    return new FailedReleaseSemaphoreError(this.key.get(), this.id);
  }

  protected notRefreshedError(): Error {
    return new FailedRefreshSemaphoreError(this.key.get(), this.id);
  }

  protected cutShortResult(refused: Refused | undefined, cause: TimeoutError): CutShortResult {
    return refused === undefined
      ? {
          acquired: false,
          limit: undefined,
          acquiredSlotsCount: undefined,
          remainingTime: null,
          cause,
        }
      : { ...refused, cause };
  }
}
