// The writer side of one shared lock: the shared `HoldFace` (token, expiry, the adapter calls
// every primitive makes alike, their reports, the face's Tasks) over the writer's side of the
// adapter, with what only a writer has: its acquire (and its intent on a polling adapter), its
// claim, its force releases, getState (for both sides), its events and errors.

import type { IKey } from "../namespace/namespace.js";
import { BOOLEAN_ANSWER, WAIT_ANSWER } from "../primitive/adapter-answers.js";
import type { HoldEvents } from "../primitive/hold.js";
import { HoldFace } from "../primitive/hold-face.js";
import { publicOwner } from "../primitive/owner.js";
import type { TimeoutError } from "../resilience/resilience-errors.js";
import { TimeSpan } from "../time-span/time-span.js";
import type { ISharedLock } from "./contracts/shared-lock.js";
import type {
  ISharedLockAdapter,
  SharedLockAdapterState,
  SharedLockWriterAcquireResult,
  SharedLockWriterClaim,
} from "./contracts/shared-lock-adapter.js";
import {
  FailedAcquireWriterLockError,
  FailedRefreshWriterLockError,
  FailedReleaseWriterLockError,
  SharedLockLostError,
} from "./contracts/shared-lock-errors.js";
import { SHARED_LOCK_EVENTS } from "./contracts/shared-lock-events.js";
import { type ISharedLockState, SHARED_LOCK_STATE } from "./contracts/shared-lock-state.js";
import { SHARED_LOCK_ANSWERS } from "./shared-lock-adapter-answers.js";
import type { SharedLockContext, SharedLockSide, SharedLockSides } from "./shared-lock-context.js";
import type { SharedLockReaderHold } from "./shared-lock-reader-hold.js";
import type { SharedLockReporter } from "./shared-lock-reporter.js";

/**
 * How much longer than the time to its next attempt a polling writer's intent lasts: enough for
 * an attempt that comes late on a loaded machine (a lapse costs only the preference, never the
 * exclusion), short enough that a waiting writer that crashed keeps readers out briefly.
 */
export const WRITER_INTENT_GRACE_MS = 1_000;

type Refused = Extract<SharedLockWriterAcquireResult, { acquired: false }>;

/** A blocking acquire given up at its cut-off, with a backend call unanswered. */
type CutShortResult =
  | (Refused & { cause: TimeoutError })
  | {
      acquired: false;
      /** No answer named what kept the writer out. */
      blockedBy: undefined;
      remainingTime: null;
      /** The time (and its slack) that ran out. */
      cause: TimeoutError;
    };

const WRITER_HOLD_EVENTS: HoldEvents = Object.freeze({
  released: SHARED_LOCK_EVENTS.WRITER_RELEASED,
  failedRelease: SHARED_LOCK_EVENTS.WRITER_FAILED_RELEASE,
  refreshed: SHARED_LOCK_EVENTS.WRITER_REFRESHED,
  failedRefresh: SHARED_LOCK_EVENTS.WRITER_FAILED_REFRESH,
  unexpectedError: SHARED_LOCK_EVENTS.UNEXPECTED_ERROR,
});

const WRITER_ANSWERS = Object.freeze({
  acquire: SHARED_LOCK_ANSWERS.acquireWriter,
  waitForRelease: WAIT_ANSWER,
});

/** What a shared lock is made of; the provider and the serde transformer give it. */
export type SharedLockSettings = {
  /** The provider's context: what a serde knows the provider by. */
  readonly context: SharedLockContext;
  /** Both sides of the provider's adapter (`sharedLockSides(context)`). */
  readonly sides: SharedLockSides;
  readonly key: IKey;
  /** What the adapter stores as the holder: the id and the proof of a generated one. */
  readonly owner: string;
  /** The public id: what events and errors show of this holder. */
  readonly id: string;
  /** The readers' limit. */
  readonly limit: number;
  readonly ttl: TimeSpan | null;
};

export class SharedLockWriterHold extends HoldFace<
  SharedLockSide,
  ISharedLock,
  SharedLockWriterAcquireResult,
  SharedLockWriterClaim,
  CutShortResult
