// What one backend's torture run (torture.ts) found, for the test's assertions and formatReport.
import type { CheckResult, Outage } from "../../examples/processes/check-sections.js";
import type { StallOutcome } from "./stall-holder.js";
import type { TortureBackend, WorkerStats } from "./torture-protocol.js";

export type TortureReport = {
  backend: TortureBackend;
  /** The semaphores' limit; absent: the run took locks. */
  limit?: number;
  workers: Array<{
    index: number;
    pid: number | undefined;
    exit: number | string;
    stats: WorkerStats | undefined;
  }>;
  keys: number;
  /** When the workers were told to go, on the run's clock (the sections' times are on it too). */
  startedAt: number;
  durationMs: number;
  ttlMs: number;
  stallTtlMs: number;
  check: CheckResult;
  /** How late the run's processes ran at worst, and whether that makes the machine loaded. */
  machine: { maxEventLoopDelayMs: number; loaded: boolean };
  faults: {
    redisRestarts: Outage[];
    pgTerminations: number[];
    stalls: StallOutcome[];
    clockShifts: Array<{ worker: number; shiftMs: number; observedMs: number }>;
    delay: { worker: number; delayMs: number; connections: number } | null;
    proxyCuts: number[];
  };
  /** The run itself went wrong (a worker failed, a fault could not be injected…). */
  problems: string[];
};
