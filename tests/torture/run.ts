// `npm run torture`: the long torture run (tests/torture/torture.ts) on each backend in turn,
// every fault injected, the figures printed at the end. Exits 1 on any violation or problem.
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { DEFAULT_URLS, URL_VARIABLES } from "../harness/services.js";
import { formatReport } from "./format-report.js";
import { runTorture } from "./torture.js";
import { defaultFaults } from "./torture-faults.js";
import { TORTURE_BACKENDS, type TortureBackend } from "./torture-protocol.js";
import type { TortureReport } from "./torture-report.js";

const HELP = `Usage: npm run torture -- [options]

Many processes contend for a few keys on Redis, PostgreSQL, MariaDB and a SQLite file while
faults are injected (Redis killed and restarted, PostgreSQL connections terminated, a holder
stopped past its TTL, clocks shifted by minutes, a delayed and cut connection). A checker then
proves that no two holds of one key overlapped, that fencing tokens grew in hold order, and
that the guarded resource refused the stopped holder's late write.

Options:
  --backend <names>   comma-separated, or repeated: ${TORTURE_BACKENDS.join(", ")}
                      (default: all)
  --seconds <n>       how long each backend is tortured (default: 30)
  --workers <n>       processes per backend, at least 4 (default: 8)
  --keys <n>          keys they contend for (default: 3)
  --semaphore <n>     take slots of semaphores of limit n instead of locks: the checker
                      proves that no more than n holds of a key ran at once
  --help              this text

Servers: REDIS_URL, POSTGRES_URL, MYSQL_URL, or the local defaults
(${DEFAULT_URLS.redis}, ${DEFAULT_URLS.postgres}, ${DEFAULT_URLS.mysql}).
The Redis locks live on a redis-server the run starts itself (redis-server must be on PATH).`;

function fail(message: string): never {
  console.error(`torture: ${message}\n\n${HELP}`);
  process.exit(2);
}

function parse() {
  try {
    return parseArgs({
      options: {
        backend: { type: "string", multiple: true },
        seconds: { type: "string", default: "30" },
        workers: { type: "string", default: "8" },
        keys: { type: "string", default: "3" },
        semaphore: { type: "string" },
        help: { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error));
  }
}

const values = parse();
if (values.help) {
  console.log(HELP);
  process.exit(0);
}

const count = (option: string, text: string, min: number) => {
  const value = Number(text);
  if (!Number.isFinite(value) || value < min) {
    fail(`--${option} must be a number of at least ${min}, not "${text}"`);
  }
  return value;
};
const seconds = count("seconds", values.seconds, 1);
const workers = Math.floor(count("workers", values.workers, 4));
const keys = Math.floor(count("keys", values.keys, 1));
const limit =
  values.semaphore === undefined ? undefined : Math.floor(count("semaphore", values.semaphore, 1));
const backends = (values.backend ?? [TORTURE_BACKENDS.join(",")])
  .flatMap((list) => list.split(","))
  .map((name) => name.trim())
  .filter((name) => name !== "");
for (const name of backends) {
  if (!(TORTURE_BACKENDS as readonly string[]).includes(name)) {
    fail(`unknown backend "${name}"`);
  }
}

const runId = randomBytes(4).toString("hex");
const reports: TortureReport[] = [];
const failures: string[] = [];
for (const backend of backends as TortureBackend[]) {
  const url =
    backend === "sqlite"
      ? undefined
      : (process.env[URL_VARIABLES[backend]] ?? DEFAULT_URLS[backend]);
  const durationMs = seconds * 1000;
  try {
    const report = await runTorture({
      backend,
      ...(url === undefined ? {} : { url }),
      name: `hasp_t_torture_${runId}_${backend}`,
      workers,
      keys,
      durationMs,
      faults: defaultFaults(backend, durationMs),
      ...(limit === undefined ? {} : { limit }),
      log: (line) => console.log(line),
    });
    reports.push(report);
    for (const line of formatReport(report)) {
      console.log(line);
    }
  } catch (error) {
    failures.push(`${backend}: ${error instanceof Error ? error.message : String(error)}`);
    console.error(`[torture ${backend}] could not run:`, error);
  }
}

const total = (pick: (report: TortureReport) => number) =>
  reports.reduce((sum, report) => sum + pick(report), 0);
const violations = total((r) => r.check.violations.length);
const problems = total((r) => r.problems.length);
console.log(
  [
    "",
    `torture: ${reports.length} backends (${reports.map((r) => r.backend).join(", ")})`,
    `  processes: ${total((r) => r.workers.length)}`,
    `  critical sections: ${total((r) => r.check.sections)} (stale writes rejected: ${total((r) => r.check.staleRejected)})`,
    `  faults injected: ${total((r) => r.faults.redisRestarts.length)} Redis restarts, ${total((r) => r.faults.pgTerminations.length)} pg_terminate_backend rounds, ${total((r) => r.faults.stalls.length)} SIGSTOPs, ${total((r) => r.faults.clockShifts.length)} shifted clocks, ${total((r) => (r.faults.delay === null ? 0 : 1))} delayed connections, ${total((r) => r.faults.proxyCuts.length)} proxy cuts`,
    `  violations found: ${violations}`,
    ...(problems + failures.length > 0 ? [`  problems: ${problems + failures.length}`] : []),
  ].join("\n"),
);
process.exitCode = violations + problems + failures.length === 0 ? 0 : 1;
