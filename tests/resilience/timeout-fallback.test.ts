import { afterEach, describe, expect, test, vi } from "vitest";
import { isHaspError } from "../../src/errors/hasp-error.js";
import { isInvalidArgumentError } from "../../src/errors/invalid-argument-error.js";
import { fallback } from "../../src/resilience/fallback.js";
import { isTimeoutError, TimeoutError } from "../../src/resilience/resilience-errors.js";
import { retry } from "../../src/resilience/retry.js";
import { timeout } from "../../src/resilience/timeout.js";
import { Task } from "../../src/task/task.js";
import { TimeSpan } from "../../src/time-span/time-span.js";

class KnownError extends Error {
  override name = "KnownError";
}

const ms = (value: number) => TimeSpan.fromMilliseconds(value);

/** Work that only ends when its signal aborts (or after `ms`). */
function slowWork(duration: number, seen: AbortSignal[] = []) {
  return vi.fn(
    (signal: AbortSignal) =>
      new Promise<string>((resolve, reject) => {
        seen.push(signal);
        const timer = setTimeout(() => resolve("finished"), duration);
        signal.addEventListener("abort", () => {
          clearTimeout(timer);
          reject(signal.reason);
        });
      }),
  );
}

afterEach(() => {
  vi.useRealTimers();
});

describe("timeout", () => {
  test("rejects with TimeoutError and aborts the work's signal with it", async () => {
    vi.useFakeTimers();
    const seen: AbortSignal[] = [];
    const outcome = new Task(slowWork(10_000, seen))
      .pipe(timeout({ waitTime: ms(100) }))
      .then(undefined, (reason: unknown) => reason);
    await vi.advanceTimersByTimeAsync(99);
    expect(seen[0]?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const error = await outcome;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(isTimeoutError(error)).toBe(true);
    expect(isHaspError(error)).toBe(true);
    expect((error as TimeoutError).waitTime.toMilliseconds()).toBe(100);
    expect((error as TimeoutError).message).toBe("Timed out after 100ms");
    expect(seen[0]?.aborted).toBe(true);
    expect(seen[0]?.reason).toBe(error);
  });

  test("rejects on time even when the work ignores its signal", async () => {
    vi.useFakeTimers();
    const outcome = new Task(() => new Promise<string>(() => {}))
      .pipe(timeout({ waitTime: ms(50) }))
      .then(undefined, (reason: unknown) => reason);
    await vi.advanceTimersByTimeAsync(50);
    expect(await outcome).toBeInstanceOf(TimeoutError);
  });

  test("returns the value of work that finishes in time, and clears its timer", async () => {
    vi.useFakeTimers();
    const outcome = new Task(slowWork(20))
      .pipe(timeout({ waitTime: ms(1_000) }))
      .then((value) => value);
    await vi.advanceTimersByTimeAsync(20);
    expect(await outcome).toBe("finished");
    expect(vi.getTimerCount()).toBe(0);
  });

  test("passes through the work's own error", async () => {
    const error = new KnownError("own");
    await expect(Task.reject<string>(error).pipe(timeout({ waitTime: ms(1_000) }))).rejects.toBe(
      error,
    );
  });

  test("piped before retry, it limits each attempt; piped after, the whole", async () => {
    vi.useFakeTimers();
    const perAttemptWork = slowWork(10_000);
    const perAttempt = new Task(perAttemptWork)
      .pipe(timeout({ waitTime: ms(100) }))
      .pipe(retry({ maxAttempts: 3, errorPolicy: TimeoutError, backoffPolicy: () => ms(0) }))
      .then(undefined, (reason: unknown) => reason);
    // Three attempts of 100 ms, each followed by a 0 ms (at least 1 ms) timer.
    await vi.advanceTimersByTimeAsync(310);
    expect(await perAttempt).toBeInstanceOf(TimeoutError);
    expect(perAttemptWork).toHaveBeenCalledTimes(3);

    const wholeWork = slowWork(10_000);
    const whole = new Task(wholeWork)
      .pipe(retry({ maxAttempts: 3, backoffPolicy: () => ms(0) }))
      .pipe(timeout({ waitTime: ms(100) }))
      .then(undefined, (reason: unknown) => reason);
    await vi.advanceTimersByTimeAsync(100);
    expect(await whole).toBeInstanceOf(TimeoutError);
    // The timeout aborted the retry's signal, so it did not try again.
    expect(wholeWork).toHaveBeenCalledTimes(1);
  });

  test("an outer abort still wins with its own reason", async () => {
    const controller = new AbortController();
    const outcome = new Task(slowWork(10_000))
      .pipe(timeout({ waitTime: ms(5_000) }))
      .withSignal(controller.signal)
      .then(undefined, (reason: unknown) => reason);
    controller.abort("outer");
    expect(await outcome).toBe("outer");
  });

  test.each([
    [{ waitTime: ms(0) }],
    [{ waitTime: ms(-5) }],
    [{ waitTime: 100 }],
    [{}],
    [{ waitTime: { toMilliseconds: () => Number.NaN } }],
  ])("rejects bad settings at construction: %o", (settings) => {
    expect(() => timeout(settings as never)).toThrow(/timeout settings: waitTime/);
    try {
      timeout(settings as never);
    } catch (error) {
      expect(isInvalidArgumentError(error)).toBe(true);
    }
  });
});

describe("fallback", () => {
  test("replaces a failure with the fallback value", async () => {
    expect(
      await Task.reject<number>(new KnownError("x")).pipe(fallback({ fallbackValue: 0 })),
    ).toBe(0);
    expect(await Task.resolve(5).pipe(fallback({ fallbackValue: 0 }))).toBe(5);
  });

  test("errorPolicy: other errors pass through", async () => {
    const other = new Error("other");
    await expect(
      Task.reject<number>(other).pipe(fallback({ fallbackValue: 0, errorPolicy: KnownError })),
    ).rejects.toBe(other);
    expect(
      await Task.reject<number>(new KnownError("k")).pipe(
        fallback({ fallbackValue: 0, errorPolicy: KnownError }),
      ),
    ).toBe(0);
  });

  test("treatFalseAsError replaces false; onFallback hears each use", async () => {
    const onFallback = vi.fn();
    const value = await Task.resolve<boolean | "fallback">(false).pipe(
      fallback({ fallbackValue: "fallback", errorPolicy: { treatFalseAsError: true }, onFallback }),
    );
    expect(value).toBe("fallback");
    expect(onFallback).toHaveBeenCalledWith({ error: undefined, returnedFalse: true });
  });

  test("an abort of the run is not replaced", async () => {
    const controller = new AbortController();
    const outcome = new Task(slowWork(10_000))
      .pipe(fallback({ fallbackValue: "fallback" }))
      .withSignal(controller.signal)
      .then(undefined, (reason: unknown) => reason);
    controller.abort("gave up");
    expect(await outcome).toBe("gave up");
  });

  test("rejects bad settings at construction", () => {
    expect(() => fallback({ fallbackValue: 1, errorPolicy: "KnownError" as never })).toThrow(
      /fallback settings: errorPolicy/,
    );
  });
});
