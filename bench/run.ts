// `npm run bench`: forks one child per (round, scenario, subject), subjects interleaved and
// their order rotated each round, then prints the table (stdout), progress (stderr), and
// writes bench/results/latest.json. See bench/README.md.

import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg, platform } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { renderScriptSplit } from "./cost-report.js";
import { dropCollectionsStartingWith, probeMongodb } from "./mongodb.js";
import { type BenchOptions, OptionsError, parseOptions, USAGE } from "./options.js";
import { comparePeers, type PeerComparison, renderPeers } from "./peer-comparison.js";
import { deleteKeysContaining, probeRedis } from "./redis.js";
import {
  checkTargets,
  type RunRecord,
  renderScenario,
  renderTargets,
  type SubjectSummary,
  summarize,
  type TargetResult,
} from "./report.js";
import { runChild } from "./run-child.js";
import { SCENARIOS, type ScenarioDefinition } from "./scenarios.js";
import {
  dropLeftovers,
  probeSqlite,
  probeSqlServer,
  SQL_SERVERS,
  type SqlServerName,
} from "./sql.js";
import { SUBJECTS } from "./subjects.js";
import type { BackendName, Job, SubjectDefinition } from "./types.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUTPUT = fileURLToPath(new URL("./results/latest.json", import.meta.url));
/**
 * Before each window, in a fresh child: long enough for V8 to have optimized the subject's hot
 * path, so the figures are a running service's. At 250 ms, the subjects with more JavaScript
 * than their raw baseline (hasp over Kysely, the peers) were still partly measured cold: PostgreSQL
 * par64 read ×0.72 of raw there and ×0.87 at 1.5 s, in runs of the same code.
 */
const WARMUP_MS = { full: 1000, quick: 100 };
/** Beyond warm-up and window: start-up, a blocked acquire's bound (10 s), closing (15 s). */
const CHILD_GRACE_MS = 45_000;
/** Above this CPU share used by other work, the figures are flagged as noisy. */
const BUSY_WARNING = 0.2;

const say = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const print = (text: string) => process.stdout.write(`${text}\n`);

/** The share of all cores busy over `ms` while the bench itself is idle: other work's noise. */
async function machineBusy(ms = 500): Promise<number> {
  const sum = (times: Record<string, number>) => Object.values(times).reduce((a, b) => a + b, 0);
  const before = cpus();
  await sleep(ms);
  let busy = 0;
  let all = 0;
  cpus().forEach((cpu, index) => {
    const earlier = before[index];
    if (earlier !== undefined) {
      const total = sum(cpu.times) - sum(earlier.times);
      busy += total - (cpu.times.idle - earlier.times.idle);
      all += total;
    }
  });
  return all === 0 ? 0 : busy / all;
}

function gitCommit(): string | null {
  const git = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" });
  return git.status === 0 ? git.stdout.trim() : null;
}

