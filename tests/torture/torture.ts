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
 * With a `limit`, the workers take slots of semaphores instead of locks, under the same faults.
 *
 * At the end `checkSections` reads the log: no two holds of one key overlapped (with a limit:
 * no more than that many at once), tokens grew in hold order, the guard accepted every intact hold and refused every stale one. A section it
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
import { stallHolder } from "./stall-holder.js";
import type { TortureFaults } from "./torture-faults.js";
import type { GoPayload, SectionRecord, TortureBackend } from "./torture-protocol.js";
import type { TortureReport } from "./torture-report.js";
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
  /**
   * The workers take slots of semaphores of this limit instead of locks: the checker allows
   * that many holds of a key at once, and no more.
   * @default none (locks)
   */
  limit?: number;
  /** Progress lines. @default none */
  log?: (line: string) => void;
};

/** Runs one backend's torture; the report says what happened, it throws only on setup. */
export async function runTorture(settings: TortureSettings): Promise<TortureReport> {
  if (settings.workers < 4) {
    throw new Error(
      "a torture run needs at least 4 workers (one stopped, one delayed, two shifted)",
    );
  }
  const run = await TortureRun.open(settings);
  try {
    return await run.execute();
  } finally {
    await run.close();
  }
}

/** The run's clock, in every process of it: ms since its epoch (see `go`). */
function msSince(epoch: bigint): number {
  return Number(process.hrtime.bigint() - epoch) / 1e6;
}

