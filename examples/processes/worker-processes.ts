// The coordinator's side of a multi-process run: starts worker processes (TypeScript, through
// tsx) with their settings, waits until each says it is ready (connected to its store), then
// tells them all to go at once, so that they contend from their first section. They talk over
// Node's IPC channel; the worker's side is worker-channel.ts.
import { type ChildProcess, fork } from "node:child_process";
import { createRequire } from "node:module";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import type { GoMessage, ReadyMessage } from "./worker-channel.js";

// Absolute, so that the workers start from any working directory.
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
/** What is kept of a worker's stderr, for the reports of a failure. */
const STDERR_LIMIT = 20_000;

export type StartOptions = {
  /** Modules each worker imports before its script (`node --import`), after tsx. */
  preload?: readonly string[];
  /** Added to this process's environment. */
  env?: Readonly<Record<string, string>>;
};

/** A worker process as its coordinator drives it. */
export type WorkerProcess<Report> = {
  readonly index: number;
  readonly child: ChildProcess;
  /** Resolves at the worker's "ready"; rejects when it exits before. */
  readonly ready: Promise<ReadyMessage>;
  /** Resolves when it exited: its exit code, or the signal that ended it. */
  readonly exited: Promise<number | string>;
  /** Its `Date.now()` minus this process's, when it was ready. */
  clockSkewMs: number;
  /** Called with every message but "ready". */
  onReport(listener: (report: Report) => void): void;
  /** Sends a message, unless the worker is gone. */
  send(message: object): void;
  stderr(): string;
  /** Its exit code or signal, or "still running". */
  exitCode(): number | string;
  /** SIGKILL, unless it has exited. */
  kill(): void;
};

/**
 * Starts `count` workers running `script`, the `index`-th with `settingsOf(index)` as its one
 * argument (JSON).
 */
export function startWorkers<Settings, Report>(
  script: string,
  count: number,
  settingsOf: (index: number) => Settings,
  options: StartOptions | ((index: number) => StartOptions) = {},
): Array<WorkerProcess<Report>> {
  return Array.from({ length: count }, (_, index) =>
    startWorker<Report>(
      script,
      index,
      settingsOf(index),
      typeof options === "function" ? options(index) : options,
    ),
  );
}

function startWorker<Report>(
  script: string,
  index: number,
  settings: unknown,
  options: StartOptions,
): WorkerProcess<Report> {
  const child = fork(script, [JSON.stringify(settings)], {
    execArgv: ["--import", TSX, ...(options.preload ?? []).flatMap((m) => ["--import", m])],
    stdio: ["ignore", "ignore", "pipe", "ipc"],
    env: { ...process.env, ...options.env },
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    if (stderr.length < STDERR_LIMIT) {
      stderr += chunk.toString();
    }
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? String(signal)));
    // A send to a worker that just exited fails here, not as a crash of the coordinator.
    child.on("error", (error) => resolve(error.message));
  });
  const listeners: Array<(report: Report) => void> = [];
  const worker: WorkerProcess<Report> = {
    index,
    child,
    exited,
    clockSkewMs: 0,
    ready: new Promise<ReadyMessage>((resolve, reject) => {
      child.on("message", (message: ReadyMessage | Report) => {
        if ((message as ReadyMessage).type === "ready") {
          worker.clockSkewMs = (message as ReadyMessage).wallClock - Date.now();
          resolve(message as ReadyMessage);
        } else {
          for (const listener of listeners) {
            listener(message as Report);
          }
        }
      });
      void exited.then((code) =>
        reject(new Error(`worker ${index} exited (${code}) before "ready": ${stderr}`)),
      );
    }),
    onReport: (listener) => {
      listeners.push(listener);
    },
    send: (message) => {
      if (child.connected) {
        child.send(message);
      }
    },
    stderr: () => stderr,
    exitCode: () => child.exitCode ?? child.signalCode ?? "still running",
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
      }
    },
  };
  worker.ready.catch(() => {});
  return worker;
}

/**
 * The barrier: resolves when every worker is ready, or rejects with the first that exited
 * first, or after `timeoutMs`.
 */
export async function allReady(
  workers: ReadonlyArray<WorkerProcess<unknown>>,
  timeoutMs: number,
): Promise<void> {
  await withTimeout(
    Promise.all(workers.map((worker) => worker.ready)),
    timeoutMs,
    "the workers to start",
  );
}

/** `promise`, or a rejection naming `what` after `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const timer = new AbortController();
  try {
    return await Promise.race([
      promise,
      sleep(ms, undefined, { signal: timer.signal }).then(() => {
        throw new Error(`gave up waiting ${Math.round(ms / 1000)} s for ${what}`);
      }),
    ]);
  } finally {
    timer.abort();
  }
}

/**
 * "go" to every worker. `epoch` (a `process.hrtime.bigint()` of this process) is the zero of
 * the run's clock: hrtime is the system's monotonic clock, so every process's times compare.
 */
export function go<Payload extends object>(
  workers: ReadonlyArray<WorkerProcess<unknown>>,
  epoch: bigint,
  payload: Payload,
): void {
  const message: GoMessage<Payload> = { type: "go", epoch: epoch.toString(), ...payload };
  for (const worker of workers) {
    worker.send(message);
  }
}
