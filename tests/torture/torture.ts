/**
 * The torture run of one backend, shared by the CI test (torture.test.ts: short) and the CLI
 * (`npm run torture`: long). It needs no vitest.
 *
 * Several worker processes (fixtures/torture-worker.ts) contend for a few keys through
 * LockProvider and the backend's adapter. Inside each critical section a worker writes its
 * fencing token to a guarded resource in the backend (refused when below the last accepted
 * token) and appends the section to a log. Meanwhile this process injects faults:
 *
 * - Redis: the lock server (a redis-server of the run's own) killed with SIGKILL and restarted;
 * - PostgreSQL: the workers' lock connections terminated (`pg_terminate_backend`);
 * - every backend: a holder stopped (SIGSTOP) past its TTL until another worker wrote with a
 *   newer token, then resumed (SIGCONT): its late write must be refused by the guard;
 * - every backend: two workers whose wall clock (Date) is minutes ahead and behind;
 * - network backends: one worker talking to the lock backend through a proxy that delays every
 *   chunk, and whose connections are cut now and then.
 *
 * At the end `checkSections` reads the log: no two holds of one key overlapped, tokens grew in
 * hold order, the guard accepted every intact hold and refused every stale one. A section it
 * cannot check (its hold may have run out before it began or ended) is a problem of the run,
 * unless the machine was loaded (see `LOADED_DELAY_FRACTION`): on a quiet machine every
 * section not stopped or cut off by an injected fault is checked.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type CheckResult,
  checkSections,
  type Outage,
  type StallRecord,
} from "../../examples/processes/check-sections.js";
import { allReady, go, withTimeout } from "../../examples/processes/worker-processes.js";
import { DelayProxy } from "./delay-proxy.js";
import type { GoPayload, TortureBackend, WorkerStats } from "./torture-protocol.js";
import { openTortureStore, type TortureStore } from "./torture-store.js";
import { startTortureWorkers, type TortureWorker } from "./worker-process.js";

/** Worker 0 is the one stopped; 1 talks through the delay proxy; 2 and 3 have shifted clocks. */
const STALLED_WORKER = 0;
const DELAYED_WORKER = 1;
const SHIFTED_WORKERS = [2, 3] as const;
const READY_TIMEOUT_MS = 90_000;
/**
 * The machine counts as loaded when a process of the run (the stopped worker aside) ran its
 * callbacks this fraction of the TTL late: then a hold may run out before its holder could even
 * look, and sections that cannot be checked are reported, not failed.
 */
const LOADED_DELAY_FRACTION = 0.1;

/** How many of each fault a run injects; a fault a backend cannot take is ignored. */
export type TortureFaults = {
  /** Redis only: kill -9 and restart of the lock server. */
  redisRestarts: number;
  /** PostgreSQL only: rounds of `pg_terminate_backend` on every lock connection of the workers. */
  pgTerminations: number;
  /** SIGSTOPs of a holder past its TTL. */
  stalls: number;
  /** Workers 2 and 3 run with Date this far ahead and behind; 0: not at all. */
  clockShiftMs: number;
  /** Network backends: worker 1 reaches the lock backend through a proxy with this delay each way; 0: not at all. */
  delayMs: number;
  /** Network backends with a delay: cuts of every connection through the proxy. */
  proxyCuts: number;
};

export type TortureSettings = {
  backend: TortureBackend;
  /**
   * The service (unused for SQLite). On Redis it keeps the resource and the log, while the
   * locks live on a redis-server the run starts, kills and restarts.
   */
  url?: string;
  /** A fresh name for the run's keys and tables (letters, digits, `_`; at most 48 characters). */
  name: string;
  workers: number;
  keys: number;
  /** How long the workers start new sections. */
  durationMs: number;
  faults: TortureFaults;
  /** @default 3000 */
  ttlMs?: number;
  /** The TTL of a stopped holder's section. @default 500 */
  stallTtlMs?: number;
  /** The least a stopped holder stays stopped. @default 1500 */
  stallMs?: number;
  /**
   * The negative control: the workers lock through NoOpLockAdapter, which excludes nobody, so
   * the checker must find violations.
   * @default false
   */
  noOpLock?: boolean;
  /** Progress lines. @default none */
  log?: (line: string) => void;
};