/** The state one run threads through its steps: start, inject, wait, check. */
class TortureRun {
  readonly #settings: TortureSettings;
  readonly #store: TortureStore;
  readonly #epoch: bigint;
  readonly #keys: string[];
  readonly #ttlMs: number;
  readonly #stallTtlMs: number;
  readonly #log: (line: string) => void;
  readonly #problems: string[] = [];
  readonly #faults: TortureReport["faults"] = {
    redisRestarts: [],
    pgTerminations: [],
    stalls: [],
    clockShifts: [],
    delay: null,
    proxyCuts: [],
  };
  #proxy: DelayProxy | undefined;
  #workers: TortureWorker[] = [];
  #startedAt = 0;
  #deadline = 0;

  private constructor(
    settings: TortureSettings,
    store: TortureStore,
    epoch: bigint,
    keys: string[],
  ) {
    this.#settings = settings;
    this.#store = store;
    this.#epoch = epoch;
    this.#keys = keys;
    this.#ttlMs = settings.ttlMs ?? 3_000;
    this.#stallTtlMs = settings.stallTtlMs ?? 500;
    this.#log = settings.log ?? (() => {});
  }

  static async open(settings: TortureSettings): Promise<TortureRun> {
    const keys = Array.from({ length: settings.keys }, (_, i) => `k${i}`);
    const epoch = process.hrtime.bigint();
    const store = await openTortureStore({
      backend: settings.backend,
      ...(settings.url === undefined ? {} : { url: settings.url }),
      name: settings.name,
      keys,
      now: () => msSince(epoch),
      ...(settings.limit === undefined ? {} : { limit: settings.limit }),
    });
    return new TortureRun(settings, store, epoch, keys);
  }

  readonly #now = (): number => msSince(this.#epoch);

  async execute(): Promise<TortureReport> {
    const { faults } = this.#settings;
    if (faults.delayMs > 0 && this.#store.lockEndpoint !== null) {
      this.#proxy = await DelayProxy.start({
        ...this.#store.lockEndpoint,
        delayMs: faults.delayMs,
      });
    }
    await this.#startWorkers();
    this.#recordClockShifts();
    if (this.#proxy !== undefined) {
      this.#faults.delay = { worker: DELAYED_WORKER, delayMs: faults.delayMs, connections: 0 };
    }
    const eventLoopDelay = monitorEventLoopDelay({ resolution: 10 });
    eventLoopDelay.enable();
    this.#go();
    await this.#injectFaults();
    const exits = await this.#workersExited();
    const durationMs = this.#now() - this.#startedAt;
    eventLoopDelay.disable();
    if (this.#proxy !== undefined && this.#faults.delay !== null) {
      this.#faults.delay.connections = this.#proxy.connections;
    }
    const records = await this.#store.readLog();
    const check = await this.#checkLog(records);
    this.#checkWorkers(exits, records);
    if (faults.stalls > 0 && check.staleRejected === 0) {
      this.#problems.push("no stopped holder's late write was refused");
    }
    const machine = this.#machineLoad(eventLoopDelay.max / 1e6, check);
    return this.#report({ exits, durationMs, check, machine });
  }

  async close(): Promise<void> {
    for (const worker of this.#workers) {
      worker.kill();
    }
    await Promise.all(this.#workers.map((worker) => worker.exited));
    await this.#proxy?.close();
    await this.#store.close();
  }

  /** Starts the workers (1 through the proxy, 2 and 3 with shifted clocks) and waits until ready. */
  async #startWorkers(): Promise<void> {
    const { backend, name, faults, durationMs } = this.#settings;
    const store = this.#store;
    const proxy = this.#proxy;
    const lifetime = READY_TIMEOUT_MS + durationMs + 90_000;
    const lockTarget = (index: number) =>
      proxy !== undefined && index === DELAYED_WORKER
        ? proxy.rewrite(store.lockTarget)
        : store.lockTarget;
    const shift = (index: number) =>
      index === SHIFTED_WORKERS[0]
        ? faults.clockShiftMs
        : index === SHIFTED_WORKERS[1]
          ? -faults.clockShiftMs
          : 0;
    this.#workers = startTortureWorkers(
      this.#settings.workers,
      (index) => ({
        backend,
        lockTarget: lockTarget(index),
        resourceTarget: store.resourceTarget,
        name,
        keys: this.#keys,
        ttlMs: this.#ttlMs,
        stallTtlMs: this.#stallTtlMs,
        index,
        maxLifetimeMs: lifetime,
        noOpLock: this.#settings.noOpLock ?? false,
        ...(this.#settings.limit === undefined ? {} : { limit: this.#settings.limit }),
      }),
      shift,
    );
    await allReady(this.#workers, READY_TIMEOUT_MS);
  }

  /** A shifted clock counts only if the worker's Date really is that far off. */
  #recordClockShifts(): void {
    for (const worker of this.#workers) {
      if (worker.shiftMs !== 0) {
        this.#faults.clockShifts.push({
          worker: worker.index,
          shiftMs: worker.shiftMs,
          observedMs: worker.clockSkewMs,
        });
        if (Math.abs(worker.clockSkewMs - worker.shiftMs) > 30_000) {
          this.#problems.push(
            `worker ${worker.index}: its clock was to be ${worker.shiftMs} ms off, it is ${worker.clockSkewMs} ms off`,
          );
        }
      }
    }
  }

  #go(): void {
    const { backend, durationMs } = this.#settings;
    this.#startedAt = this.#now();
    this.#deadline = this.#startedAt + durationMs;
    this.#log(
      `[torture ${backend}] ${this.#workers.length} workers on ${this.#keys.length} keys for ${(durationMs / 1000).toFixed(1)} s`,
    );
    go<GoPayload>(this.#workers, this.#epoch, { deadline: this.#deadline });
  }

  /** Every kind of fault at once, each spread over the run; a failed injection is a problem. */
  async #injectFaults(): Promise<void> {
    const { faults } = this.#settings;
    const { restart, terminate } = this.#store;
    const proxy = this.#proxy;
    const stalled = this.#workers[STALLED_WORKER] as TortureWorker;
    const injected = await Promise.allSettled([
      this.#spread(restart === undefined ? 0 : faults.redisRestarts, 0.4, () =>
        this.#restart(restart as NonNullable<typeof restart>),
      ),
      this.#spread(terminate === undefined ? 0 : faults.pgTerminations, 0.3, () =>
        this.#terminate(terminate as NonNullable<typeof terminate>),
      ),
      this.#spread(proxy === undefined ? 0 : faults.proxyCuts, 0.6, async () =>
        this.#cut(proxy as DelayProxy),
      ),
      this.#spread(faults.stalls, 0.2, () => this.#stall(stalled)),
    ]);
    for (const result of injected) {
      if (result.status === "rejected") {
        this.#problems.push(`a fault could not be injected: ${String(result.reason)}`);
      }
    }
    // A worker stopped by a failed stall must not stay stopped.
    stalled.child.kill("SIGCONT");
  }

  /** Runs `inject` `count` times, spread evenly over the run, while time is left. */
  async #spread(count: number, offset: number, inject: () => Promise<void>): Promise<void> {
    for (let i = 0; i < count; i++) {
      const at = this.#startedAt + (this.#settings.durationMs * (i + offset)) / count;
      await sleep(Math.max(0, at - this.#now()));
      if (this.#now() > this.#deadline - 300) {
        return;
      }
      await inject();
    }
  }

  /** "[torture redis] 1.2 s: …", the time since "go". */
  #logAt(at: number, what: string): void {
    this.#log(
      `[torture ${this.#settings.backend}] ${((at - this.#startedAt) / 1000).toFixed(1)} s: ${what}`,
    );
  }

  async #restart(restart: () => Promise<Outage>): Promise<void> {
    const outage = await restart();
    this.#faults.redisRestarts.push(outage);
    this.#logAt(
      outage.from,
      `lock server killed and restarted (${(outage.back - outage.from).toFixed(0)} ms down)`,
    );
  }

  async #terminate(terminate: () => Promise<number>): Promise<void> {
    const terminated = await terminate();
    this.#faults.pgTerminations.push(terminated);
    this.#logAt(this.#now(), `${terminated} lock connections terminated`);
  }

  #cut(proxy: DelayProxy): void {
    const cut = proxy.cut();
    this.#faults.proxyCuts.push(cut);
    this.#logAt(this.#now(), `${cut} proxied connections cut`);
  }

  async #stall(stalled: TortureWorker): Promise<void> {
    const outcome = await stallHolder(
      stalled,
      this.#store,
      this.#settings.stallMs ?? 1_500,
      this.#now,
    );
    this.#faults.stalls.push(outcome);
    this.#logAt(
      this.#now(),
      `worker ${outcome.worker} stopped ${outcome.stoppedMs.toFixed(0)} ms holding ${outcome.key} (token ${outcome.token}), overtaken by token ${outcome.overtakenBy}`,
    );
  }

  /** The workers' exit codes; a run that does not end in time is a problem, not a hang. */
  async #workersExited(): Promise<Array<number | string>> {
    const workers = this.#workers;
    return withTimeout(
      Promise.all(workers.map((worker) => worker.exited)),
      Math.max(0, this.#deadline - this.#now()) + 90_000,
      "the workers to finish",
    ).catch((error: unknown) => {
      this.#problems.push(String(error));
      return workers.map((worker) => worker.exitCode());
    });
  }

  /** Checks the log; a stall nobody overtook proves nothing, so it excuses nothing either. */
  async #checkLog(records: SectionRecord[]): Promise<CheckResult> {
    const stallRecords: StallRecord[] = [];
    for (const outcome of this.#faults.stalls) {
      if (outcome.overtakenBy === null) {
        this.#problems.push(
          `the stall of key ${outcome.key} proves nothing: no other worker wrote it in ${outcome.stoppedMs.toFixed(0)} ms`,
        );
      } else {
        stallRecords.push({ key: outcome.key, token: outcome.token });
      }
    }
    return checkSections(records, {
      outages: this.#faults.redisRestarts,
      stalls: stallRecords,
      resource: await this.#store.readResource(),
      ...(this.#settings.limit === undefined ? {} : { limit: this.#settings.limit }),
    });
  }

  /** Each worker exited cleanly, logged every section it counted, and got a key at all. */
  #checkWorkers(exits: ReadonlyArray<number | string | undefined>, records: SectionRecord[]): void {
    this.#workers.forEach((worker, i) => {
      const exit = exits[i];
      if (exit !== 0) {
        this.#problems.push(
          `worker ${worker.index} (pid ${worker.child.pid}) exited with ${exit}: ${worker.stderr().trim()}`,
        );
      }
      const logged = records.filter((record) => record.worker === worker.index).length;
      if (worker.stats !== undefined && worker.stats.sections !== logged) {
        this.#problems.push(
          `worker ${worker.index} ran ${worker.stats.sections} sections, the log has ${logged}`,
        );
      }
      if (worker.stats !== undefined && worker.stats.sections === 0) {
        this.#problems.push(`worker ${worker.index} never got a key`);
      }
    });
  }

  /** Unchecked sections fail the run only on a quiet machine (see LOADED_DELAY_FRACTION). */
  #machineLoad(ownDelayMs: number, check: CheckResult): TortureReport["machine"] {
    const delays = this.#workers
      .filter((worker) => this.#settings.faults.stalls === 0 || worker.index !== STALLED_WORKER)
      .map((worker) => worker.stats?.maxEventLoopDelayMs ?? 0);
    const maxEventLoopDelayMs = Math.max(ownDelayMs, ...delays);
    const loaded = maxEventLoopDelayMs >= this.#ttlMs * LOADED_DELAY_FRACTION;
    const notChecked = check.unchecked + check.checkedInPart;
    if (notChecked > 0 && !loaded) {
      this.#problems.push(
        `${notChecked} sections could not be checked to their end (${check.unchecked} not at all) on a machine that was not loaded (no process ran more than ${maxEventLoopDelayMs.toFixed(0)} ms late): their holds may have run out, so a grant came long after its request`,
      );
    }
    return { maxEventLoopDelayMs, loaded };
  }

  #report(end: {
    exits: ReadonlyArray<number | string | undefined>;
    durationMs: number;
    check: CheckResult;
    machine: TortureReport["machine"];
  }): TortureReport {
    return {
      backend: this.#settings.backend,
      ...(this.#settings.limit === undefined ? {} : { limit: this.#settings.limit }),
      workers: this.#workers.map((worker, i) => ({
        index: worker.index,
        pid: worker.child.pid,
        exit: end.exits[i] ?? "unknown",
        stats: worker.stats,
      })),
      keys: this.#keys.length,
      startedAt: this.#startedAt,
      durationMs: end.durationMs,
      ttlMs: this.#ttlMs,
      stallTtlMs: this.#stallTtlMs,
      check: end.check,
      machine: end.machine,
      faults: this.#faults,
      problems: this.#problems,
    };
  }
}
