import type { WorkerStats } from "./torture-protocol.js";
import type { TortureReport } from "./torture-report.js";

/** The report as the lines the CLI and the test print. */
export function formatReport(report: TortureReport): string[] {
  const tag = `[torture ${report.backend}${report.limit === undefined ? "" : ` semaphore, limit ${report.limit}`}]`;
  const { check, faults } = report;
  const sum = (pick: (stats: WorkerStats) => number) =>
    report.workers.reduce((total, worker) => total + (worker.stats ? pick(worker.stats) : 0), 0);
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const injected: string[] = [];
  if (faults.redisRestarts.length > 0) {
    const down = faults.redisRestarts.map((o) => o.back - o.from);
    injected.push(
      `${faults.redisRestarts.length} lock-server kill -9 + restart (down ${Math.min(...down).toFixed(0)}-${Math.max(...down).toFixed(0)} ms)`,
    );
  }
  if (faults.pgTerminations.length > 0) {
    injected.push(
      `${faults.pgTerminations.length} rounds of pg_terminate_backend (${faults.pgTerminations.reduce((a, b) => a + b, 0)} connections)`,
    );
  }
  if (faults.stalls.length > 0) {
    const stopped = faults.stalls.map((s) => s.stoppedMs);
    injected.push(
      `${faults.stalls.length} holder SIGSTOP (${seconds(Math.min(...stopped))}-${seconds(Math.max(...stopped))}, TTL ${seconds(report.stallTtlMs)})`,
    );
  }
  for (const shift of faults.clockShifts) {
    const sign = (ms: number) => (ms < 0 ? "-" : "+");
    injected.push(
      `worker ${shift.worker} clock ${sign(shift.shiftMs)}${Math.abs(shift.shiftMs / 60_000)} min (its Date.now() was ${sign(shift.observedMs)}${Math.abs(shift.observedMs / 1000).toFixed(1)} s off)`,
    );
  }
  if (faults.delay !== null) {
    injected.push(
      `worker ${faults.delay.worker} +${faults.delay.delayMs} ms each way through a proxy (${faults.delay.connections} connections)`,
    );
  }
  if (faults.proxyCuts.length > 0) {
    injected.push(
      `${faults.proxyCuts.length} proxy cuts (${faults.proxyCuts.reduce((a, b) => a + b, 0)} connections)`,
    );
  }
  const faultCount =
    faults.redisRestarts.length +
    faults.pgTerminations.length +
    faults.stalls.length +
    faults.clockShifts.length +
    (faults.delay === null ? 0 : 1) +
    faults.proxyCuts.length;
  const samples = [...new Set(report.workers.flatMap((w) => w.stats?.errorSamples ?? []))];
  return [
    `${tag} processes: ${report.workers.length}, keys: ${report.keys}, ${seconds(report.durationMs)}, TTL ${seconds(report.ttlMs)}`,
    `${tag} critical sections: ${check.sections} (granted by a wait ${check.grantedByWait}, writes accepted ${check.accepted}, stale writes rejected ${check.staleRejected}, hand-offs between processes ${check.handoffs}${check.longestIdle === null ? "" : `, longest a key sat free: ${check.longestIdle.ms.toFixed(0)} ms, at ${seconds(check.longestIdle.from - report.startedAt)}`})`,
    `${tag} faults injected: ${faultCount}${injected.length > 0 ? ` (${injected.join("; ")})` : ""}`,
    `${tag} workers met: ${sum((s) => s.backendErrors)} backend errors (retried), ${sum((s) => s.lostHolds)} holds reported lost, ${sum((s) => s.failedReleases)} closing releases that found the hold gone or failed, ${sum((s) => s.acquireTimeouts)} acquire timeouts${samples.length > 0 ? `; e.g. ${samples.slice(0, 3).join(" | ")}` : ""}`,
    `${tag} checked ${check.checked + check.checkedInPart} sections${check.checkedInPart > 0 ? ` (${check.checkedInPart} only up to the instant their hold may have run out)` : ""}, could not check ${check.unchecked + check.checkedInPart} (processes ran at most ${report.machine.maxEventLoopDelayMs.toFixed(0)} ms late${report.machine.loaded ? ": a loaded machine" : ""}); excused by injected faults: ${check.excused.stalled} stalled, ${check.excused.outage} across a restart (${check.excusedOverlaps} overlapping pairs not held against them)`,
    `${tag} violations: ${check.violations.length}${check.violations.length > 0 ? `\n  ${check.violations.slice(0, 20).join("\n  ")}` : ""}`,
    ...(report.problems.length > 0
      ? [`${tag} problems: ${report.problems.length}\n  ${report.problems.join("\n  ")}`]
      : []),
  ];
}
