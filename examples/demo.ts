// `npm run demo`: worker processes (demo-worker.ts) contend for a few lock keys on one store, an
// SQLite file by default (no server needed) or Redis, PostgreSQL or MySQL/MariaDB. The terminal
// shows who holds which key with which fencing token, who waits, and one fault: a worker killed
// while it holds a key, which stays taken until its TTL passes and then goes to the next waiter.
// At the end the log of every critical section is checked: no two holds of one key overlapped,
// and each key's fencing tokens increased strictly from one holder to the next.
import { randomBytes } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hrtime } from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { checkSections } from "./demo-check.js";
import {
  DEMO_STORES,
  type DemoStoreName,
  type DemoStoreSettings,
  type GoPayload,
  type WorkerReport,
  type WorkerSettings,
} from "./demo-protocol.js";
import type { DemoStore } from "./demo-store.js";
import type { SectionRecord } from "./processes/check-sections.js";
import { go, startWorkers, type WorkerProcess } from "./processes/worker-processes.js";

const WORKER = fileURLToPath(new URL("./demo-worker.ts", import.meta.url));

const DEFAULT_URLS = {
  redis: "redis://127.0.0.1:6379",
  postgres: "postgres://postgres@127.0.0.1:5432/test",
  mysql: "mysql://root@127.0.0.1:3306/test",
} as const;

const STORE_OF_SCHEME: Record<string, Exclude<DemoStoreName, "sqlite">> = {
  "redis:": "redis",
  "rediss:": "redis",
  "postgres:": "postgres",
  "postgresql:": "postgres",
  "mysql:": "mysql",
};

const USAGE = `Usage: npm run demo -- [options]

Worker processes contend for a few lock keys through hasp. The timeline shows who holds which
key with which fencing token and who waits. One worker is killed (SIGKILL) while it holds a
key: the key stays taken until its TTL passes, then the next waiter gets it. The run ends by
checking the log of every critical section: no overlapping holds of a key, fencing tokens
strictly increasing.

Options:
  --store <name>   sqlite (the default: a file, no server), redis, postgres or mysql
  --url <url>      the server; without --store, the store follows from the URL's scheme
                   (default: ${DEFAULT_URLS.redis}, ${DEFAULT_URLS.postgres},
                   ${DEFAULT_URLS.mysql})
  --file <path>    sqlite: the database file (default: a new file in the temp directory,
                   deleted at the end)
  --keep           keep what the demo created (the SQLite file, the tables, the Redis keys)
  --workers <n>    worker processes, 1-32 (default 4)
  --keys <n>       keys they contend for, 1-26 (default 2)
  --sections <n>   critical sections per worker, 1-10000 (default 6)
  --duration <s>   run for this many seconds instead, 1-3600
  --ttl <s>        the locks' TTL in seconds, 0.5-60 (default 1.5): how long the killed
                   worker's key stays taken
  --no-kill        run without the fault
  --quiet          no timeline: the fault, the progress and the check only
  -h, --help       show this help

Examples:
  npm run demo
  npm run demo -- --workers 8 --keys 3 --duration 30 --quiet
  npm run demo -- --store redis
  npm run demo -- --url postgres://me:secret@db.example.com:5432/app

Exit status: 0 when the check passes; 1 when it fails, or the store cannot be reached; 2 for a
bad option.
`;

class UsageError extends Error {}

type DemoOptions = {
  store: DemoStoreName;
  /** The server URL, or the SQLite file. */
  target: string;
  keep: boolean;
  workers: number;
  keys: string[];
  /** Per worker; `null` with a duration. */
  sections: number | null;
  durationMs: number | null;
  ttlMs: number;
  kill: boolean;
  quiet: boolean;
};

