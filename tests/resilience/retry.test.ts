import { afterEach, describe, expect, test, vi } from "vitest";
import { isInvalidArgumentError } from "../../src/errors/invalid-argument-error.js";
import {
  type BackoffPolicy,
  constantBackoff,
  exponentialBackoff,
  linearBackoff,
} from "../../src/resilience/backoff-policies.js";
import {
  isRetryError,
  isTimeoutError,
  RetryError,
} from "../../src/resilience/resilience-errors.js";
import { type RetryEvent, retry } from "../../src/resilience/retry.js";
import { Task } from "../../src/task/task.js";
import { TimeSpan } from "../../src/time-span/time-span.js";

class RetryableError extends Error {
  override name = "RetryableError";
}
class SubRetryableError extends RetryableError {}
class FatalError extends Error {
  override name = "FatalError";
}

const ms = (value: number) => TimeSpan.fromMilliseconds(value);
const noWait: BackoffPolicy = () => TimeSpan.ZERO;

/** A task whose n-th run (1-based) returns or throws outcomes[n - 1]. */
function scripted<T>(outcomes: Array<T | Error>) {
  const work = vi.fn(async () => {
    const outcome = outcomes[work.mock.calls.length - 1];
    if (outcome instanceof Error) {
      throw outcome;
    }
    return outcome as T;
  });
  return { task: new Task(work), work };
}

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("retry", () => {
  test("retries until success and returns its value", async () => {
    const { task, work } = scripted([new RetryableError("1"), new RetryableError("2"), "ok"]);
    expect(await task.pipe(retry({ maxAttempts: 4, backoffPolicy: noWait }))).toBe("ok");
    expect(work).toHaveBeenCalledTimes(3);
  });

  test("runs at most maxAttempts times and rethrows the last error unchanged", async () => {
    const last = new RetryableError("3");
    const { task, work } = scripted([new RetryableError("1"), new RetryableError("2"), last]);
    const error = await task
      .pipe(retry({ maxAttempts: 3, backoffPolicy: noWait }))
      .catch((reason: unknown) => reason);
    expect(error).toBe(last);
    expect(error).toBeInstanceOf(RetryableError);
    expect(work).toHaveBeenCalledTimes(3);
  });

  test("maxAttempts: 1 runs once and never waits", async () => {
    const backoffPolicy = vi.fn(noWait);
    const { task, work } = scripted([new RetryableError("only")]);
    await expect(task.pipe(retry({ maxAttempts: 1, backoffPolicy }))).rejects.toThrow("only");
    expect(work).toHaveBeenCalledTimes(1);
    expect(backoffPolicy).not.toHaveBeenCalled();
  });

  test("defaults: 4 attempts, every error retried", async () => {
    vi.useFakeTimers();
    const { task, work } = scripted([new FatalError("a"), new Error("b"), new Error("c"), "d"]);
    const result = task.pipe(retry()).then((value) => value);
    await vi.runAllTimersAsync();
    expect(await result).toBe("d");
    expect(work).toHaveBeenCalledTimes(4);
  });

  test("waits as the policy says between attempts, and never after the last", async () => {
    vi.useFakeTimers();
    const { task, work } = scripted<string>([
      new RetryableError("1"),
      new RetryableError("2"),
      new RetryableError("3"),
    ]);
    const outcome = task
      .pipe(retry({ maxAttempts: 3, backoffPolicy: (attempt) => ms(attempt * 100) }))
      .then(undefined, (reason: unknown) => reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(work).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(99);
    expect(work).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(work).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(199);
    expect(work).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(work).toHaveBeenCalledTimes(3);
    // Rejected right after the third attempt, with no timer left behind.
    expect(await outcome).toBeInstanceOf(RetryableError);
    expect(vi.getTimerCount()).toBe(0);
  });

  test("asks the backoff policy afresh for every wait, with the attempt and its error", async () => {
    const errors = [new RetryableError("1"), new RetryableError("2")];
    const backoffPolicy = vi.fn<BackoffPolicy>(() => TimeSpan.ZERO);
    const { task } = scripted([...errors, "ok"]);
    await task.pipe(retry({ backoffPolicy }));
    expect(backoffPolicy.mock.calls).toEqual([
      [1, errors[0]],
      [2, errors[1]],
    ]);
  });

  describe("errorPolicy", () => {
    test("an error class retries it and its subclasses, and rethrows others at once", async () => {
      const retried = scripted([new SubRetryableError("sub"), "ok"]);
      expect(
        await retried.task.pipe(retry({ errorPolicy: RetryableError, backoffPolicy: noWait })),
      ).toBe("ok");

      const fatal = new FatalError("fatal");
      const stopped = scripted([fatal, "never"]);
      await expect(
        stopped.task.pipe(retry({ errorPolicy: RetryableError, backoffPolicy: noWait })),
      ).rejects.toBe(fatal);
      expect(stopped.work).toHaveBeenCalledTimes(1);
    });

    test("a list of classes", async () => {
      const { task, work } = scripted([new RetryableError("a"), new FatalError("b"), "ok"]);
      expect(
        await task.pipe(
          retry({ errorPolicy: [RetryableError, FatalError], backoffPolicy: noWait }),
        ),
      ).toBe("ok");
      expect(work).toHaveBeenCalledTimes(3);
    });

    test("a predicate", async () => {
      const { task, work } = scripted([new Error("transient"), new Error("permanent"), "never"]);
      const error = await task
        .pipe(
          retry({
            errorPolicy: (error) => (error as Error).message === "transient",
            backoffPolicy: noWait,
          }),
        )
        .catch((reason: unknown) => reason);
      expect((error as Error).message).toBe("permanent");
      expect(work).toHaveBeenCalledTimes(2);
    });

    test("treatFalseAsError retries a false result and returns false when attempts run out", async () => {
      const retried = scripted([false, false, true]);
      expect(
        await retried.task.pipe(
          retry({ errorPolicy: { treatFalseAsError: true }, backoffPolicy: noWait }),
        ),
      ).toBe(true);
      expect(retried.work).toHaveBeenCalledTimes(3);

      const exhausted = scripted([false, false, false]);
      expect(
        await exhausted.task.pipe(
          retry({
            maxAttempts: 3,
            errorPolicy: { treatFalseAsError: true },
            backoffPolicy: noWait,
          }),
        ),
      ).toBe(false);
      expect(exhausted.work).toHaveBeenCalledTimes(3);
    });

    test("without treatFalseAsError a false result is a success", async () => {
      const { task, work } = scripted([false, true]);
      expect(await task.pipe(retry({ backoffPolicy: noWait }))).toBe(false);
      expect(work).toHaveBeenCalledTimes(1);
    });

    test("treatFalseAsError with errors: only those errors are retried", async () => {
      const fatal = new FatalError("fatal");
      const { task, work } = scripted([false, new RetryableError("r"), fatal, true]);
      await expect(
        task.pipe(
          retry({
            errorPolicy: { treatFalseAsError: true, errors: RetryableError },
            backoffPolicy: noWait,
          }),
        ),
      ).rejects.toBe(fatal);
      expect(work).toHaveBeenCalledTimes(3);
    });
  });

  test("onRetry hears each failed attempt before its wait; a throwing onRetry changes nothing", async () => {
    const events: RetryEvent[] = [];
    const first = new RetryableError("1");
    const { task } = scripted([first, false, true]);
    const result = await task.pipe(
      retry({
        errorPolicy: { treatFalseAsError: true },
        backoffPolicy: (attempt) => ms(attempt),
        onRetry: (event) => {
          events.push(event);
          throw new Error("observer failed");
        },
      }),
    );
    expect(result).toBe(true);
    expect(events).toEqual([
      { attempt: 1, delay: ms(1), error: first, returnedFalse: false },
      { attempt: 2, delay: ms(2), error: undefined, returnedFalse: true },
    ]);
  });

  test("throwRetryError: a RetryError listing every attempt's error, cause the last", async () => {
    const errors = [new RetryableError("1"), new RetryableError("2")];
    const { task } = scripted<string>(errors);
    const error = await task
      .pipe(retry({ maxAttempts: 2, backoffPolicy: noWait, throwRetryError: true }))
      .catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(RetryError);
    expect(isRetryError(error)).toBe(true);
    expect((error as RetryError).attempts).toBe(2);
    expect((error as RetryError).errors).toEqual(errors);
    expect((error as RetryError).cause).toBe(errors[1]);
    expect((error as RetryError).message).toBe("All 2 attempts failed");
  });

  test("an abort during a wait stops at once with the abort reason, clearing the timer", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const { task, work } = scripted<string>([new RetryableError("1"), "never"]);
    const outcome = task
      .pipe(retry({ backoffPolicy: () => TimeSpan.fromMinutes(1) }))
      .withSignal(controller.signal)
      .then(undefined, (reason: unknown) => reason);
    await vi.advanceTimersByTimeAsync(10);
    expect(work).toHaveBeenCalledTimes(1);
    controller.abort("caller gave up");
    expect(await outcome).toBe("caller gave up");
    await vi.advanceTimersByTimeAsync(120_000);
    expect(work).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  test("the abort reason is never retried", async () => {
    const controller = new AbortController();
    const work = vi.fn(async (signal: AbortSignal) => {
      controller.abort(new RetryableError("aborted"));
      throw signal.reason;
    });
    await expect(
      new Task(work)
        .pipe(retry({ errorPolicy: RetryableError, backoffPolicy: noWait }))
        .withSignal(controller.signal),
    ).rejects.toThrow("aborted");
    expect(work).toHaveBeenCalledTimes(1);
  });

  test.each([
    [{ maxAttempts: 0 }, "maxAttempts"],
    [{ maxAttempts: -1 }, "maxAttempts"],
    [{ maxAttempts: 1.5 }, "maxAttempts"],
    [{ maxAttempts: Number.NaN }, "maxAttempts"],
    [{ backoffPolicy: 5 }, "backoffPolicy"],
    [{ errorPolicy: "RetryableError" }, "errorPolicy"],
    [{ errorPolicy: { treatFalseAsError: false } }, "errorPolicy"],
    [{ onRetry: "log" }, "onRetry"],
    [{ maxAttemps: 3 }, "maxAttemps"],
  ])("rejects bad settings at construction: %o", (settings, field) => {
    const error = (() => {
      try {
        retry(settings as never);
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(isInvalidArgumentError(error)).toBe(true);
    expect((error as Error).message).toContain("retry settings");
    expect((error as Error).message).toContain(field);
  });

  test("is not a timeout error, and guards answer false for strangers", () => {
    expect(isRetryError(new Error("x"))).toBe(false);
    expect(isTimeoutError(new RetryError(1, []))).toBe(false);
    expect(isRetryError(null)).toBe(false);
  });
});

describe("backoff policies", () => {
  test("constant", () => {
    const policy = constantBackoff({ delay: ms(250) });
    expect([1, 2, 10].map((attempt) => policy(attempt, undefined).toMilliseconds())).toEqual([
      250, 250, 250,
    ]);
    expect(constantBackoff()(1, undefined).toMilliseconds()).toBe(1_000);
  });

  test("linear: n × minDelay, capped", () => {
    const policy = linearBackoff({ minDelay: ms(100), maxDelay: ms(350) });
    expect([1, 2, 3, 4, 9].map((attempt) => policy(attempt, undefined).toMilliseconds())).toEqual([
      100, 200, 300, 350, 350,
    ]);
  });

  test("exponential: minDelay × multiplier^(n-1), capped", () => {
    const policy = exponentialBackoff({ minDelay: ms(100), maxDelay: ms(1_000), multiplier: 3 });
    expect([1, 2, 3, 4, 20].map((attempt) => policy(attempt, undefined).toMilliseconds())).toEqual([
      100, 300, 900, 1_000, 1_000,
    ]);
    expect(exponentialBackoff()(2, undefined).toMilliseconds()).toBe(200);
  });

  test.each([
    ["constant", constantBackoff({ delay: ms(400), jitter: true })],
    ["linear", linearBackoff({ minDelay: ms(400), maxDelay: ms(400), jitter: true })],
    ["exponential", exponentialBackoff({ minDelay: ms(400), maxDelay: ms(400), jitter: true })],
  ])("%s full jitter stays within [0, delay] and uses the random source", (_name, policy) => {
    const random = vi.spyOn(Math, "random");
    for (const [draw, expected] of [
      [0, 0],
      [0.25, 100],
      [0.999, 399.6],
    ] as const) {
      random.mockReturnValueOnce(draw);
      expect(policy(1, undefined).toMilliseconds()).toBeCloseTo(expected, 6);
    }
    random.mockRestore();
    for (let i = 0; i < 200; i++) {
      const delay = policy(1, undefined).toMilliseconds();
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(400);
    }
  });

  test("without jitter the random source is not used", () => {
    const random = vi.spyOn(Math, "random");
    exponentialBackoff()(3, undefined);
    expect(random).not.toHaveBeenCalled();
  });

  test.each([
    ["delay", () => constantBackoff({ delay: ms(-1) })],
    ["delay", () => constantBackoff({ delay: 100 as never })],
    ["maxDelay", () => linearBackoff({ minDelay: ms(500), maxDelay: ms(100) })],
    ["multiplier", () => exponentialBackoff({ multiplier: 0.5 })],
    ["multiplier", () => exponentialBackoff({ multiplier: Number.POSITIVE_INFINITY })],
    ["jitter", () => exponentialBackoff({ jitter: "yes" as never })],
  ])("rejects bad settings naming %s", (field, build) => {
    expect(build).toThrow(expect.objectContaining({ name: "InvalidArgumentError" }));
    expect(build).toThrow(field);
  });
});
