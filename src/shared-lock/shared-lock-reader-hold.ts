// The reader side of one shared lock: a reader slot, as the semaphore's slot is one, over the
// readers' side of the adapter: the shared `HoldFace` with the reader's acquire (its limit), its
// claim, forceReleaseAllReaders, its events and errors.

import { WAIT_ANSWER } from "../primitive/adapter-answers.js";
import type { HoldEvents } from "../primitive/hold.js";
import { HoldFace } from "../primitive/hold-face.js";
import { publicOwner } from "../primitive/owner.js";
import type { TimeoutError } from "../resilience/resilience-errors.js";
import type { ISharedLock } from "./contracts/shared-lock.js";
import type {
  ISharedLockAdapter,
  SharedLockReaderAcquireResult,
  SharedLockReaderClaim,
} from "./contracts/shared-lock-adapter.js";
import {
  FailedRefreshReaderSemaphoreError,
  FailedReleaseReaderSemaphoreError,
  LimitReachedReaderSemaphoreError,
  SharedLockLostError,
} from "./contracts/shared-lock-errors.js";
import { SHARED_LOCK_EVENTS } from "./contracts/shared-lock-events.js";
import { SHARED_LOCK_ANSWERS } from "./shared-lock-adapter-answers.js";
import type { SharedLockSide } from "./shared-lock-context.js";
import type { SharedLockReporter } from "./shared-lock-reporter.js";
import type { SharedLockSettings } from "./shared-lock-writer-hold.js";

type Refused = Extract<SharedLockReaderAcquireResult, { acquired: false }>;

/** A blocking acquire given up at its cut-off, with a backend call unanswered. */
type CutShortResult =
  | (Refused & { cause: TimeoutError })
  | {
      acquired: false;
      /** No answer named what kept the reader out. */
      blockedBy: undefined;
      remainingTime: null;
      /** The time (and its slack) that ran out. */
      cause: TimeoutError;
    };

const READER_HOLD_EVENTS: HoldEvents = Object.freeze({
  released: SHARED_LOCK_EVENTS.READER_RELEASED,
  failedRelease: SHARED_LOCK_EVENTS.READER_FAILED_RELEASE,
  refreshed: SHARED_LOCK_EVENTS.READER_REFRESHED,
  failedRefresh: SHARED_LOCK_EVENTS.READER_FAILED_REFRESH,
  unexpectedError: SHARED_LOCK_EVENTS.UNEXPECTED_ERROR,
});

const READER_ANSWERS = Object.freeze({
  acquire: SHARED_LOCK_ANSWERS.acquireReader,
  waitForRelease: WAIT_ANSWER,
});

export class SharedLockReaderHold extends HoldFace<
  SharedLockSide,
  ISharedLock,
  SharedLockReaderAcquireResult,
  SharedLockReaderClaim,
  CutShortResult
> {
  readonly #adapter: ISharedLockAdapter;
  readonly #reporter: SharedLockReporter;
  readonly #limit: number;

  constructor(sharedLock: ISharedLock, settings: SharedLockSettings) {
    super({
      face: sharedLock,
      context: settings.sides.reader,
      key: settings.key,
      owner: settings.owner,
      id: settings.id,
      ttl: settings.ttl,
      events: READER_HOLD_EVENTS,
      answers: READER_ANSWERS,
    });
    this.#adapter = settings.context.adapter;
    this.#reporter = settings.context.reporter;
    this.#limit = settings.limit;
  }

  get limit(): number {
    return this.#limit;
  }

  sendAcquire(): Promise<unknown> {
    return this.#adapter.acquireReader(this.key.toString(), this.owner, this.#limit, this.ttl);
  }

  claim(): SharedLockReaderClaim {
    return { side: "reader", lockId: this.owner, limit: this.#limit, ttl: this.ttl };
  }

  lostError(): Error {
    return new SharedLockLostError(this.key.get(), this.id, "reader");
  }

  forceReleaseAllReaders(): Promise<boolean> {
    return this.forceReleaseBy(
      "forceReleaseAllReaders",
      SHARED_LOCK_EVENTS.READER_ALL_FORCE_RELEASED,
      (side, key) => side.adapter.forceReleaseAllReaders(key),
    );
  }

  /** A force release of the whole key (the writer hold's) freed this slot too. */
  forgotten(): void {
    this.forgetHold();
  }

  /** The store's word on this slot's token (a `getState` that found it). */
  learned(fencingToken: number): void {
    this.learnToken(fencingToken);
  }

  protected announce(result: SharedLockReaderAcquireResult | CutShortResult): void {
    const reporter = this.#reporter;
    if (!reporter.isListened()) {
      return;
    }
    if (result.acquired) {
      reporter.emit(this.face, SHARED_LOCK_EVENTS.READER_ACQUIRED, {
        fencingToken: result.fencingToken,
        ttl: this.ttl,
        limit: this.#limit,
      });
    } else if (result.blockedBy !== undefined) {
      reporter.emit(this.face, SHARED_LOCK_EVENTS.READER_UNAVAILABLE, {
        blockedBy: result.blockedBy,
        owner: result.blockedBy === "writer" ? publicOwner(result.owner) : null,
        limit: result.blockedBy === "limit" ? result.limit : null,
        acquiredSlotsCount: result.blockedBy === "writer" ? null : result.acquiredSlotsCount,
        remainingTime: result.remainingTime,
      });
    }
  }

  protected notAcquiredError(result: Refused | CutShortResult): Error {
    return new LimitReachedReaderSemaphoreError(
      this.key.get(),
      this.id,
      result.blockedBy,
      result.blockedBy === "writer" ? publicOwner(result.owner) : undefined,
      result.blockedBy === "limit" ? result.limit : undefined,
      "cause" in result ? { cause: result.cause } : undefined,
    );
  }

  protected notReleasedError(): Error {
    return new FailedReleaseReaderSemaphoreError(this.key.get(), this.id);
  }

  protected notRefreshedError(): Error {
    return new FailedRefreshReaderSemaphoreError(this.key.get(), this.id);
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
    return super.cutShort(operation === "acquire" ? "acquireReader" : operation, refused, cause);
  }
}