function parseOptions(argv: string[]): DemoOptions | "help" {
  let values: ReturnType<typeof parseCommandLine>["values"];
  try {
    ({ values } = parseCommandLine(argv));
  } catch (error) {
    // Node's messages go on with advice about positionals that does not apply here.
    throw new UsageError((error as Error).message.split(". ")[0] ?? String(error));
  }
  if (values.help) {
    return "help";
  }
  let store = values.store as DemoStoreName | undefined;
  if (store !== undefined && !DEMO_STORES.includes(store)) {
    throw new UsageError(`--store must be one of ${DEMO_STORES.join(", ")}, got "${store}"`);
  }
  if (values.url !== undefined) {
    let scheme: string;
    try {
      scheme = new URL(values.url).protocol;
    } catch {
      throw new UsageError(`--url must be a URL, got "${values.url}"`);
    }
    const implied = STORE_OF_SCHEME[scheme];
    if (store === "sqlite") {
      throw new UsageError("--url is for a server; give the SQLite file with --file");
    }
    if (implied === undefined || (store !== undefined && store !== implied)) {
      const expected = store === undefined ? "redis, postgres or mysql" : store;
      throw new UsageError(`--url must be a ${expected} URL, got "${redact(values.url)}"`);
    }
    store = implied;
  }
  store ??= "sqlite";
  if (values.file !== undefined && store !== "sqlite") {
    throw new UsageError("--file is for the sqlite store");
  }
  if (values.sections !== undefined && values.duration !== undefined) {
    throw new UsageError("give --sections or --duration, not both");
  }
  const workers = integer("--workers", values.workers, 4, 1, 32);
  const kill = !values["no-kill"];
  if (kill && workers < 2) {
    throw new UsageError(
      "--workers 1 leaves nobody to take over the killed worker's key: give 2 or more, or --no-kill",
    );
  }
  const keyCount = integer("--keys", values.keys, 2, 1, 26);
  const durationS =
    values.duration === undefined ? null : seconds("--duration", values.duration, 1, 3600);
  return {
    store,
    target:
      store === "sqlite"
        ? (values.file ?? join(tmpdir(), `hasp-demo-${randomBytes(4).toString("hex")}.db`))
        : (values.url ?? DEFAULT_URLS[store]),
    keep: values.keep ?? false,
    workers,
    keys: Array.from({ length: keyCount }, (_, i) => `key-${String.fromCharCode(97 + i)}`),
    sections: durationS === null ? integer("--sections", values.sections, 6, 1, 10_000) : null,
    durationMs: durationS === null ? null : durationS * 1000,
    ttlMs: (values.ttl === undefined ? 1.5 : seconds("--ttl", values.ttl, 0.5, 60)) * 1000,
    kill,
    quiet: values.quiet ?? false,
  };
}

const OPTIONS = {
  store: { type: "string" },
  url: { type: "string" },
  file: { type: "string" },
  keep: { type: "boolean" },
  workers: { type: "string" },
  keys: { type: "string" },
  sections: { type: "string" },
  duration: { type: "string" },
  ttl: { type: "string" },
  "no-kill": { type: "boolean" },
  quiet: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function parseCommandLine(argv: string[]) {
  return parseArgs({
    args: negativeValuesJoined(argv),
    strict: true,
    allowPositionals: false,
    options: OPTIONS,
  });
}

/**
 * `--workers -3` as `--workers=-3`: Node's parser takes a value that starts with a dash for an
 * option, and refuses it as ambiguous; the option's own check then says what is wrong.
 */
function negativeValuesJoined(argv: string[]): string[] {
  const joined: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index] as string;
    const next = argv[index + 1];
    const option = arg.startsWith("--") ? OPTIONS[arg.slice(2) as keyof typeof OPTIONS] : undefined;
    if (option?.type === "string" && next !== undefined && /^-[\d.]/.test(next)) {
      joined.push(`${arg}=${next}`);
      index++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

function integer(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) {
    return fallback;
  }
  const parsed = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!(parsed >= min && parsed <= max)) {
    throw new UsageError(`${name} must be a whole number from ${min} to ${max}, got "${value}"`);
  }
  return parsed;
}

function seconds(name: string, value: string, min: number, max: number): number {
  const parsed = /^\d+(\.\d+)?$/.test(value) ? Number(value) : Number.NaN;
  if (!(parsed >= min && parsed <= max)) {
    throw new UsageError(
      `${name} must be a number of seconds from ${min} to ${max}, got "${value}"`,
    );
  }
  return parsed;
}

/** The URL without its password, for messages. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") {
      parsed.password = "***";
    }
    return parsed.toString();
  } catch {
    return url;
  }
}

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

const seconds3 = (ms: number) => (ms / 1000).toFixed(3);
const seconds2 = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/**
 * The terminal: timeline lines, held back a moment and printed in time order (reports of
 * different processes arrive in any order), and on a TTY one progress line kept at the bottom.
 */