> {
  readonly #adapter: ISharedLockAdapter;
  readonly #reporter: SharedLockReporter;

  constructor(sharedLock: ISharedLock, settings: SharedLockSettings) {
    super({
      face: sharedLock,
      context: settings.sides.writer,
      key: settings.key,
      owner: settings.owner,
      id: settings.id,
      ttl: settings.ttl,
      events: WRITER_HOLD_EVENTS,
      answers: WRITER_ANSWERS,
    });
    this.#adapter = settings.context.adapter;
    this.#reporter = settings.context.reporter;
  }

  /**
   * One attempt. With `nextAttemptMs` (a blocking acquire's attempt on a polling adapter), a
   * refused writer records its intent until its next attempt is due, plus the grace.
   */
  sendAcquire(nextAttemptMs?: number): Promise<unknown> {
    const intent =
      nextAttemptMs === undefined
        ? null
        : TimeSpan.fromMilliseconds(nextAttemptMs + WRITER_INTENT_GRACE_MS);
    return this.#adapter.acquireWriter(this.key.toString(), this.owner, this.ttl, intent);
  }

  claim(): SharedLockWriterClaim {
    return { side: "writer", lockId: this.owner, ttl: this.ttl };
  }

  lostError(): Error {
    return new SharedLockLostError(this.key.get(), this.id, "writer");
  }

  forceReleaseWriter(): Promise<boolean> {
    return this.forceReleaseBy(
      "forceReleaseWriter",
      SHARED_LOCK_EVENTS.WRITER_FORCE_RELEASED,
      (side, key) => side.adapter.forceReleaseWriter(key),
    );
  }

  /** Frees the writer and every reader: both of this shared lock's holds are forgotten. */
  forceRelease(reader: SharedLockReaderHold): Promise<boolean> {
    return this.call(
      "forceRelease",
      BOOLEAN_ANSWER,
      (side, key) => side.adapter.forceRelease(key),
      (hasReleased) => {
        this.forgetHold();
        reader.forgotten();
        this.emit(SHARED_LOCK_EVENTS.FORCE_RELEASED, { hasReleased });
        return hasReleased;
      },
    );
  }

  /** Who holds the key, as this shared lock sees it; the hold the state names learns its token. */
  getState(reader: SharedLockReaderHold): Promise<ISharedLockState> {
    return this.call(
      "getState",
      SHARED_LOCK_ANSWERS.getState,
      (side, key) => side.adapter.getState(key, this.owner),
      (state) => this.#stateOf(state, reader),
    );
  }

  #stateOf(state: SharedLockAdapterState | null, reader: SharedLockReaderHold): ISharedLockState {
    if (state === null) {
      return { type: SHARED_LOCK_STATE.EXPIRED };
    }
    if (state.heldBy === "writer") {
      if (state.owner !== this.owner) {
        return {
          type: SHARED_LOCK_STATE.WRITER_UNAVAILABLE,
          owner: publicOwner(state.owner),
          remainingTime: state.remainingTime,
        };
      }
      // The store's word: a revived shared lock learns its writer hold's token here.
      this.learnToken(state.fencingToken);
      return {
        type: SHARED_LOCK_STATE.WRITER_ACQUIRED,
        remainingTime: state.remainingTime,
        fencingToken: state.fencingToken,
      };
    }
    // The limit in force for this shared lock: its own, or a live reader's smaller one.
    const limit = Math.min(reader.limit, state.limit);
    const { acquiredSlotsCount, slot, writerWaiting } = state;
    const freeSlotsCount = Math.max(0, limit - acquiredSlotsCount);
    if (slot !== null) {
      reader.learned(slot.fencingToken);
      return {
        type: SHARED_LOCK_STATE.READER_ACQUIRED,
        limit,
        acquiredSlotsCount,
        writerWaiting,
        remainingTime: slot.remainingTime,
        fencingToken: slot.fencingToken,
        freeSlotsCount,
      };
    }
    return freeSlotsCount === 0
      ? { type: SHARED_LOCK_STATE.READER_LIMIT_REACHED, limit, acquiredSlotsCount, writerWaiting }
      : {
          type: SHARED_LOCK_STATE.READER_UNACQUIRED,
          limit,
          acquiredSlotsCount,
          writerWaiting,
          freeSlotsCount,
        };
  }

  protected announce(result: SharedLockWriterAcquireResult | CutShortResult): void {
    const reporter = this.#reporter;
    if (!reporter.isListened()) {
      return;
    }
    if (result.acquired) {
      reporter.emit(this.face, SHARED_LOCK_EVENTS.WRITER_ACQUIRED, {
        fencingToken: result.fencingToken,
        ttl: this.ttl,
      });
    } else if (result.blockedBy !== undefined) {
      reporter.emit(this.face, SHARED_LOCK_EVENTS.WRITER_UNAVAILABLE, {
        blockedBy: result.blockedBy,
        owner: result.blockedBy === "writer" ? publicOwner(result.owner) : null,
        acquiredSlotsCount: result.blockedBy === "readers" ? result.acquiredSlotsCount : null,
        remainingTime: result.remainingTime,
      });
    }
  }

  protected notAcquiredError(result: Refused | CutShortResult): Error {
    return new FailedAcquireWriterLockError(
      this.key.get(),
      this.id,
      result.blockedBy,
      result.blockedBy === "writer" ? publicOwner(result.owner) : undefined,
      "cause" in result ? { cause: result.cause } : undefined,
    );
  }

  protected notReleasedError(): Error {
    return new FailedReleaseWriterLockError(this.key.get(), this.id);
  }

  protected notRefreshedError(): Error {
    return new FailedRefreshWriterLockError(this.key.get(), this.id);
  }

  protected cutShortResult(refused: Refused | undefined, cause: TimeoutError): CutShortResult {
    return refused === undefined
      ? { acquired: false, blockedBy: undefined, remainingTime: null, cause }
      : { ...refused, cause };
  }

  /** The operation as the adapter names it, in the UNEXPECTED_ERROR of a cut-off. */
  override cutShort(
    operation: string,
    refused: Refused | undefined,
    cause: TimeoutError,
  ): CutShortResult {
    return super.cutShort(operation === "acquire" ? "acquireWriter" : operation, refused, cause);
  }
}
