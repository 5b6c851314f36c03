// One measurement in a process of its own: the parent forks this file per (round, scenario,
// subject), sends a Job over IPC and receives one JobResult. Nothing is printed on stdout.

import { SCENARIOS, ScenarioFailure } from "./scenarios.js";
import { splitScripts } from "./script-split.js";
import { openServerProbe, type ServerProbe } from "./server-cpu.js";
import { SUBJECTS } from "./subjects.js";
import type { Counters, Job, JobResult, SubjectEnvironment, SubjectFixture } from "./types.js";
import { WindowCost } from "./window-cost.js";

const TTL_MS = 30_000;
const BLOCKING_TIME_MS = 10_000;
const CLOSE_TIMEOUT_MS = 15_000;

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? ` (cause: ${error.cause.message})` : "";
    return `${error.name}: ${error.message}${cause}`;
  }
  return String(error);
}

function answer(result: JobResult): void {
  if (process.send === undefined) {
    console.error("bench/child.ts runs under bench/run.ts (it needs an IPC channel)");
    process.exit(2);
  }
  process.send(result, () => process.exit(0));
}

async function closeWithin(fixture: SubjectFixture, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`close took more than ${ms} ms`)), ms);
  });
  try {
    await Promise.race([fixture.close(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function run(job: Job): Promise<JobResult> {
  const subject = SUBJECTS.find((candidate) => candidate.name === job.subject);
  const scenario = SCENARIOS.find((candidate) => candidate.name === job.scenario);
  if (subject === undefined || scenario === undefined) {
    return {
      status: "error",
      error: `unknown subject or scenario: ${job.subject} ${job.scenario}`,
    };
  }
  const counters: Counters = { attempts: 0, commands: 0, byCommand: {} };
  const env: SubjectEnvironment = {
    redisUrl: job.redisUrl,
    postgresUrl: job.postgresUrl,
    mysqlUrl: job.mysqlUrl,
    mongodbUrl: job.mongodbUrl,
    prefix: job.prefix,
    tablePrefix: job.tablePrefix,
    keepTables: job.keepTables,
    ttlMs: TTL_MS,
    blockingTimeMs: BLOCKING_TIME_MS,
    counters,
  };
  let fixture: SubjectFixture | undefined;
  let probe: ServerProbe | null = null;
  try {
    // The server's counters are a figure beside the measurement, never a reason to fail it.
    probe = await openServerProbe(
      subject.backend,
      { ...job, prefix: job.tablePrefix },
      counters,
    ).catch(() => null);
    const cost = new WindowCost(probe);
    await cost.beginRun();
    fixture = await subject.setup(env);
    const measurement = await scenario.run(fixture, env, { ...job, cost });
    if (probe !== null && subject.backend === "redis" && scenario.name === "seq") {
      measurement.scriptSplit = await splitScripts(fixture, probe);
    }
    await closeWithin(fixture, CLOSE_TIMEOUT_MS);
    await cost.endRun(measurement);
    return { status: "ok", measurement };
  } catch (error) {
    if (fixture !== undefined) {
      await closeWithin(fixture, CLOSE_TIMEOUT_MS).catch(() => {});
    }
    return error instanceof ScenarioFailure
      ? { status: "error", error: describeError(error.reason), measurement: error.measurement }
      : { status: "error", error: describeError(error) };
  } finally {
    await probe?.close().catch(() => {});
  }
}

// A stray rejection or exception inside a subject is its failure, not a crash of the run.
for (const event of ["unhandledRejection", "uncaughtException"] as const) {
  process.on(event, (error: unknown) => {
    answer({ status: "error", error: `${event}: ${describeError(error)}` });
  });
}

process.once("message", (job: Job) => {
  void run(job).then(answer);
});