class Terminal {
  readonly #tty = process.stdout.isTTY === true;
  readonly #color = this.#tty && process.env.NO_COLOR === undefined && process.env.TERM !== "dumb";
  readonly #pending: Array<{ at: number; seq: number; line: () => string }> = [];
  #seq = 0;
  #progress = "";

  constructor(readonly quiet: boolean) {}

  get tty(): boolean {
    return this.#tty;
  }

  paint(code: string, text: string): string {
    return this.#color ? `\x1b[${code}m${text}\x1b[0m` : text;
  }

  /** A line printed now, above the progress line. */
  print(line = ""): void {
    this.#write(`${this.#clear()}${line}\n${this.#progress}`);
  }

  /** A timeline line at `at`; `line` runs when printed, so it names owners learned meanwhile. */
  add(at: number, line: () => string, important = false): void {
    if (!this.quiet || important) {
      this.#pending.push({ at, seq: this.#seq++, line });
    }
  }

  /** Prints the lines older than `before` (all of them by default). */
  flush(before = Number.POSITIVE_INFINITY): void {
    this.#pending.sort((a, b) => a.at - b.at || a.seq - b.seq);
    let count = 0;
    while (count < this.#pending.length && (this.#pending[count]?.at ?? 0) < before) {
      count++;
    }
    const lines = this.#pending.splice(0, count).map((entry) => `${entry.line()}\n`);
    if (lines.length > 0) {
      this.#write(`${this.#clear()}${lines.join("")}${this.#progress}`);
    }
  }

  /** On a TTY: replaces the progress line (empty: removes it). */
  progress(text: string): void {
    if (!this.#tty) {
      return;
    }
    const width = process.stdout.columns || 80;
    const line = text === "" ? "" : this.paint("2", text.slice(0, Math.max(width - 1, 20)));
    this.#write(`${this.#clear()}${line}`);
    this.#progress = line;
  }

  #clear(): string {
    return this.#progress === "" ? "" : "\r\x1b[2K";
  }

  #write(text: string): void {
    if (text !== "") {
      process.stdout.write(text);
    }
  }
}

type DemoWorker = WorkerProcess<WorkerReport> & { name: string; killed: boolean };

type Fault = {
  worker: string;
  key: string;
  token: number;
  lockId: string;
  acquiredAt: number;
  killedAt: number;
  /** The killed section ended (and was logged) before the kill landed. */
  ended: boolean;
  takeover?: { worker: string; token: number; at: number };
};

