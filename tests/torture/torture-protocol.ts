/**
 * What the torture runner (torture.ts) and its worker processes (fixtures/torture-worker.ts)
 * agree on: the worker's settings, its messages, and where the guarded resource and the log live.
 * "ready" and "go" are the shared harness's (examples/processes/worker-processes.ts).
 */

import type { SectionRecord as CheckedSection } from "../../examples/processes/check-sections.js";

export const TORTURE_BACKENDS = ["redis", "postgres", "mysql", "sqlite"] as const;
export type TortureBackend = (typeof TORTURE_BACKENDS)[number];

/** The worker's one argument, as JSON. */
export type WorkerSettings = {
  backend: TortureBackend;
  /** The lock backend: a URL (maybe through a delay proxy), or the SQLite file. */
  lockTarget: string;
  /** Where the guarded resource and the log live: a URL, or the SQLite file. */
  resourceTarget: string;
  /** Of the run: lock namespace, lock table, and prefix of every other key or table. */
  name: string;
  keys: string[];
  ttlMs: number;
  /** The TTL of a section the parent stops: shorter than the stop. */
  stallTtlMs: number;
  index: number;
  /** The worker exits with code 2 if still running after this long. */
  maxLifetimeMs: number;
  /** The negative control: lock through NoOpLockAdapter (every acquire succeeds). */
  noOpLock: boolean;
  /** A semaphore of this limit instead of a lock (with `noOpLock`: NoOpSemaphoreAdapter). */
  limit?: number;
};

/** What a worker prints at the end ("done <json>"). */
export type WorkerStats = {
  sections: number;
  /** LockBackendErrors met (each followed by another try of the same lock). */
  backendErrors: number;
  /** A few distinct ones, as "operation: cause". */
  errorSamples: string[];
  /** Blocking acquires that ran out of time. */
  acquireTimeouts: number;
  /** Sections told (by their aborted signal) that the hold was lost before they wrote. */
  lostHolds: number;
  /** Runs whose closing release found the hold gone. */
  failedReleases: number;
  /** The longest the process's event loop was late while it ran (a stalled process, a busy machine). */
  maxEventLoopDelayMs: number;
};

/** A section as a torture worker logs it: every field the checker can use. */
export type SectionRecord = Required<Omit<CheckedSection, "worker">> & { worker: number };

/** With "go": until when (ms after the epoch) the worker starts sections. */
export type GoPayload = { deadline: number };

/**
 * From the parent: "stall" (the next section announces itself and waits for "continue", during
 * which the parent stops the process past its TTL), "continue".
 */
export type ParentMessage = { type: "stall" } | { type: "continue" };

/** From the worker: "holding" inside the section after a "stall"; "done" at the end. */
export type WorkerMessage =
  | { type: "holding"; key: string; token: number }
  | { type: "done"; stats: WorkerStats };

/** The SQL tables (and Redis key prefixes) beside the lock table: the guarded resource and the log. */
export function dataNames(name: string): { resource: string; log: string } {
  return { resource: `${name}_res`, log: `${name}_log` };
}
