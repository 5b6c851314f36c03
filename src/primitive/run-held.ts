// Every `run*` of every primitive: take the hold (blocking or not), run the function while it
// is held and keep it alive, and always release; the release never masks the function's
// outcome. The primitive's hold only tells the acquire's outcome (events, its typed error).

import type { ITimeSpan } from "../time-span/time-span.js";
import type { Hold, HoldAcquireResult, HoldAdapter } from "./hold.js";
import { HeldRun, type KeepAliveSettings } from "./keep-alive.js";
import { PRIMITIVE_DEFAULTS } from "./primitive-settings.js";
import { callRunnable, type Runnable } from "./run-context.js";

const identity = <T>(value: T): T => value;

/** A `run*`'s parsed settings: `time` and `interval` only count when it blocks. */
export type RunSettings = {
  readonly time?: ITimeSpan | undefined;
  readonly interval?: ITimeSpan | undefined;
  readonly autoRefresh: KeepAliveSettings;
};

/** How a `run*` takes its hold and answers: one constant per method. */
export type RunMode = {
  /** Waits as `acquireBlocking` does; else one attempt. */
  readonly blocking: boolean;
  /** Resolves to fn's value and throws the primitive's error when not taken; else to a tuple. */
  readonly orFail: boolean;
};

export const RUN = { blocking: false, orFail: false } as const;
export const RUN_OR_FAIL = { blocking: false, orFail: true } as const;
export const RUN_BLOCKING = { blocking: true, orFail: false } as const;
export const RUN_BLOCKING_OR_FAIL = { blocking: true, orFail: true } as const;

/** The hold a run takes: a `Hold` that tells an acquire's outcome (see `HoldFace`). */
export type RunHold<
  TAdapter extends HoldAdapter,
  TFace,
  TAcquire extends HoldAcquireResult,
  TClaim,
  TCutShort,
> = Hold<TAdapter, TFace, TAcquire, TClaim, TCutShort> & {
  /** Its events, and when `orFail` the primitive's error if nothing was taken. */
  tellAcquire(result: TAcquire | TCutShort, orFail: boolean): void;
};

/** Every `run*`, in one async step (each layer costs a promise and a tick). */
export async function runHeld<
  TAdapter extends HoldAdapter,
  TFace,
  TAcquire extends HoldAcquireResult,
  TClaim,
  TCutShort,
  TValue,
>(
  hold: RunHold<TAdapter, TFace, TAcquire, TClaim, TCutShort>,
  fn: Runnable<TValue>,
  settings: RunSettings,
  { blocking, orFail }: RunMode,
  signal: AbortSignal,
): Promise<TValue | [true, TValue] | [false, null]> {
  const result = blocking
    ? await hold.acquireBlocking(settings, signal)
    : await hold.tryAcquire(signal, identity);
  hold.tellAcquire(result, orFail);
  if (!(result as HoldAcquireResult).acquired) {
    return [false, null];
  }
  const run = new HeldRun(signal, hold);
  const { ttl } = hold;
  if (ttl !== null) {
    run.keepAlive(settings.autoRefresh, ttl.toMilliseconds(), PRIMITIVE_DEFAULTS.refreshFraction);
  }
  try {
    const token = (result as { fencingToken: number }).fencingToken;
    const value = await callRunnable(fn, run, token);
    return orFail ? value : [true, value];
  } finally {
    run.end();
    // A failed release is reported by its event (FAILED_RELEASE / UNEXPECTED_ERROR), never
    // thrown over fn's outcome. The adapter is awaited directly: one tick, not three.
    try {
      hold.runReleased(await hold.sendRelease());
    } catch (error) {
      hold.releaseFailed(error);
    }
  }
}
