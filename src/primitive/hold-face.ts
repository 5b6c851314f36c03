// The Tasks a primitive's public face hands out (acquire, release, refresh, run* and their
// …OrFail forms, dispose), built alike for every primitive over its hold. A primitive's hold
// extends `HoldFace` with what differs: how an acquire's outcome is told (its events) and its
// typed errors. The face (`Lock`, `Semaphore`) keeps its own documented methods, each a line
// that hands over to its hold: a public class extending an internal one would hide its API.

import { parseSettings } from "../settings/parse-settings.js";
import { Task } from "../task/task.js";
import type { ITimeSpan } from "../time-span/time-span.js";
import { BOOLEAN_ANSWER } from "./adapter-answers.js";
import { Hold, type HoldAcquireResult, type HoldAdapter, type HoldEvents } from "./hold.js";
import {
  blockingSettingsSchema,
  refreshTtlSchema,
  runBlockingSettingsSchema,
  runSettingsSchema,
} from "./primitive-settings.js";
import { checkRunnable, type Runnable } from "./run-context.js";
import { type RunMode, runHeld } from "./run-held.js";

/** A primitive's event names (`LOCK_EVENTS`), as far as its holds go. */
type PrimitiveHoldEvents = {
  readonly RELEASED: string;
  readonly FAILED_RELEASE: string;
  readonly REFRESHED: string;
  readonly FAILED_REFRESH: string;
  readonly UNEXPECTED_ERROR: string;
};

/** The events a primitive's holds report under (see `HoldEvents`). */
export function holdEvents(events: PrimitiveHoldEvents): HoldEvents {
  return Object.freeze({
    released: events.RELEASED,
    failedRelease: events.FAILED_RELEASE,
    refreshed: events.REFRESHED,
    failedRefresh: events.FAILED_REFRESH,
    unexpectedError: events.UNEXPECTED_ERROR,
  });
}

/** An acquire that took nothing, as far as a face goes. */
type NotTaken = { readonly acquired: false };

/** What `run`/`runBlocking` resolve to: whether the hold was taken, and fn's value. */
type RunResult<TValue> = [true, TValue] | [false, null];

export abstract class HoldFace<
  TAdapter extends HoldAdapter,
  TFace,
  TAcquire extends HoldAcquireResult,
  TClaim,
  TCutShort extends NotTaken,
> extends Hold<TAdapter, TFace, TAcquire, TClaim, TCutShort> {
  /** Tells listeners an acquire's outcome (ACQUIRED, or the primitive's refusal event). */
  protected abstract announce(result: TAcquire | TCutShort): void;

  /** The error of an `…OrFail` acquire that took nothing (`FailedAcquireLockError` and its kin). */
  protected abstract notAcquiredError(result: Extract<TAcquire, NotTaken> | TCutShort): Error;

  /** The error of `releaseOrFail` when nothing was released. */
  protected abstract notReleasedError(): Error;

  /** The error of `refreshOrFail` when nothing was refreshed. */
  protected abstract notRefreshedError(): Error;

  acquireTask(): Task<boolean> {
    return new Task((signal) => this.tryAcquire(signal, (result) => this.#announced(result)));
  }

  acquireOrFailTask(): Task<number> {
    return new Task((signal) => this.tryAcquire(signal, (result) => this.#orFail(result)));
  }

  /** Parses `settings` now: a bad one throws at the call, not when the Task runs. */
  acquireBlockingTask(settings: unknown): Task<boolean> {
    const parsed = parseSettings("blocking settings", blockingSettingsSchema, settings);
    return new Task(async (signal) => this.#announced(await this.acquireBlocking(parsed, signal)));
  }

  acquireBlockingOrFailTask(settings: unknown): Task<number> {
    const parsed = parseSettings("blocking settings", blockingSettingsSchema, settings);
    return new Task(async (signal) => this.#orFail(await this.acquireBlocking(parsed, signal)));
  }

  releaseTask(): Task<boolean> {
    return new Task(() => this.release());
  }

  releaseOrFailTask(): Task<void> {
    return new Task(async () => {
      if (!(await this.release())) {
        throw this.notReleasedError();
      }
    });
  }

  /** `[Symbol.asyncDispose]`: releases a hold it has; never throws over the block's outcome. */
  async dispose(): Promise<void> {
    if (this.fencingToken === null) {
      return;
    }
    try {
      await this.release();
    } catch {
      // Reported (UNEXPECTED_ERROR) by the release.
      this.retryRelease();
    }
  }

  refreshTask(ttl: ITimeSpan | undefined): Task<boolean> {
    const parsed = parseSettings("refresh ttl", refreshTtlSchema, ttl);
    return new Task(() => this.refreshFor(parsed));
  }

  refreshOrFailTask(ttl: ITimeSpan | undefined): Task<void> {
    const parsed = parseSettings("refresh ttl", refreshTtlSchema, ttl);
    return new Task(async () => {
      if (!(await this.refreshFor(parsed))) {
        throw this.notRefreshedError();
      }
    });
  }

  /**
   * Every `run*`: a Task of `runHeld`. Resolves to fn's value when `orFail` (which throws the
   * primitive's error when nothing is taken), else to a `[taken, value]` tuple.
   */
  runTask<TValue>(
    fn: Runnable<TValue>,
    settings: unknown,
    mode: RunMode & { orFail: true },
  ): Task<TValue>;
  runTask<TValue>(
    fn: Runnable<TValue>,
    settings: unknown,
    mode: RunMode & { orFail: false },
  ): Task<RunResult<TValue>>;
  runTask<TValue>(
    fn: Runnable<TValue>,
    settings: unknown,
    mode: RunMode,
  ): Task<TValue | RunResult<TValue>> {
    checkRunnable(fn);
    const schema = mode.blocking ? runBlockingSettingsSchema : runSettingsSchema;
    const parsed = parseSettings("run settings", schema, settings);
    return new Task(
      (signal) => runHeld(this, fn, parsed, mode, signal) as Promise<TValue | RunResult<TValue>>,
    );
  }

  /**
   * The primitive's force release (`send`: its adapter call, answering whether anything was
   * held): this face's hold is forgotten, and `event` tells `{ hasReleased }`.
   */
  protected forceReleaseBy(
    operation: string,
    event: string,
    send: (adapter: TAdapter, key: string) => Promise<boolean>,
  ): Promise<boolean> {
    return this.call(operation, BOOLEAN_ANSWER, send, (hasReleased) => {
      this.forgetHold();
      this.emit(event, { hasReleased });
      return hasReleased;
    });
  }

  /** What a `run*` tells of its acquire (see `runHeld`). */
  tellAcquire(result: TAcquire | TCutShort, orFail: boolean): void {
    if (orFail) {
      this.#orFail(result);
    } else {
      this.announce(result);
    }
  }

  #announced(result: TAcquire | TCutShort): boolean {
    this.announce(result);
    return result.acquired;
  }

  /** Tells an acquire's outcome, and throws the primitive's error when nothing was taken. */
  #orFail(result: TAcquire | TCutShort): number {
    this.announce(result);
    const outcome = result as HoldAcquireResult | TCutShort;
    if (!outcome.acquired) {
      throw this.notAcquiredError(outcome as Extract<TAcquire, NotTaken> | TCutShort);
    }
    return outcome.fencingToken;
  }
}