export type StallOutcome = {
  worker: number;
  key: string;
  token: number;
  stoppedMs: number;
  /** The resource's token when the holder was resumed (above `token`), or null: nobody wrote. */
  overtakenBy: number | null;
};

export type TortureReport = {
  backend: TortureBackend;
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

/** The faults `npm run torture` and the CI test inject, scaled to the run's duration. */
export function defaultFaults(backend: TortureBackend, durationMs: number): TortureFaults {
  const every = (ms: number) => Math.max(1, Math.round(durationMs / ms));
  const network = backend !== "sqlite";
  return {
    redisRestarts: backend === "redis" ? every(2_500) : 0,
    pgTerminations: backend === "postgres" ? every(1_500) : 0,
    stalls: every(5_000),
    clockShiftMs: 10 * 60_000,
    delayMs: network ? 15 : 0,
    proxyCuts: network ? every(2_500) : 0,
  };
}

/** Runs one backend's torture; the report says what happened, it throws only on setup. */
export async function runTorture(settings: TortureSettings): Promise<TortureReport> {
  const ttlMs = settings.ttlMs ?? 3_000;
  const stallTtlMs = settings.stallTtlMs ?? 500;
  const stallMs = settings.stallMs ?? 1_500;
  const log = settings.log ?? (() => {});
  const { backend, name, faults } = settings;
  if (settings.workers < 4) {
    throw new Error(
      "a torture run needs at least 4 workers (one stopped, one delayed, two shifted)",
    );
  }
  const keys = Array.from({ length: settings.keys }, (_, i) => `k${i}`);
  const epoch = process.hrtime.bigint();
  const now = () => Number(process.hrtime.bigint() - epoch) / 1e6;
  const problems: string[] = [];
  const report: TortureReport["faults"] = {
    redisRestarts: [],
    pgTerminations: [],
    stalls: [],
    clockShifts: [],
    delay: null,
    proxyCuts: [],
  };

  const store = await openTortureStore({
    backend,
    ...(settings.url === undefined ? {} : { url: settings.url }),
    name,
    keys,
    now,
  });
  let proxy: DelayProxy | undefined;
  let workers: TortureWorker[] = [];
  try {
    if (faults.delayMs > 0 && store.lockEndpoint !== null) {
      proxy = await DelayProxy.start({ ...store.lockEndpoint, delayMs: faults.delayMs });
    }
    const lifetime = READY_TIMEOUT_MS + settings.durationMs + 90_000;
    const lockTarget = (index: number) =>
      proxy !== undefined && index === DELAYED_WORKER
        ? proxy.rewrite(store.lockTarget)
        : store.lockTarget;
    workers = startTortureWorkers(
      settings.workers,
      (index) => ({
        backend,
        lockTarget: lockTarget(index),
        resourceTarget: store.resourceTarget,
        name,
        keys,
        ttlMs,
        stallTtlMs,
        index,
        maxLifetimeMs: lifetime,
        noOpLock: settings.noOpLock ?? false,
      }),
      (index) =>
        index === SHIFTED_WORKERS[0]
          ? faults.clockShiftMs
          : index === SHIFTED_WORKERS[1]
            ? -faults.clockShiftMs
            : 0,
    );
    await allReady(workers, READY_TIMEOUT_MS);
    for (const worker of workers) {
      if (worker.shiftMs !== 0) {
        report.clockShifts.push({
          worker: worker.index,
          shiftMs: worker.shiftMs,
          observedMs: worker.clockSkewMs,
        });
        if (Math.abs(worker.clockSkewMs - worker.shiftMs) > 30_000) {
          problems.push(
            `worker ${worker.index}: its clock was to be ${worker.shiftMs} ms off, it is ${worker.clockSkewMs} ms off`,
          );
        }
      }
    }
    if (proxy !== undefined) {
      report.delay = { worker: DELAYED_WORKER, delayMs: faults.delayMs, connections: 0 };
    }

    const eventLoopDelay = monitorEventLoopDelay({ resolution: 10 });
    eventLoopDelay.enable();
    const startedAt = now();
    const deadline = startedAt + settings.durationMs;
    log(
      `[torture ${backend}] ${workers.length} workers on ${keys.length} keys for ${(settings.durationMs / 1000).toFixed(1)} s`,
    );
    go<GoPayload>(workers, epoch, { deadline });

    /** Runs `inject` `count` times, spread evenly over the run, while time is left. */
    const spread = async (count: number, offset: number, inject: () => Promise<void>) => {
      for (let i = 0; i < count; i++) {
        const at = startedAt + (settings.durationMs * (i + offset)) / count;
        await sleep(Math.max(0, at - now()));
        if (now() > deadline - 300) {
          return;
        }
        await inject();
      }
    };
    const stalled = workers[STALLED_WORKER] as TortureWorker;
    const { restart, terminate } = store;
    const injections: Array<Promise<void>> = [
      spread(restart === undefined ? 0 : faults.redisRestarts, 0.4, async () => {
        const outage = await (restart as NonNullable<typeof restart>)();
        report.redisRestarts.push(outage);
        log(
          `[torture ${backend}] ${((outage.from - startedAt) / 1000).toFixed(1)} s: lock server killed and restarted (${(outage.back - outage.from).toFixed(0)} ms down)`,
        );
      }),
      spread(terminate === undefined ? 0 : faults.pgTerminations, 0.3, async () => {
        const terminated = await (terminate as NonNullable<typeof terminate>)();
        report.pgTerminations.push(terminated);
        log(
          `[torture ${backend}] ${((now() - startedAt) / 1000).toFixed(1)} s: ${terminated} lock connections terminated`,
        );
      }),
      spread(proxy === undefined ? 0 : faults.proxyCuts, 0.6, async () => {
        const cut = (proxy as DelayProxy).cut();
        report.proxyCuts.push(cut);
        log(
          `[torture ${backend}] ${((now() - startedAt) / 1000).toFixed(1)} s: ${cut} proxied connections cut`,
        );
      }),
      spread(faults.stalls, 0.2, async () => {
        const outcome = await stall(stalled, store, stallMs, now);
        report.stalls.push(outcome);
        log(
          `[torture ${backend}] ${((now() - startedAt) / 1000).toFixed(1)} s: worker ${outcome.worker} stopped ${outcome.stoppedMs.toFixed(0)} ms holding ${outcome.key} (token ${outcome.token}), overtaken by token ${outcome.overtakenBy}`,
        );
      }),
    ];
    const injected = await Promise.allSettled(injections);
    for (const result of injected) {
      if (result.status === "rejected") {
        problems.push(`a fault could not be injected: ${String(result.reason)}`);
      }
    }
    // A worker stopped by a failed stall must not stay stopped.
    stalled.child.kill("SIGCONT");

    const exits = await withTimeout(
      Promise.all(workers.map((worker) => worker.exited)),
      Math.max(0, deadline - now()) + 90_000,
      "the workers to finish",
    ).catch((error: unknown) => {
      problems.push(String(error));
      return workers.map((worker) => worker.exitCode());
    });
    const durationMs = now() - startedAt;
    eventLoopDelay.disable();
    if (proxy !== undefined && report.delay !== null) {
      report.delay.connections = proxy.connections;
    }

    const records = await store.readLog();
    const stallRecords: StallRecord[] = [];
    for (const outcome of report.stalls) {
      if (outcome.overtakenBy === null) {
        problems.push(
          `the stall of key ${outcome.key} proves nothing: no other worker wrote it in ${outcome.stoppedMs.toFixed(0)} ms`,
        );
      } else {
        stallRecords.push({ key: outcome.key, token: outcome.token });
      }
    }
    const check = checkSections(records, {
      outages: report.redisRestarts,
      stalls: stallRecords,
      resource: await store.readResource(),
    });

    workers.forEach((worker, i) => {
      const exit = exits[i];
      if (exit !== 0) {
        problems.push(
          `worker ${worker.index} (pid ${worker.child.pid}) exited with ${exit}: ${worker.stderr().trim()}`,
        );
      }
      const logged = records.filter((record) => record.worker === worker.index).length;
      if (worker.stats !== undefined && worker.stats.sections !== logged) {
        problems.push(
          `worker ${worker.index} ran ${worker.stats.sections} sections, the log has ${logged}`,
        );
      }
      if (worker.stats !== undefined && worker.stats.sections === 0) {
        problems.push(`worker ${worker.index} never got a key`);
      }
    });
    if (faults.stalls > 0 && check.staleRejected === 0) {
      problems.push("no stopped holder's late write was refused");
    }
    const delays = workers
      .filter((worker) => faults.stalls === 0 || worker.index !== STALLED_WORKER)
      .map((worker) => worker.stats?.maxEventLoopDelayMs ?? 0);
    const maxEventLoopDelayMs = Math.max(eventLoopDelay.max / 1e6, ...delays);
    const loaded = maxEventLoopDelayMs >= ttlMs * LOADED_DELAY_FRACTION;
    const notChecked = check.unchecked + check.checkedInPart;
    if (notChecked > 0 && !loaded) {
      problems.push(
        `${notChecked} sections could not be checked to their end (${check.unchecked} not at all) on a machine that was not loaded (no process ran more than ${maxEventLoopDelayMs.toFixed(0)} ms late): their holds may have run out, so a grant came long after its request`,
      );
    }

    return {
      backend,
      workers: workers.map((worker, i) => ({
        index: worker.index,
        pid: worker.child.pid,
        exit: exits[i] ?? "unknown",
        stats: worker.stats,
      })),
      keys: keys.length,
      startedAt,
      durationMs,
      ttlMs,
      stallTtlMs,
      check,
      machine: { maxEventLoopDelayMs, loaded },
      faults: report,
      problems,
    };
  } finally {
    for (const worker of workers) {
      worker.kill();
    }
    await Promise.all(workers.map((worker) => worker.exited));
    await proxy?.close();
    await store.close();
  }
}

/** Stops `worker` inside a section past its TTL, until another worker wrote the key, then resumes it. */
async function stall(
  worker: TortureWorker,
  store: TortureStore,
  stallMs: number,
  now: () => number,
): Promise<StallOutcome> {
  const holding = worker.nextHolding();
  worker.tell({ type: "stall" });
  const { key, token } = await withTimeout(
    holding,
    30_000,
    `worker ${worker.index} to hold a key`,
  ).catch((error: unknown) => {
    // Should it hold a key later after all, it must not wait for this forever.
    worker.tell({ type: "continue" });
    throw error;
  });
  worker.child.kill("SIGSTOP");
  const stoppedAt = now();
  let overtakenBy: number | null = null;
  try {
    while (now() - stoppedAt < 20_000) {
      await sleep(50);
      const current = await store.resourceToken(key);
      if (current > token && now() - stoppedAt >= stallMs) {
        overtakenBy = current;
        break;
      }
    }
  } finally {
    // "continue" waits in the pipe; the worker reads it once running again.
    worker.tell({ type: "continue" });
    worker.child.kill("SIGCONT");
  }
  return { worker: worker.index, key, token, stoppedMs: now() - stoppedAt, overtakenBy };
}