async function main(argv: string[]): Promise<number> {
  let options: DemoOptions;
  try {
    const parsed = parseOptions(argv);
    if (parsed === "help") {
      process.stdout.write(USAGE);
      return 0;
    }
    options = parsed;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`demo: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    throw error;
  }

  const term = new Terminal(options.quiet);
  const run = randomBytes(4).toString("hex");
  const storeSettings: DemoStoreSettings = { store: options.store, target: options.target, run };
  const ownFile = options.store === "sqlite" && !existsSync(options.target);
  const removeFile = () => {
    if (ownFile && !options.keep) {
      for (const suffix of ["", "-wal", "-shm"]) {
        rmSync(`${options.target}${suffix}`, { force: true });
      }
    }
  };
  let opened: DemoStore | undefined;
  try {
    // Loaded only now: `--help` and a bad option answer without loading the drivers.
    const { openDemoStore } = await import("./demo-store.js");
    opened = await openDemoStore(storeSettings);
    await opened.init();
  } catch (error) {
    await opened?.close().catch(() => {});
    removeFile();
    const what =
      options.store === "sqlite"
        ? `cannot use the SQLite file ${options.target}`
        : `cannot reach ${options.store} at ${redact(options.target)}`;
    process.stderr.write(`demo: ${what}: ${reason(error)}\n`);
    return 1;
  }
  const store = opened;

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
      ? `store: the SQLite file ${options.target} (no server)${ownFile && !options.keep ? ", deleted at the end" : ""}`
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

  const workers: DemoWorker[] = [];
  let cleaned: Promise<void> | undefined;
  const cleanUp = () => {
    cleaned ??= (async () => {
      for (const worker of workers) {
        stop(worker);
      }
      await Promise.all(workers.map((worker) => worker.exited));
      try {
        if (!options.keep && !ownFile) {
          await store.drop();
        }
      } finally {
        await store.close();
        removeFile();
      }
    })();
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
 * Sends "go", prints the timeline from the workers' reports, kills one worker right after it
 * acquired a key (about a quarter into the run), and waits until every worker has exited.
 */
async function watchRun(
  options: DemoOptions,
  workers: readonly DemoWorker[],
  term: Terminal,
): Promise<RunOutcome> {
  const total = options.sections === null ? null : options.sections * options.workers;
  const palette = ["36", "35", "33", "32", "34", "96", "95", "93"];
  const keyWidth = Math.max(...options.keys.map((key) => key.length));
  const nameWidth = Math.max(3, `w${options.workers}`.length);
  const who = (name: string) => {
    const index = Number(name.slice(1)) - 1;
    return term.paint(palette[index % palette.length] ?? "0", name.padEnd(nameWidth));
  };
  /** One timeline line; `tone` colours the event and what happened. */
  const row = (at: number, worker: string, event: string, key: string, what: string, tone = "0") =>
    `${term.paint("2", seconds3(at).padStart(8))}  ${who(worker)}  ${term.paint(tone, event.padEnd(8))}  ${key.padEnd(keyWidth)}  ${term.paint(tone, what)}`;
  if (!options.quiet) {
    const heading = `${"time s".padStart(8)}  ${"who".padEnd(nameWidth)}  ${"event".padEnd(8)}  ${"key".padEnd(keyWidth)}  details`;
    term.print(term.paint("2", heading));
  }

  // Times are ms after the epoch, in every process (see `go` in processes/worker-processes.ts).
  const epoch = hrtime.bigint();
  const now = () => Number(hrtime.bigint() - epoch) / 1e6;
  const owners = new Map<string, string>();
  /** Per lock id, when its hold began (its "acquired" report). */
  const acquiredAt = new Map<string, number>();
  /** "waiting" reports of a hold whose "acquired" report has not come yet, per holder's lock id. */
  const waitsForUnseen = new Map<string, Array<() => void>>();
  const holders = new Map<string, { worker: string; token: number; at: number }>();
  const waiting = new Set<string>();
  let completed = 0;
  let lost = 0;
  let fault: Fault | undefined;

  const ownerName = (lockId: string, at: number) => {
    const name = owners.get(lockId) ?? `an unknown owner (${lockId.slice(0, 8)})`;
    return fault?.lockId === lockId && at >= fault.killedAt ? `${name} (killed)` : name;
  };

  const shouldKill = () =>
    options.kill &&
    fault === undefined &&
    (total === null
      ? now() >= (options.durationMs ?? 0) / 4
      : completed >= Math.max(1, Math.floor(total / 4)));

  const kill = (worker: DemoWorker, report: WorkerReport & { type: "acquired" }) => {
    const killedAt = now();
    worker.killed = true;
    worker.kill();
    fault = {
      worker: worker.name,
      key: report.key,
      token: report.token,
      lockId: report.lockId,
      acquiredAt: report.at,
      killedAt,
      ended: false,
    };
    const what = `SIGKILL while holding token ${report.token}: ${report.key} stays taken until its TTL (${options.ttlMs / 1000} s) passes`;
    term.add(killedAt, () => row(killedAt, worker.name, "KILLED", report.key, what, "1;31"), true);
  };

  const onReport = (worker: DemoWorker, report: WorkerReport) => {
    const { name } = worker;
    switch (report.type) {
      case "acquired": {
        owners.set(report.lockId, name);
        acquiredAt.set(report.lockId, report.at);
        holders.set(report.key, { worker: name, token: report.token, at: report.at });
        waiting.delete(name);
        // The first holder of the killed worker's key after the kill: the dead hold expired.
        const dead = fault?.takeover === undefined && fault?.key === report.key ? fault : undefined;
        if (dead !== undefined) {
          dead.takeover = { worker: name, token: report.token, at: report.at };
          const what = `the hold of the killed ${dead.worker} ran out its TTL, ${seconds2(report.at - dead.killedAt)} after the kill`;
          term.add(
            report.at,
            () => row(report.at, dead.worker, "expired", dead.key, what, "33"),
            true,
          );
        }
        term.add(
          report.at,
          () => row(report.at, name, "acquired", report.key, `token ${report.token}`),
          dead !== undefined,
        );
        for (const addWait of waitsForUnseen.get(report.lockId) ?? []) {
          addWait();
        }
        waitsForUnseen.delete(report.lockId);
        if (shouldKill()) {
          kill(worker, report);
        }
        return;
      }
      case "released": {
        completed += 1;
        if (fault?.worker === name && fault.token === report.token) {
          fault.ended = true;
        }
        const held = holders.get(report.key);
        let since = "";
        if (held?.token === report.token) {
          holders.delete(report.key);
          since = `, held ${Math.round(report.at - held.at)} ms`;
        }
        term.add(report.at, () =>
          row(report.at, name, "released", report.key, `token ${report.token}${since}`),
        );
        return;
      }
      case "waiting": {
        waiting.add(name);
        const left =
          report.remainingMs === null ? "" : `, TTL left ${seconds2(report.remainingMs)}`;
        // Each process stamps its own reports, the holder its "acquired" only once its section
        // runs: a worker can see the hold before that. A wait is shown after the hold it saw
        // began, and before its own (a lock event's time is in whole ms).
        const addWait = () => {
          const seen = Math.max(report.at, acquiredAt.get(report.owner) ?? report.at);
          const at = Math.min(seen, (acquiredAt.get(report.lockId) ?? Infinity) - 0.001);
          term.add(at, () => {
            const what = `held by ${ownerName(report.owner, at)}${left}`;
            return row(at, name, "waiting", report.key, what);
          });
        };
        if (acquiredAt.has(report.owner)) {
          addWait();
        } else {
          waitsForUnseen.set(report.owner, [...(waitsForUnseen.get(report.owner) ?? []), addWait]);
        }
        return;
      }
      case "lost": {
        lost += 1;
        const what = `the ${report.operation} found the hold gone: it outlived its TTL`;
        term.add(report.at, () => row(report.at, name, "lost", report.key, what, "31"), true);
        return;
      }
      case "done": {
        term.add(report.at, () => row(report.at, name, "done", "", `${report.sections} sections`));
        return;
      }
    }
  };

  const progressText = () => {
    const elapsed = now();
    const time =
      options.durationMs === null
        ? seconds2(elapsed)
        : `${(elapsed / 1000).toFixed(1)} of ${options.durationMs / 1000} s`;
    const count = `${completed}${total === null ? "" : `/${total}`} sections`;
    const held = [...holders]
      .map(([key, { worker, token }]) =>
        fault?.key === key && fault.token === token
          ? `${key} ${worker} (killed)`
          : `${key} ${worker}`,
      )
      .join(", ");
    return `  ${time} | ${count} | holding: ${held || "-"} | waiting: ${waiting.size}`;
  };
  let lastPlain = 0;
  const ticker = setInterval(() => {
    // Lines wait a moment, so that a report that left another process earlier is printed first.
    term.flush(now() - 150);
    if (term.tty) {
      term.progress(progressText());
    } else if (options.quiet && now() - lastPlain >= 5_000) {
      lastPlain = now();
      term.print(progressText().trim());
    }
  }, 100);

  for (const worker of workers) {
    worker.onReport((report) => onReport(worker, report));
  }
  go<GoPayload>(workers, epoch, { deadline: options.durationMs });

  // A worker that hangs (a lost wake-up, a dead server) must not keep the demo running.
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
  const endedAt = now();
  clearTimeout(watchdog);
  clearInterval(ticker);
  // Holds nobody reported (a holder of an earlier run's): their waits as they were stamped.
  for (const addWait of [...waitsForUnseen.values()].flat()) {
    addWait();
  }
  term.flush();
  term.progress("");

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
  return { completed, lost, fault, problems, endedAt };
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

// A closed pipe (`npm run demo | head`) is no failure of the demo.
process.stdout.on("error", () => process.exit(0));
process.exitCode = await main(process.argv.slice(2));
