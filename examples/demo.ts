// `npm run demo`: worker processes (demo-worker.ts) contend for a few lock keys on one store, an
// SQLite file by default (no server needed) or Redis, PostgreSQL or MySQL/MariaDB. The terminal
// shows who holds which key with which fencing token, who waits, and one fault: a worker killed
// while it holds a key, which stays taken until its TTL passes and then goes to the next waiter.
// At the end the log of every critical section is checked: no two holds of one key overlapped,
// and each key's fencing tokens increased strictly from one holder to the next.
import { randomBytes } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import { hrtime } from "node:process";
import { fileURLToPath } from "node:url";
import { checkSections } from "./demo-check.js";
import { type DemoOptions, parseOptions, redact, USAGE, UsageError } from "./demo-options.js";
import type {
  DemoStoreSettings,
  GoPayload,
  WorkerReport,
  WorkerSettings,
} from "./demo-protocol.js";
import type { DemoStore } from "./demo-store.js";
import { seconds2, seconds3, Terminal } from "./demo-terminal.js";
import { DemoTimeline, type DemoWorker, type Fault } from "./demo-timeline.js";
import type { SectionRecord } from "./processes/check-sections.js";
import { go, startWorkers } from "./processes/worker-processes.js";

const WORKER = fileURLToPath(new URL("./demo-worker.ts", import.meta.url));

/** One line about why a connection failed, whatever the driver threw. */
function reason(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return reason(error.errors[0]);
  }
  if (error instanceof Error) {
    return error.message || (error as { code?: string }).code || error.name;
  }
  return String(error);
}

async function main(argv: string[]): Promise<number> {
  const options = optionsOrExitCode(argv);
  if (typeof options === "number") {
    return options;
  }
  const term = new Terminal(options.quiet);
  const run = randomBytes(4).toString("hex");
  const storeSettings: DemoStoreSettings = { store: options.store, target: options.target, run };
  const file = sqliteFile(options);
  const store = await openStore(options, storeSettings, file);
  if (store === undefined) {
    return 1;
  }
  printIntro(options, file, term);

  const workers: DemoWorker[] = [];
  let cleaned: Promise<void> | undefined;
  const cleanUp = () => {
    cleaned ??= cleanUpRun(options, { workers, store, file });
    return cleaned;
  };
  process.once("SIGINT", () => {
    interrupted = true;
    term.progress("");
    process.stderr.write("\ndemo: interrupted; cleaning up\n");
    void cleanUp().finally(() => process.exit(130));
  });

  try {
    if (!(await startDemoWorkers(options, storeSettings, workers, term))) {
      return interrupted ? 130 : 1;
    }
    const outcome = await watchRun(options, workers, term);
    if (interrupted) {
      return 130;
    }
    return verify(options, outcome, await store.read(), term);
  } catch (error) {
    process.stderr.write(`demo: ${reason(error)}\n`);
    return 1;
  } finally {
    await cleanUp().catch((error: unknown) => {
      process.stderr.write(`demo: the clean-up failed: ${reason(error)}\n`);
    });
    if (options.keep) {
      term.print(`kept: ${store.created}`);
    }
  }
}

