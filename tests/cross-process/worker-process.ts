// Starting a worker process of a cross-process test: it prints "ready", then waits for "go".
import { type ChildProcess, spawn } from "node:child_process";
import { expect } from "vitest";

/** A worker process; `ready` resolves at its "ready" line, `exited` to its exit code. */
export function startWorker(worker: string, args: string[]) {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", worker, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? String(signal)));
    child.once("error", (error) => resolve(error.message));
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.split("\n").includes("ready")) {
        resolve();
      }
    });
    void exited.then((code) =>
      reject(new Error(`worker ${child.pid} exited (${code}) before "ready": ${stderr}`)),
    );
  });
  return {
    child,
    ready,
    exited,
    stderr: () => (stderr === "" ? "" : `worker ${child.pid}: ${stderr}`),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
      }
    },
  };
}

/** What a worker records of each critical section it ran. */
export type Section = { token: number; start: number; end: number; pid: number };

/**
 * Checks a log of critical sections in the order they wrote: every worker ran `perWorker`
 * sections, tokens strictly increase, no two sections overlap in time. Returns how many times
 * the key changed hands between processes.
 */
export function checkSections(
  log: readonly Section[],
  pids: readonly number[],
  perWorker: number,
): number {
  expect(log).toHaveLength(pids.length * perWorker);
  const counts = new Map<number, number>();
  for (const section of log) {
    counts.set(section.pid, (counts.get(section.pid) ?? 0) + 1);
  }
  expect([...counts.keys()].sort()).toEqual([...pids].sort());
  expect([...counts.values()]).toEqual(pids.map(() => perWorker));

  // The tokens, in the order the sections wrote, are strictly increasing.
  for (let i = 1; i < log.length; i++) {
    const [before, after] = [log[i - 1], log[i]] as [Section, Section];
    expect(after.token, `section ${i} after section ${i - 1}`).toBeGreaterThan(before.token);
  }

  // No two sections overlap in time (sorted by start, each starts after every earlier end).
  let latestEnd = Number.NEGATIVE_INFINITY;
  for (const section of [...log].sort((a, b) => a.start - b.start)) {
    expect(section.start, `section of ${section.pid} (token ${section.token})`).toBeGreaterThan(
      latestEnd,
    );
    latestEnd = Math.max(latestEnd, section.end);
  }
  return log.filter((section, i) => i > 0 && section.pid !== log[i - 1]?.pid).length;
}