/** The subjects asked for, plus the raw baseline of each of their backends. */
function selectSubjects(names: readonly string[], backends: readonly BackendName[]) {
  const wanted = SUBJECTS.filter(
    (subject) =>
      (backends.length === 0 || backends.includes(subject.backend)) &&
      (names.length === 0 || names.includes(subject.name)),
  );
  return SUBJECTS.filter(
    (subject) =>
      wanted.includes(subject) ||
      (subject.baseline && wanted.some((other) => other.backend === subject.backend)),
  );
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = items.length === 0 ? 0 : by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

async function main(): Promise<number> {
  const options = parseOptions(
    process.argv.slice(2),
    SUBJECTS.map((subject) => subject.name),
  );
  if (options.help) {
    print(USAGE);
    return 0;
  }
  const mode = options.quick ? "quick" : "full";
  const scenarios = SCENARIOS.filter((scenario) => options.scenarios.includes(scenario.name));
  const servers = await probeServers(selectSubjects(options.subjects, options.backends));
  const { subjects } = servers;
  if (subjects.length === 0 || scenarios.length === 0) {
    say("nothing to run");
    return 1;
  }
  const jobs = planJobs({ options, mode, scenarios, servers });
  say(
    `${jobs.length} runs: ${subjects.map((s) => s.name).join(", ")} × ${scenarios.map((s) => s.name).join(", ")} × ${options.rounds} round(s)${options.quick ? " (quick: a smoke run, not a measurement)" : ""}`,
  );

  const busyBefore = await machineBusy();
  if (busyBefore > BUSY_WARNING) {
    say(`other work keeps ${(busyBefore * 100).toFixed(0)}% of the CPU busy: expect noisy figures`);
  }
  const startedAt = new Date();
  const records = await runJobs(jobs, options, subjects);
  const finishedAt = new Date();
  const busyAfter = await machineBusy();

  const summaries = summarize(records, subjects, scenarios);
  const targets = checkTargets(summaries);
  const peers = comparePeers(summaries);
  const environment = describeEnvironment(servers, { before: busyBefore, after: busyAfter });
  const run: FinishedRun = { options, mode, scenarios, servers, startedAt, environment };
  print(renderRun(run, { summaries, targets, peers, records }));
  await writeResults(run, { finishedAt, summaries, targets, peers, records });

  // The run itself never crashes on a subject; hasp failing or breaking exclusion fails it.
  const broken = summaries.filter(
    (summary) =>
      summary.subject.startsWith("hasp-") &&
      (summary.status === "violation" || summary.status === "error"),
  );
  return broken.length > 0 ? 1 : 0;
}

type Mode = "full" | "quick";

type SqlVersions = Partial<Record<SqlServerName | "sqlite", { url?: string; version: string }>>;

/** The servers found, and the subjects left once those of a missing server are skipped. */
type Servers = {
  subjects: SubjectDefinition[];
  redis: { url: string; version: string } | null;
  sql: SqlVersions;
  mongodb: { url: string; version: string } | null;
};

async function probeServers(selected: SubjectDefinition[]): Promise<Servers> {
  let subjects = selected;
  const uses = (backend: BackendName) => subjects.some((subject) => subject.backend === backend);
  const skip = (backend: BackendName, why: string) => {
    say(`SKIPPING the ${backend} subjects: ${why}`);
    subjects = subjects.filter((subject) => subject.backend !== backend);
  };
  let redis: Servers["redis"] = null;
  if (uses("redis")) {
    const probe = await probeRedis();
    if (probe.found) {
      redis = { url: probe.url, version: probe.version };
    } else {
      skip("redis", `${probe.url}: ${probe.reason}`);
    }
  }
  const sql: SqlVersions = {};
  for (const backend of SQL_SERVERS) {
    if (uses(backend)) {
      const probe = await probeSqlServer(backend);
      if (probe.found) {
        sql[backend] = { url: probe.url, version: probe.version };
      } else {
        skip(backend, `${probe.url}: ${probe.reason}`);
      }
    }
  }
  let mongodb: Servers["mongodb"] = null;
  if (uses("mongodb")) {
    const probe = await probeMongodb();
    if (probe.found) {
      mongodb = { url: probe.url, version: probe.version };
    } else {
      skip("mongodb", `${probe.url}: ${probe.reason}`);
    }
  }
  if (uses("sqlite")) {
    const probe = probeSqlite();
    if (probe.found) {
      sql.sqlite = { version: probe.version };
    } else {
      skip("sqlite", `better-sqlite3: ${probe.reason}`);
    }
  }
  return { subjects, redis, sql, mongodb };
}

type PlannedJob = { job: Job; subject: SubjectDefinition; scenario: ScenarioDefinition };

/** `--keep-rows`: the one table (stem) of a subject, the same in every run. */
function keptTablePrefix(subject: string): string {
  return `hasp_bench_kept_${subject.replaceAll("-", "_")}`;
}

/** Every (round, scenario, subject), the subjects' order rotated each round. */
function planJobs(plan: {
  options: BenchOptions;
  mode: Mode;
  scenarios: readonly ScenarioDefinition[];
  servers: Servers;
}): PlannedJob[] {
  const { options, mode, servers } = plan;
  const runId = randomBytes(3).toString("hex");
  const jobs: PlannedJob[] = [];
  for (let round = 1; round <= options.rounds; round += 1) {
    for (const scenario of plan.scenarios) {
      const subjects = servers.subjects.filter(
        (subject) => scenario.semaphore !== true || subject.semaphore !== undefined,
      );
      for (const subject of rotate(subjects, round - 1)) {
        const prefix = `hasp_bench_${runId}_${jobs.length + 1}`;
        jobs.push({
          subject,
          scenario,
          job: {
            subject: subject.name,
            scenario: scenario.name,
            round,
            redisUrl: subject.backend === "redis" ? servers.redis?.url : undefined,
            postgresUrl: subject.backend === "postgres" ? servers.sql.postgres?.url : undefined,
            mysqlUrl: subject.backend === "mysql" ? servers.sql.mysql?.url : undefined,
            mongodbUrl: subject.backend === "mongodb" ? servers.mongodb?.url : undefined,
            prefix,
            tablePrefix: options.keepRows ? keptTablePrefix(subject.name) : prefix,
            keepTables: options.keepRows,
            warmupMs: WARMUP_MS[mode],
            windowMs: options.windowMs ?? scenario.windowMs[mode],
            sharedClient: options.sharedClient,
          },
        });
      }
    }
  }
  return jobs;
}

/** Runs the jobs one child at a time, a progress line each. */
async function runJobs(
  jobs: readonly PlannedJob[],
  options: BenchOptions,
  subjects: readonly SubjectDefinition[],
): Promise<RunRecord[]> {
  const records: RunRecord[] = [];
  const nameWidth = Math.max(...subjects.map((subject) => subject.name.length));
  for (const { job, subject, scenario } of jobs) {
    const began = performance.now();
    const result = await runChild(job, job.warmupMs + job.windowMs + CHILD_GRACE_MS);
    const seconds = (performance.now() - began) / 1000;
    if (result.status === "error") {
      await cleanUpAfterChild(job, subject);
    }
    records.push({
      round: job.round,
      scenario: scenario.name,
      subject: subject.name,
      backend: subject.backend,
      seconds,
      result,
    });
    const figure =
      result.status === "ok"
        ? `${Math.round(result.measurement.cyclesPerSecond).toLocaleString("en-US")} /s`
        : `FAILED: ${result.error}`;
    say(
      `round ${job.round}/${options.rounds}  ${scenario.name.padEnd(15)} ${subject.name.padEnd(nameWidth)} ${figure}  (${seconds.toFixed(1)} s)`,
    );
  }
  return records;
}

/** A child that died or was killed could not clean up after itself. */
async function cleanUpAfterChild(job: Job, subject: SubjectDefinition): Promise<void> {
  if (job.redisUrl !== undefined) {
    await deleteKeysContaining(job.redisUrl, job.prefix).catch(() => 0);
  }
  if (job.mongodbUrl !== undefined) {
    await dropCollectionsStartingWith(job.mongodbUrl, job.prefix).catch(() => {});
  }
  if (
    subject.backend === "postgres" ||
    subject.backend === "mysql" ||
    subject.backend === "sqlite"
  ) {
    await dropLeftovers(subject.backend, job.postgresUrl ?? job.mysqlUrl, job.prefix).catch(
      () => {},
    );
  }
}

type Environment = ReturnType<typeof describeEnvironment>;

function describeEnvironment(servers: Servers, busy: { before: number; after: number }) {
  const cpu = cpus();
  return {
    node: process.version,
    platform: platform(),
    cpu: cpu[0]?.model ?? "unknown",
    cores: cpu.length,
    redis: servers.redis,
    sql: servers.sql,
    mongodb: servers.mongodb,
    commit: gitCommit(),
    /** CPU share other work used just before and after the run (the bench idle): noise. */
    busy,
    loadAverage: loadavg(),
  };
}

/** What the run was, for the printed tables and the JSON. */
type FinishedRun = {
  options: BenchOptions;
  mode: Mode;
  scenarios: readonly ScenarioDefinition[];
  servers: Servers;
  startedAt: Date;
  environment: Environment;
};

type Findings = {
  summaries: SubjectSummary[];
  targets: TargetResult[];
  peers: PeerComparison[];
  /** Each child's outcome (the Redis per-operation table reads them). */
  records: readonly RunRecord[];
};

/** The heading, a table per backend and scenario, the Redis per-operation table, then the peers and the targets. */
function renderRun(run: FinishedRun, findings: Findings): string {
  const { options, mode, servers } = run;
  const blocks: string[] = [
    renderHeading(run),
    "Figures: median over rounds (min–max); vs raw: median of each round's ratio to the raw baseline of the same backend.",
  ];
  const backends = [...new Set(servers.subjects.map((subject) => subject.backend))];
  for (const backend of backends) {
    for (const scenario of run.scenarios) {
      const rows = findings.summaries.filter(
        (summary) => summary.backend === backend && summary.scenario === scenario.name,
      );
      if (rows.length > 0) {
        blocks.push(
          renderScenario(scenario, backend, rows, {
            windowMs: options.windowMs ?? scenario.windowMs[mode],
            sharedClient: options.sharedClient,
          }),
        );
      }
    }
  }
  const splitText = renderScriptSplit(findings.records);
  if (splitText !== "") {
    blocks.push(splitText);
  }
  const peerText = renderPeers(findings.peers);
  if (peerText !== "") {
    blocks.push(peerText);
  }
  const targetText = renderTargets(findings.targets, options.sharedClient);
  if (targetText !== "") {
    blocks.push(targetText);
  }
  return blocks.join("\n\n");
}

function renderHeading({ options, servers, startedAt, environment }: FinishedRun): string {
  const { redis, sql, mongodb } = servers;
  const { before, after } = environment.busy;
  return (
    `hasp bench · ${startedAt.toISOString()} · node ${environment.node} · ${environment.cores} × ${environment.cpu}` +
    (redis === null ? "" : ` · redis ${redis.version} at ${redis.url}`) +
    Object.values(sql)
      .map((server) => ` · ${server.version}${server.url === undefined ? "" : ` at ${server.url}`}`)
      .join("") +
    (mongodb === null ? "" : ` · ${mongodb.version} at ${mongodb.url}`) +
    ` · other CPU load ${(before * 100).toFixed(0)}% before, ${(after * 100).toFixed(0)}% after` +
    (options.keepRows ? " · SQL tables kept between runs (--keep-rows)" : "") +
    (options.quick ? " · QUICK (smoke run)" : "")
  );
}

/** bench/results/latest.json: the run, its environment, the summaries and every run record. */
async function writeResults(
  run: FinishedRun,
  end: Findings & { finishedAt: Date; records: RunRecord[] },
): Promise<void> {
  const { options, mode, startedAt } = run;
  await mkdir(fileURLToPath(new URL("./results/", import.meta.url)), { recursive: true });
  const report = {
    version: 1,
    startedAt: startedAt.toISOString(),
    finishedAt: end.finishedAt.toISOString(),
    seconds: (end.finishedAt.getTime() - startedAt.getTime()) / 1000,
    environment: run.environment,
    options: { ...options, warmupMs: WARMUP_MS[mode], mode },
    subjects: run.servers.subjects.map(({ name, backend, baseline, description }) => ({
      name,
      backend,
      baseline,
      description,
    })),
    scenarios: run.scenarios.map(({ name, description, contended, windowMs }) => ({
      name,
      description,
      contended,
      windowMs: windowMs[mode],
    })),
    summary: end.summaries,
    targets: end.targets,
    peers: end.peers,
    runs: end.records,
  };
  await writeFile(OUTPUT, `${JSON.stringify(report, null, 2)}\n`);
  say(`wrote ${OUTPUT} (${report.seconds.toFixed(0)} s in all)`);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof OptionsError) {
      process.stderr.write(`bench: ${error.message}\n\n${USAGE}`);
      process.exitCode = 2;
      return;
    }
    console.error(error);
    process.exitCode = 1;
  },
);
