import * as v from "valibot";
import { mustBe, parseSettings, settingsObject } from "../settings/parse-settings.js";
import { type ITimeSpan, TimeSpan } from "../time-span/time-span.js";
import { timeSpanSchema } from "../time-span/time-span-schema.js";

/**
 * Decides how long `retry` waits after a failed attempt. Asked afresh for every delay, with
 * the number of the attempt that just failed (1 for the first) and its error (`undefined`
 * when the attempt returned `false`).
 */
export type BackoffPolicy = (attempt: number, error: unknown) => ITimeSpan;

/** Settings of {@link constantBackoff}. */
export type ConstantBackoffSettings = {
  /**
   * The wait after every failed attempt.
   * @default 1 second
   */
  delay?: ITimeSpan;
  /**
   * Full jitter: wait a random time between 0 and the computed delay, so that clients that
   * failed together do not retry together.
   * @default false
   */
  jitter?: boolean;
};

/** Settings of {@link linearBackoff}. */
export type LinearBackoffSettings = {
  /** The first delay; the n-th delay is `n × minDelay`. @default 1 second */
  minDelay?: ITimeSpan;
  /**
   * The cap.
   * @default 1 minute
   */
  maxDelay?: ITimeSpan;
  /** See {@link ConstantBackoffSettings.jitter}. @default false */
  jitter?: boolean;
};

/** Settings of {@link exponentialBackoff}. */
export type ExponentialBackoffSettings = {
  /** The first delay; the n-th delay is `minDelay × multiplier^(n-1)`. @default 100 ms */
  minDelay?: ITimeSpan;
  /** The cap. @default 1 minute */
  maxDelay?: ITimeSpan;
  /**
   * What each delay is multiplied by to get the next; at least 1.
   * @default 2
   */
  multiplier?: number;
  /** See {@link ConstantBackoffSettings.jitter}. @default false */
  jitter?: boolean;
};

const duration = (fallback: TimeSpan) =>
  v.optional(
    v.pipe(
      timeSpanSchema,
      v.check((span) => !span.isNegative(), "must not be negative"),
    ),
    fallback,
  );

const jitter = v.optional(v.boolean(mustBe("a boolean")), false);

const constantBackoffSchema = settingsObject({
  delay: duration(TimeSpan.fromSeconds(1)),
  jitter,
});

const linearBackoffSchema = v.pipe(
  settingsObject({
    minDelay: duration(TimeSpan.fromSeconds(1)),
    maxDelay: duration(TimeSpan.fromMinutes(1)),
    jitter,
  }),
  v.forward(
    v.check(
      ({ minDelay, maxDelay }) => !maxDelay.isShorterThan(minDelay),
      "must not be shorter than minDelay",
    ),
    ["maxDelay"],
  ),
);

const exponentialBackoffSchema = v.pipe(
  settingsObject({
    minDelay: duration(TimeSpan.fromMilliseconds(100)),
    maxDelay: duration(TimeSpan.fromMinutes(1)),
    multiplier: v.optional(
      v.pipe(
        v.number(mustBe("a number")),
        v.finite("must be finite"),
        v.minValue(1, "must be at least 1"),
      ),
      2,
    ),
    jitter,
  }),
  v.forward(
    v.check(
      ({ minDelay, maxDelay }) => !maxDelay.isShorterThan(minDelay),
      "must not be shorter than minDelay",
    ),
    ["maxDelay"],
  ),
);

function withJitter(milliseconds: number, jitter: boolean): TimeSpan {
  return TimeSpan.fromMilliseconds(jitter ? Math.random() * milliseconds : milliseconds);
}

/** The same delay after every attempt. */
export function constantBackoff(settings: ConstantBackoffSettings = {}): BackoffPolicy {
  const { delay, jitter } = parseSettings(
    "constantBackoff settings",
    constantBackoffSchema,
    settings,
  );
  return () => withJitter(delay.toMilliseconds(), jitter);
}

/** A delay that grows by `minDelay` after each attempt, up to `maxDelay`. */
export function linearBackoff(settings: LinearBackoffSettings = {}): BackoffPolicy {
  const { minDelay, maxDelay, jitter } = parseSettings(
    "linearBackoff settings",
    linearBackoffSchema,
    settings,
  );
  return (attempt) =>
    withJitter(Math.min(maxDelay.toMilliseconds(), minDelay.toMilliseconds() * attempt), jitter);
}

/** A delay that is multiplied by `multiplier` after each attempt, up to `maxDelay`. */
export function exponentialBackoff(settings: ExponentialBackoffSettings = {}): BackoffPolicy {
  const { minDelay, maxDelay, multiplier, jitter } = parseSettings(
    "exponentialBackoff settings",
    exponentialBackoffSchema,
    settings,
  );
  return (attempt) =>
    withJitter(
      Math.min(maxDelay.toMilliseconds(), minDelay.toMilliseconds() * multiplier ** (attempt - 1)),
      jitter,
    );
}
