// One bench job in a fresh child process (bench/child.ts): its answer, or why there was none.

import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Job, JobResult } from "./types.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CHILD = fileURLToPath(new URL("./child.ts", import.meta.url));

/** Never rejects: a child that cannot start, dies or overruns `timeoutMs` is an error result. */
export function runChild(job: Job, timeoutMs: number): Promise<JobResult> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = fork(CHILD, [], {
        cwd: ROOT,
        execArgv: ["--import", "tsx"],
        stdio: ["ignore", "ignore", "pipe", "ipc"],
        serialization: "json",
      });
    } catch (error) {
      resolve({ status: "error", error: `could not start the child: ${String(error)}` });
      return;
    }
    let stderr = "";
    let result: JobResult | undefined;
    let timedOut = false;
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4_000);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("message", (message) => {
      result = message as JobResult;
    });
    child.on("error", (error) => {
      stderr += `\n${error.message}`;
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (result !== undefined) {
        resolve(result);
        return;
      }
      const tail = stderr.trim().split("\n").slice(-3).join(" | ");
      resolve({
        status: "error",
        error: timedOut
          ? `killed: no answer within ${Math.round(timeoutMs / 1000)} s`
          : `the child died (code ${code}, signal ${signal})${tail === "" ? "" : `: ${tail}`}`,
      });
    });
    child.send(job);
  });
}
