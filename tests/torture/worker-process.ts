/**
 * A torture worker (fixtures/torture-worker.ts) as the parent drives it: started with its
 * settings (and a shifted clock, maybe), its lines ("ready", "holding", "done") turned into
 * promises and fields, and a way to talk to it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { WorkerSettings, WorkerStats } from "./torture-protocol.js";

const WORKER = fileURLToPath(new URL("./fixtures/torture-worker.ts", import.meta.url));
const SHIFT_CLOCK = new URL("./fixtures/shift-clock.ts", import.meta.url).href;

export type WorkerProcess = ReturnType<typeof startWorker>;

/** A worker process and what it said: "ready", "holding", "done". */
export function startWorker(settings: WorkerSettings, shiftMs: number) {
  const preload = shiftMs === 0 ? [] : ["--import", SHIFT_CLOCK];
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", ...preload, WORKER, JSON.stringify(settings)],
    {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, HASP_TORTURE_CLOCK_SHIFT_MS: String(shiftMs) },
    },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    if (stderr.length < 20_000) {
      stderr += chunk.toString();
    }
  });
  // stdin closes when the worker exits: writing then is no error worth a crash.
  child.stdin?.on("error", () => {});
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? String(signal)));
    child.once("error", (error) => resolve(error.message));
  });
  let onHolding: ((holding: { key: string; token: number }) => void) | undefined;
  const worker = {
    index: settings.index,
    shiftMs,
    child,
    exited,
    /** The worker's Date.now() minus this process's, when it was ready. */
    clockSkewMs: 0,
    stats: undefined as WorkerStats | undefined,
    ready: new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      lines.on("line", (line) => {
        const [command, first, second] = line.split(" ");
        if (command === "ready") {
          worker.clockSkewMs = Number(first) - Date.now();
          resolve();
        } else if (command === "holding") {
          onHolding?.({ key: first as string, token: Number(second) });
        } else if (command === "done") {
          worker.stats = JSON.parse(line.slice("done ".length)) as WorkerStats;
        }
      });
      void exited.then((code) =>
        reject(new Error(`worker ${settings.index} exited (${code}) before "ready": ${stderr}`)),
      );
    }),
    nextHolding: () =>
      new Promise<{ key: string; token: number }>((resolve) => {
        onHolding = resolve;
      }),
    send: (line: string) => {
      if (child.stdin?.writable) {
        child.stdin.write(`${line}\n`);
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
