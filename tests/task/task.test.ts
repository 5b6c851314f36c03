import { getEventListeners } from "node:events";
import { afterEach, describe, expect, test, vi } from "vitest";
import type { Middleware } from "../../src/task/middleware.js";
import { Task } from "../../src/task/task.js";
import { TimeSpan } from "../../src/time-span/time-span.js";

class CustomError extends Error {
  override name = "CustomError";
}

const trace =
  (log: string[], name: string): Middleware<string> =>
  async ({ next }) => {
    log.push(`${name}:before`);
    const value = await next();
    log.push(`${name}:after`);
    return `${name}(${value})`;
  };

afterEach(() => {
  vi.useRealTimers();
  Task.setDetachedErrorHandler(null);
});

describe("Task", () => {
  test("is lazy: nothing runs until awaited", async () => {
    const work = vi.fn(() => 1);
    const task = new Task(work);
    await Promise.resolve();
    expect(work).not.toHaveBeenCalled();
    expect(await task).toBe(1);
    expect(work).toHaveBeenCalledTimes(1);
  });

  test("awaiting twice runs the work once and returns the same result", async () => {
    const work = vi.fn(async () => ({ value: Math.random() }));
    const task = new Task(work);
    const first = await task;
    const second = await task;
    expect(second).toBe(first);
    expect(work).toHaveBeenCalledTimes(1);
  });

  test("then, catch and finally run it once", async () => {
    const work = vi.fn(async () => {
      throw new CustomError("boom");
    });
    const task = new Task(work);
    const onFinally = vi.fn();
    await expect(task.finally(onFinally)).rejects.toBeInstanceOf(CustomError);
    expect(await task.catch((error: unknown) => (error as Error).message)).toBe("boom");
    expect(onFinally).toHaveBeenCalledTimes(1);
    expect(work).toHaveBeenCalledTimes(1);
  });

  test("a synchronous throw becomes a rejection that keeps the class and cause", async () => {
    const cause = new Error("root");
    const task = new Task<number>(() => {
      throw new CustomError("sync", { cause });
    });
    const error = await task.then(
      () => null,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(CustomError);
    expect((error as Error).cause).toBe(cause);
  });

  test("the work receives the run's signal", async () => {
    let received: AbortSignal | undefined;
    await new Task((signal) => {
      received = signal;
    });
    expect(received).toBeInstanceOf(AbortSignal);
    expect(received?.aborted).toBe(false);
  });

  test("many concurrent runs print no MaxListenersExceededWarning", async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on("warning", onWarning);
    try {
      await Promise.all(
        Array.from(
          { length: 50 },
          (_, i) => new Task(() => new Promise((r) => setTimeout(r, 5, i))),
        ),
      );
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.map((warning) => warning.name)).not.toContain("MaxListenersExceededWarning");
    } finally {
      process.off("warning", onWarning);
    }
  });

  describe("signals", () => {
    test("withSignal: a caller's abort reaches the work and rejects with its reason at once", async () => {
      const controller = new AbortController();
      let workSignal: AbortSignal | undefined;
      const task = new Task<never>(
        (signal) =>
          new Promise(() => {
            workSignal = signal;
          }),
      ).withSignal(controller.signal);
      const outcome = task.then(
        () => "resolved",
        (reason: unknown) => reason,
      );
      await Promise.resolve();
      const reason = new CustomError("stop");
      controller.abort(reason);
      expect(await outcome).toBe(reason);
      expect(workSignal?.aborted).toBe(true);
    });

    test("an already aborted signal rejects without running the work", async () => {
      const work = vi.fn(() => 1);
      const task = new Task(work, AbortSignal.abort(new CustomError("early")));
      await expect(task).rejects.toThrow("early");
      expect(work).not.toHaveBeenCalled();
    });

    test("withSignal keeps a signal bound before it", async () => {
      const first = new AbortController();
      const second = new AbortController();
      const task = new Task<never>(() => new Promise(() => {}))
        .withSignal(first.signal)
        .withSignal(second.signal);
      const outcome = task.then(undefined, (reason: unknown) => reason);
      first.abort("first");
      expect(await outcome).toBe("first");
    });

    test("a middleware can hand the work a signal it aborts", async () => {
      let workSignal: AbortSignal | undefined;
      const abortingMiddleware: Middleware<string> = ({ signal, next }) => {
        const controller = new AbortController();
        const result = next(AbortSignal.any([signal, controller.signal]));
        controller.abort(new CustomError("by middleware"));
        return result;
      };
      const task = new Task<string>(
        (signal) =>
          new Promise(() => {
            workSignal = signal;
          }),
      ).pipe(abortingMiddleware);
      await expect(task).rejects.toThrow("by middleware");
      expect(workSignal?.aborted).toBe(true);
    });
  });

  describe("pipe", () => {
    test("each pipe wraps everything piped before it: the last pipe is outermost", async () => {
      const log: string[] = [];
      const task = new Task(() => {
        log.push("work");
        return "v";
      })
        .pipe(trace(log, "a"))
        .pipe(trace(log, "b"))
        .pipe(trace(log, "c"));
      expect(await task).toBe("c(b(a(v)))");
      expect(log).toEqual([
        "c:before",
        "b:before",
        "a:before",
        "work",
        "a:after",
        "b:after",
        "c:after",
      ]);
    });

    test("an array is listed outermost first", async () => {
      const log: string[] = [];
      const value = await new Task(() => "v").pipe([trace(log, "outer"), trace(log, "inner")]);
      expect(value).toBe("outer(inner(v))");
      expect(log).toEqual(["outer:before", "inner:before", "inner:after", "outer:after"]);
    });

    test("pipe returns a new task and leaves the original unchanged", async () => {
      const base = new Task(() => "v");
      const piped = base.pipe(trace([], "m"));
      expect(piped).not.toBe(base);
      expect(await base).toBe("v");
      expect(await piped).toBe("m(v)");
    });

    test("next runs the work afresh on every call", async () => {
      const work = vi.fn(() => "v");
      const twice: Middleware<string> = async ({ next }) => (await next()) + (await next());
      expect(await new Task(work).pipe(twice)).toBe("vv");
      expect(work).toHaveBeenCalledTimes(2);
    });

    test("pipe is lazy too", async () => {
      const middleware = vi.fn<Middleware<number>>(({ next }) => next());
      const task = new Task(() => 1).pipe(middleware);
      await Promise.resolve();
      expect(middleware).not.toHaveBeenCalled();
      await task;
      expect(middleware).toHaveBeenCalledTimes(1);
    });

    test("pipeWhen with a boolean applies the middleware only when true", async () => {
      expect(await new Task(() => "v").pipeWhen(true, trace([], "m"))).toBe("m(v)");
      expect(await new Task(() => "v").pipeWhen(false, trace([], "m"))).toBe("v");
    });

    test("pipeWhen with a function asks it at each run", async () => {
      let enabled = false;
      const task = new Task(() => "v").pipeWhen(() => enabled, trace([], "m"));
      const twice: Middleware<string> = async ({ next }) => {
        const first = await next();
        enabled = true;
        return `${first},${await next()}`;
      };
      expect(await task.pipe(twice)).toBe("v,m(v)");
    });
  });

  describe("detach", () => {
    test("runs the task without awaiting", async () => {
      const work = vi.fn(() => 1);
      new Task(work).detach();
      await Promise.resolve();
      expect(work).toHaveBeenCalledTimes(1);
    });

    test("a failure goes to the handler, never to an unhandled rejection", async () => {
      const unhandled = vi.fn();
      process.on("unhandledRejection", unhandled);
      const reported: unknown[] = [];
      Task.setDetachedErrorHandler((error) => reported.push(error));
      try {
        const error = new CustomError("detached");
        Task.reject(error).detach();
        await new Promise((resolve) => setTimeout(resolve, 20));
        expect(reported).toEqual([error]);
        expect(unhandled).not.toHaveBeenCalled();
      } finally {
        process.off("unhandledRejection", unhandled);
      }
    });

    test("the default handler writes to console.error, and a throwing handler is contained", async () => {
      const consoleError = vi.spyOn(console, "error").mockImplementation(() => {});
      const unhandled = vi.fn();
      process.on("unhandledRejection", unhandled);
      try {
        Task.reject(new CustomError("to console")).detach();
        await new Promise((resolve) => setTimeout(resolve, 10));
        expect(consoleError).toHaveBeenCalledWith(
          expect.stringContaining("detached task failed"),
          expect.any(CustomError),
        );
        Task.setDetachedErrorHandler(() => {
          throw new Error("handler broke");
        });
        Task.reject(new CustomError("again")).detach();
        await new Promise((resolve) => setTimeout(resolve, 10));
        expect(consoleError).toHaveBeenLastCalledWith(
          expect.stringContaining("detached task failed"),
          expect.objectContaining({ message: "handler broke" }),
        );
        expect(unhandled).not.toHaveBeenCalled();
      } finally {
        process.off("unhandledRejection", unhandled);
        consoleError.mockRestore();
      }
    });

    test("setDetachedErrorHandler returns the previous handler", () => {
      const mine = () => {};
      const previous = Task.setDetachedErrorHandler(mine);
      expect(Task.setDetachedErrorHandler(previous)).toBe(mine);
    });
  });

  describe("static helpers", () => {
    test("resolve: a value, a promise, lazily", async () => {
      expect(await Task.resolve(5)).toBe(5);
      expect(await Task.resolve(Promise.resolve("p"))).toBe("p");
      expect(Task.resolve(1)).toBeInstanceOf(Task);
    });

    test("reject: rejects with the very error, lazily (no unhandled rejection before use)", async () => {
      const unhandled = vi.fn();
      process.on("unhandledRejection", unhandled);
      try {
        const error = new CustomError("r");
        const task = Task.reject(error);
        await new Promise((resolve) => setTimeout(resolve, 10));
        expect(unhandled).not.toHaveBeenCalled();
        await expect(task).rejects.toBe(error);
      } finally {
        process.off("unhandledRejection", unhandled);
      }
    });

    test("all: results in order, tasks run in parallel", async () => {
      const started: number[] = [];
      const make = (n: number, ms: number) =>
        new Task(async () => {
          started.push(n);
          await new Promise((resolve) => setTimeout(resolve, ms));
          return n;
        });
      const result: [number, number, string] = await Task.all([make(1, 30), make(2, 5), "x"]);
      expect(result).toEqual([1, 2, "x"]);
      expect(started).toEqual([1, 2]);
    });

    test("all: rejects on the first failure and aborts the tasks still running", async () => {
      let slowSignal: AbortSignal | undefined;
      const slow = new Task<number>(
        (signal) =>
          new Promise(() => {
            slowSignal = signal;
          }),
      );
      const failing = new Task<number>(async () => {
        throw new CustomError("all failed");
      });
      await expect(Task.all([slow, failing])).rejects.toThrow("all failed");
      expect(slowSignal?.aborted).toBe(true);
    });

    test("allSettled: every outcome, never rejects", async () => {
      const result = await Task.allSettled([Task.resolve(1), Task.reject(new CustomError("no"))]);
      expect(result[0]).toEqual({ status: "fulfilled", value: 1 });
      expect(result[1]).toMatchObject({ status: "rejected", reason: expect.any(CustomError) });
    });

    test("race: the first to settle wins, the others are aborted", async () => {
      let loserSignal: AbortSignal | undefined;
      const loser = new Task<string>(
        (signal) =>
          new Promise(() => {
            loserSignal = signal;
          }),
      );
      const winner = new Task(async () => "fast");
      expect(await Task.race([loser, winner])).toBe("fast");
      expect(loserSignal?.aborted).toBe(true);
      const pending = new Task<string>(() => new Promise(() => {}));
      await expect(Task.race([pending, Task.reject(new CustomError("first"))])).rejects.toThrow(
        "first",
      );
    });

    test("any: the first success wins; AggregateError when all fail", async () => {
      expect(await Task.any([Task.reject(new CustomError("a")), Task.resolve("ok")])).toBe("ok");
      const error = await Task.any([
        Task.reject(new CustomError("a")),
        Task.reject(new CustomError("b")),
      ]).catch((reason: unknown) => reason);
      expect(error).toBeInstanceOf(AggregateError);
      expect((error as AggregateError).errors.map((e: Error) => e.message)).toEqual(["a", "b"]);
    });

    test("combinators are lazy", async () => {
      const work = vi.fn(() => 1);
      const combined = Task.all([new Task(work)]);
      await Promise.resolve();
      expect(work).not.toHaveBeenCalled();
      expect(await combined).toEqual([1]);
    });

    test("an abort of the combined task reaches its children", async () => {
      const controller = new AbortController();
      let childSignal: AbortSignal | undefined;
      const child = new Task<number>(
        (signal) =>
          new Promise(() => {
            childSignal = signal;
          }),
      );
      const outcome = Task.all([child])
        .withSignal(controller.signal)
        .then(undefined, (reason: unknown) => reason);
      await Promise.resolve();
      controller.abort("stop");
      expect(await outcome).toBe("stop");
      expect(childSignal?.aborted).toBe(true);
    });

    test("fromCallback: resolve, reject and the signal", async () => {
      expect(await Task.fromCallback<number>((resolve) => setTimeout(() => resolve(7), 1))).toBe(7);
      await expect(
        Task.fromCallback((_resolve, reject) => reject(new CustomError("cb"))),
      ).rejects.toThrow("cb");
      let seen: AbortSignal | undefined;
      await Task.fromCallback<void>((resolve, _reject, signal) => {
        seen = signal;
        resolve();
      });
      expect(seen).toBeInstanceOf(AbortSignal);
    });

    test("wrapFn: same result as the function, lazily, for sync and async functions", async () => {
      const add = vi.fn((a: number, b: number) => a + b);
      const addAsync = async (a: number, b: number) => a + b;
      const lazy = Task.wrapFn(add)(1, 2);
      expect(lazy).toBeInstanceOf(Task);
      expect(add).not.toHaveBeenCalled();
      expect(await lazy).toBe(3);
      expect(await Task.wrapFn(addAsync)(2, 3)).toBe(5);
    });

    test("isTask", () => {
      expect(Task.isTask(Task.resolve(1))).toBe(true);
      expect(Task.isTask(Promise.resolve(1))).toBe(false);
      // biome-ignore lint/suspicious/noThenProperty: a foreign thenable is the point here.
      expect(Task.isTask({ then() {} })).toBe(false);
    });
  });

  describe("many tasks on one signal", () => {
    /** Collects the MaxListenersExceededWarnings emitted while `fn` runs (and a tick after). */
    async function maxListenersWarnings(fn: () => Promise<unknown>): Promise<string[]> {
      const warnings: string[] = [];
      const onWarning = (warning: Error) => {
        if (warning.name === "MaxListenersExceededWarning") warnings.push(warning.message);
      };
      process.on("warning", onWarning);
      try {
        await fn();
        await new Promise((resolve) => setImmediate(resolve));
      } finally {
        process.off("warning", onWarning);
      }
      return warnings;
    }

    test("50 running tasks and 50 delays on one signal hold one abort listener on it, none once settled", async () => {
      const controller = new AbortController();
      const warnings = await maxListenersWarnings(async () => {
        let release = () => {};
        const released = new Promise<void>((resolve) => {
          release = resolve;
        });
        // `then` and `catch` start a task at once (Promise.resolve would a tick later).
        const tasks = Array.from({ length: 50 }, (_, index) =>
          new Task(() => released.then(() => index))
            .withSignal(controller.signal)
            .then((value) => value),
        );
        const delays = Array.from({ length: 50 }, () =>
          Task.delay(TimeSpan.fromSeconds(60), controller.signal).catch(
            (reason: unknown) => reason,
          ),
        );
        // A delay's own listener and its run's share the signal's one.
        expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);
        release();
        expect(await Promise.all(tasks)).toEqual(Array.from({ length: 50 }, (_, index) => index));
        expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);
        controller.abort("stop");
        expect(await Promise.all(delays)).toEqual(Array.from({ length: 50 }, () => "stop"));
      });
      expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
      expect(warnings).toEqual([]);
    });

    test("50 delays without a signal print no MaxListenersExceededWarning", async () => {
      const warnings = await maxListenersWarnings(() =>
        Promise.all(Array.from({ length: 50 }, () => Task.delay(TimeSpan.fromMilliseconds(20)))),
      );
      expect(warnings).toEqual([]);
    });

    test("a delay that ended leaves the one listener of those still waiting; a task on an aborted signal adds none", async () => {
      const controller = new AbortController();
      const first = Task.delay(TimeSpan.fromMilliseconds(10), controller.signal);
      const second = Task.delay(TimeSpan.fromSeconds(60), controller.signal).catch(
        (reason: unknown) => reason,
      );
      await first;
      expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);
      controller.abort("stop");
      expect(await second).toBe("stop");
      // A task started on the aborted signal rejects at once, adding nothing.
      await expect(Task.delay(TimeSpan.fromSeconds(1), controller.signal)).rejects.toBe("stop");
      expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    });
  });

  describe("delay", () => {
    test("waits the given time", async () => {
      vi.useFakeTimers();
      let done = false;
      const waiting = Task.delay(TimeSpan.fromMilliseconds(100)).then(() => {
        done = true;
      });
      await vi.advanceTimersByTimeAsync(99);
      expect(done).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await waiting;
      expect(done).toBe(true);
    });

    test("waits past the 2^31 ms timer limit instead of firing at once", async () => {
      vi.useFakeTimers();
      let done = false;
      const waiting = Task.delay(TimeSpan.fromDays(30)).then(() => {
        done = true;
      });
      await vi.advanceTimersByTimeAsync(1_000);
      expect(done).toBe(false);
      await vi.advanceTimersByTimeAsync(2 ** 31);
      expect(done).toBe(false);
      await vi.advanceTimersByTimeAsync(TimeSpan.fromDays(30).toMilliseconds() - 2 ** 31 - 1_000);
      await waiting;
      expect(done).toBe(true);
    });

    test("is abortable through its signal and clears its timer", async () => {
      vi.useFakeTimers();
      const controller = new AbortController();
      const waiting = Task.delay(TimeSpan.fromSeconds(60), controller.signal).then(
        () => "elapsed",
        (reason: unknown) => reason,
      );
      await vi.advanceTimersByTimeAsync(10);
      expect(vi.getTimerCount()).toBe(1);
      controller.abort("abort!");
      expect(await waiting).toBe("abort!");
      expect(vi.getTimerCount()).toBe(0);
    });

    test("is abortable through the run's signal", async () => {
      const controller = new AbortController();
      const waiting = Task.delay(TimeSpan.fromSeconds(60)).withSignal(controller.signal);
      controller.abort("run aborted");
      await expect(waiting).rejects.toBe("run aborted");
    });
  });
});