/** The options; or, for --help and a bad option, the exit code once the usage is printed. */
function optionsOrExitCode(argv: string[]): DemoOptions | number {
  try {
    const parsed = parseOptions(argv);
    if (parsed === "help") {
      process.stdout.write(USAGE);
      return 0;
    }
    return parsed;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`demo: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    throw error;
  }
}

/** The SQLite file, when the demo creates it: then it deletes it at the end, unless --keep. */
type SqliteFile = { own: boolean; remove(): void };

function sqliteFile(options: DemoOptions): SqliteFile {
  const own = options.store === "sqlite" && !existsSync(options.target);
  return {
    own,
    remove: () => {
      if (own && !options.keep) {
        for (const suffix of ["", "-wal", "-shm"]) {
          rmSync(`${options.target}${suffix}`, { force: true });
        }
      }
    },
  };
}

/** Opens the store and makes its tables; `undefined` (said on stderr) when it cannot. */
async function openStore(
  options: DemoOptions,
  storeSettings: DemoStoreSettings,
  file: SqliteFile,
): Promise<DemoStore | undefined> {
  let opened: DemoStore | undefined;
  try {
    // Loaded only now: `--help` and a bad option answer without loading the drivers.
    const { openDemoStore } = await import("./demo-store.js");
    opened = await openDemoStore(storeSettings);
    await opened.init();
    return opened;
  } catch (error) {
    await opened?.close().catch(() => {});
    file.remove();
    const what =
      options.store === "sqlite"
        ? `cannot use the SQLite file ${options.target}`
        : `cannot reach ${options.store} at ${redact(options.target)}`;
    process.stderr.write(`demo: ${what}: ${reason(error)}\n`);
    return undefined;
  }
}

/** What the run will do: workers, keys, the store, the fault, what the tokens are. */
function printIntro(options: DemoOptions, file: SqliteFile, term: Terminal): void {
  const amount =
    options.durationMs === null
      ? `${options.sections} critical sections each`
      : `for ${options.durationMs / 1000} s`;
  const keyList = `${options.keys.slice(0, -1).join(", ")}${options.keys.length > 1 ? " and " : ""}${options.keys.at(-1)}`;
  term.print(
    `hasp demo: ${options.workers} worker processes contend for ${options.keys.length === 1 ? "the key" : "the keys"} ${keyList}, ${amount}, TTL ${options.ttlMs / 1000} s`,
  );
  term.print(
    options.store === "sqlite"
      ? `store: the SQLite file ${options.target} (no server)${file.own && !options.keep ? ", deleted at the end" : ""}`
      : `store: ${options.store} at ${redact(options.target)}`,
  );
  term.print(
    options.kill
      ? "fault: one worker will be killed (SIGKILL) while it holds a key"
      : "fault: none (--no-kill)",
  );
  term.print(
    "tokens: fencing tokens, strictly increasing per key, seeded from the store's clock in µs (hence 16 digits)",
  );
  term.print();
}

/** Stops the workers, then drops what the run made (unless --keep) and closes the store. */
async function cleanUpRun(
  options: DemoOptions,
  run: { workers: readonly DemoWorker[]; store: DemoStore; file: SqliteFile },
): Promise<void> {
  for (const worker of run.workers) {
    stop(worker);
  }
  await Promise.all(run.workers.map((worker) => worker.exited));
  try {
    if (!options.keep && !run.file.own) {
      await run.store.drop();
    }
  } finally {
    await run.store.close();
    run.file.remove();
  }
}

/** Ctrl-C: the workers are stopped and the store cleaned up; nothing is checked. */
let interrupted = false;

function stop(worker: DemoWorker): void {
  worker.kill();
}

/** Starts the workers and waits until each is connected; `false` when one is not. */
async function startDemoWorkers(
  options: DemoOptions,
  storeSettings: DemoStoreSettings,
  workers: DemoWorker[],
  term: Terminal,
): Promise<boolean> {
  const started = performance.now();
  term.print(`starting ${options.workers} workers...`);
  const spawned = startWorkers<WorkerSettings, WorkerReport>(WORKER, options.workers, (index) => ({
    ...storeSettings,
    name: `w${index + 1}`,
    index,
    keys: options.keys,
    sections: options.sections,
    ttlMs: options.ttlMs,
  }));
  for (const worker of spawned) {
    workers.push(Object.assign(worker, { name: `w${worker.index + 1}`, killed: false }));
  }
  const ready = await Promise.all(
    workers.map((worker) =>
      worker.ready.then(
        () => true,
        () => false,
      ),
    ),
  );
  if (interrupted) {
    return false;
  }
  for (const [index, worker] of workers.entries()) {
    if (!ready[index]) {
      process.stderr.write(
        `demo: ${worker.name} did not start: ${worker.stderr().trim() || "no reason given"}\n`,
      );
    }
  }
  if (ready.includes(false)) {
    return false;
  }
  term.print(`${options.workers} workers ready in ${seconds2(performance.now() - started)}; go`);
  if (!options.quiet) {
    term.print();
  }
  return true;
}

/** What the coordinator saw of a run, for the verdict. */
type RunOutcome = {
  /** Sections the workers reported completed. */
  completed: number;
  lost: number;
  fault: Fault | undefined;
  /** Workers that failed, and a run that did not end in time. */
  problems: string[];
  endedAt: number;
};

/**
 * Sends "go", prints the timeline from the workers' reports (the timeline kills one worker right
 * after it acquired a key, about a quarter into the run), and waits until every worker has exited.
 */
async function watchRun(
  options: DemoOptions,
  workers: readonly DemoWorker[],
  term: Terminal,
): Promise<RunOutcome> {
  // Times are ms after the epoch, in every process (see `go` in processes/worker-processes.ts).
  const epoch = hrtime.bigint();
  const now = () => Number(hrtime.bigint() - epoch) / 1e6;
  const timeline = new DemoTimeline(options, term, now);
  timeline.printHeading();
  const ticker = startTicker(options, term, timeline, now);
  for (const worker of workers) {
    worker.onReport((report) => timeline.onReport(worker, report));
  }
  go<GoPayload>(workers, epoch, { deadline: options.durationMs });
  const ended = await exitedInTime(options, workers);
  const endedAt = now();
  clearInterval(ticker);
  timeline.showUnseenWaits();
  term.flush();
  term.progress("");
  return {
    completed: timeline.completed,
    lost: timeline.lost,
    fault: timeline.fault,
    problems: exitProblems(workers, ended),
    endedAt,
  };
}

/** Every 100 ms: the timeline lines old enough, and the progress (a line each 5 s when quiet). */
function startTicker(
  options: DemoOptions,
  term: Terminal,
  timeline: DemoTimeline,
  now: () => number,
): NodeJS.Timeout {
  let lastPlain = 0;
  return setInterval(() => {
    // Lines wait a moment, so that a report that left another process earlier is printed first.
    term.flush(now() - 150);
    if (term.tty) {
      term.progress(timeline.progressText());
    } else if (options.quiet && now() - lastPlain >= 5_000) {
      lastPlain = now();
      term.print(timeline.progressText().trim());
    }
  }, 100);
}

type Exits = { exits: Array<number | string>; stuck: boolean; limitMs: number };

/** Waits for every worker to exit; one that hangs (a lost wake-up, a dead server) is stopped. */
async function exitedInTime(options: DemoOptions, workers: readonly DemoWorker[]): Promise<Exits> {
  const limitMs =
    (options.durationMs ?? (options.sections ?? 0) * options.workers * 500) +
    60_000 +
    options.ttlMs;
  let stuck = false;
  const watchdog = setTimeout(() => {
    stuck = true;
    for (const worker of workers) {
      stop(worker);
    }
  }, limitMs);
  const exits = await Promise.all(workers.map((worker) => worker.exited));
  clearTimeout(watchdog);
  return { exits, stuck, limitMs };
}

/** A run that did not end in time, and workers that failed (the killed one aside). */
function exitProblems(workers: readonly DemoWorker[], { exits, stuck, limitMs }: Exits): string[] {
  const problems: string[] = [];
  if (stuck) {
    problems.push(`the run did not finish within ${seconds2(limitMs)}; the workers were stopped`);
  }
  for (const [index, worker] of workers.entries()) {
    const exit = exits[index];
    if (!worker.killed && !stuck && exit !== 0) {
      const stderr = worker.stderr().trim();
      problems.push(`${worker.name} failed (exit ${exit})${stderr === "" ? "" : `: ${stderr}`}`);
    }
  }
  return problems;
}

/** Checks the section log against what the run saw, prints the verdict, returns the exit code. */
function verify(
  options: DemoOptions,
  outcome: RunOutcome,
  log: readonly SectionRecord[],
  term: Terminal,
): number {
  const { fault, problems } = outcome;
  const { overlaps, tokenErrors } = checkSections(log);
  if (log.length !== outcome.completed) {
    problems.push(
      `the log holds ${log.length} sections but the workers reported ${outcome.completed} completed`,
    );
  }
  term.print();
  printFault(options, fault, problems, term);
  if (outcome.lost > 0) {
    term.print(
      `lost holds: ${outcome.lost} (a section outlived its TTL: the machine may be overloaded)`,
    );
  }
  for (const line of [...overlaps, ...tokenErrors, ...problems].slice(0, 20)) {
    term.print(term.paint("31", `problem: ${line}`));
  }

  const ok = overlaps.length === 0 && tokenErrors.length === 0 && problems.length === 0;
  const increasing = tokenErrors.length === 0 ? "yes" : `no (${tokenErrors.length} out of order)`;
  const verdict = ok ? term.paint("1;32", "OK") : term.paint("1;31", "FAILED");
  term.print(
    `verification: ${log.length} critical sections run in ${seconds2(outcome.endedAt)}, overlaps found: ${overlaps.length}, tokens strictly increasing: ${increasing} → ${verdict}`,
  );
  return ok ? 0 : 1;
}

/** What became of the killed worker's key; a takeover before its TTL is a problem. */
function printFault(
  options: DemoOptions,
  fault: Fault | undefined,
  problems: string[],
  term: Terminal,
): void {
  if (fault === undefined) {
    if (options.kill) {
      term.print("fault: none injected (the run ended before a quarter of its sections)");
    }
  } else {
    const counted = fault.ended
      ? "the kill came after its section ended, so that section counts"
      : "its section never finished and is not counted";
    term.print(
      `fault: ${fault.worker} was killed at ${seconds3(fault.killedAt)} s holding ${fault.key} (token ${fault.token}); ${counted}`,
    );
    const { takeover } = fault;
    if (takeover === undefined) {
      term.print(`       nobody needed ${fault.key} again before the end`);
    } else {
      term.print(
        `       ${fault.key} was taken over after its TTL: ${takeover.worker} got it at ${seconds3(takeover.at)} s (token ${takeover.token}), ${seconds2(takeover.at - fault.killedAt)} after the kill, and work went on`,
      );
      // The killed section left no end in the log, so the overlap check cannot see this one:
      // the dead hold must have lasted its TTL (less a little for the reports' delays).
      if (takeover.at - fault.acquiredAt < options.ttlMs - 100) {
        problems.push(
          `${fault.key} was taken over ${seconds2(takeover.at - fault.acquiredAt)} after ${fault.worker} acquired it, before its TTL of ${options.ttlMs / 1000} s`,
        );
      }
    }
  }
}

// A closed pipe (`npm run demo | head`) is no failure of the demo.
process.stdout.on("error", () => process.exit(0));
process.exitCode = await main(process.argv.slice(2));
