// Turns the children's answers into the summary (medians, min–max, paired ratios to the raw
// baseline), the stdout table, and the target checks.

import {
  COST_METRICS,
  costCells,
  costHeaders,
  renderServerNotes,
  type ServerSummary,
  summarizeServer,
} from "./cost-report.js";
import { renderTable } from "./render-table.js";
import type { ScenarioDefinition } from "./scenarios.js";
import { median, type Spread, spread } from "./stats.js";
import type {
  BackendName,
  JobResult,
  Measurement,
  ScenarioName,
  SubjectDefinition,
} from "./types.js";

/** One child's outcome. */
export type RunRecord = {
  readonly round: number;
  readonly scenario: ScenarioName;
  readonly subject: string;
  readonly backend: BackendName;
  readonly seconds: number;
  readonly result: JobResult;
};

const METRICS = [
  "cyclesPerSecond",
  "handoffP50Ms",
  "handoffP99Ms",
  "attemptsPerCycle",
  "commandsPerCycle",
  ...COST_METRICS,
] as const;
type MetricName = (typeof METRICS)[number];

/** A figure over the rounds, and its ratio to the baseline: the median of per-round ratios. */
export type MetricSummary = Spread & { ratio: number | null };

export type SummaryStatus = "ok" | "violation" | "error" | "starved";

export type SubjectSummary = {
  backend: BackendName;
  scenario: ScenarioName;
  subject: string;
  baseline: boolean;
  rounds: number;
  roundsOk: number;
  status: SummaryStatus;
  statusText: string;
  errors: string[];
  metrics: Partial<Record<MetricName, MetricSummary>>;
  /** Where `serverPerCycle` comes from, its unit, and why it may be off. */
  server?: ServerSummary;
  /** Contended: median over rounds of the fewest / most sections of one worker. */
  fewest?: number;
  most?: number;
  starvedRounds?: number;
  lostUpdates?: number;
  overlaps?: number;
};

function measurementOf(record: RunRecord | undefined): Measurement | undefined {
  return record?.result.status === "ok" ? record.result.measurement : undefined;
}

function metricOf(measurement: Measurement | undefined, metric: MetricName): number | null {
  const value = measurement?.[metric];
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

export function summarize(
  records: readonly RunRecord[],
  subjects: readonly SubjectDefinition[],
  scenarios: readonly ScenarioDefinition[],
): SubjectSummary[] {
  const summaries: SubjectSummary[] = [];
  for (const scenario of scenarios) {
    for (const subject of subjects) {
      const summary = summarizeSubject(records, subjects, scenario, subject);
      if (summary !== undefined) {
        summaries.push(summary);
      }
    }
  }
  return summaries;
}

/** One subject in one scenario over the rounds; `undefined` when it never ran there. */
function summarizeSubject(
  records: readonly RunRecord[],
  subjects: readonly SubjectDefinition[],
  scenario: ScenarioDefinition,
  subject: SubjectDefinition,
): SubjectSummary | undefined {
  const own = records.filter(
    (record) => record.scenario === scenario.name && record.subject === subject.name,
  );
  if (own.length === 0) {
    return undefined;
  }
  const baseline = subjects.find(
    (candidate) => candidate.backend === subject.backend && candidate.baseline,
  );
  const baselineOf = (round: number) =>
    measurementOf(
      records.find(
        (record) =>
          record.round === round &&
          record.scenario === scenario.name &&
          record.subject === baseline?.name,
      ),
    );
  const ok = own.filter((record) => record.result.status === "ok");
  const errors = own.flatMap((record) =>
    record.result.status === "error" ? [`round ${record.round}: ${record.result.error}`] : [],
  );
  const server = summarizeServer(
    ok.map((record) => measurementOf(record)).filter((m) => m !== undefined),
  );
  const summary: SubjectSummary = {
    backend: subject.backend,
    scenario: scenario.name,
    subject: subject.name,
    baseline: subject.baseline,
    rounds: own.length,
    roundsOk: ok.length,
    status: "ok",
    statusText: "ok",
    errors,
    metrics: summarizeMetrics(ok, baselineOf),
    ...(server === undefined ? {} : { server }),
  };
  if (scenario.contended) {
    addContention(summary, own);
  }
  setStatus(summary);
  return summary;
}

/** Each metric's spread over the rounds that ran, and its median ratio to the same round's baseline. */
function summarizeMetrics(
  ok: readonly RunRecord[],
  baselineOf: (round: number) => Measurement | undefined,
): SubjectSummary["metrics"] {
  const measurements = ok.map((record) => measurementOf(record)).filter((m) => m !== undefined);
  const metrics: SubjectSummary["metrics"] = {};
  for (const metric of METRICS) {
    const values = spread(measurements.map((measurement) => metricOf(measurement, metric)));
    if (values === null) {
      continue;
    }
    const ratios = ok
      .map((record) => {
        const mine = metricOf(measurementOf(record), metric);
        const theirs = metricOf(baselineOf(record.round), metric);
        return mine === null || theirs === null || theirs === 0 ? null : mine / theirs;
      })
      .filter((ratio): ratio is number => ratio !== null);
    metrics[metric] = { ...values, ratio: median(ratios) };
  }
  return metrics;
}

/** Contended: fairness over the rounds that ran, and the correctness counts. */
function addContention(summary: SubjectSummary, own: readonly RunRecord[]): void {
  const measurements = own.map((record) => measurementOf(record)).filter((m) => m !== undefined);
  const perWorker = measurements.map((measurement) => measurement.perWorker ?? []);
  summary.fewest = median(perWorker.map((counts) => Math.min(...counts))) ?? undefined;
  summary.most = median(perWorker.map((counts) => Math.max(...counts))) ?? undefined;
  summary.starvedRounds = perWorker.filter((counts) => counts.some((n) => n === 0)).length;
  // Correctness counts also come from failed rounds that measured until they stopped.
  const checked = own.map((record) => record.result.measurement).filter((m) => m !== undefined);
  if (checked.length > 0) {
    summary.lostUpdates = checked.reduce((sum, m) => sum + (m.lostUpdates ?? 0), 0);
    summary.overlaps = checked.reduce((sum, m) => sum + (m.overlaps ?? 0), 0);
  }
}

/** A broken exclusion first, then failures, then starvation. */
function setStatus(summary: SubjectSummary): void {
  const { errors, rounds } = summary;
  const first = errors[0]?.replace(/^round \d+: /, "") ?? "";
  if ((summary.lostUpdates ?? 0) > 0 || (summary.overlaps ?? 0) > 0) {
    summary.status = "violation";
    summary.statusText =
      summary.scenario === "semaphore"
        ? `LIMIT EXCEEDED: ${summary.overlaps} sections entered with the limit inside`
        : `EXCLUSION VIOLATED: ${summary.lostUpdates} lost updates, ${summary.overlaps} overlapping holds`;
    if (errors.length > 0) {
      summary.statusText += `; FAILED in ${errors.length}/${rounds} rounds: ${first}`;
    }
  } else if (errors.length > 0) {
    summary.status = "error";
    summary.statusText = `FAILED in ${errors.length}/${rounds} rounds: ${first}`;
  } else if ((summary.starvedRounds ?? 0) > 0) {
    summary.status = "starved";
    summary.statusText = `STARVED: a worker got no section in ${summary.starvedRounds}/${rounds} rounds`;
  }
}

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

function formatMs(value: number): string {
  return value < 10 ? value.toFixed(2) : value.toFixed(1);
}

function formatCount(value: number): string {
  return value.toFixed(2);
}

function cell(summary: MetricSummary | undefined, format: (value: number) => string): string {
  if (summary === undefined) {
    return "–";
  }
  if (summary.min === summary.max) {
    return format(summary.median);
  }
  return `${format(summary.median)} (${format(summary.min)}–${format(summary.max)})`;
}

function ratioCell(summary: MetricSummary | undefined): string {
  return summary?.ratio === null || summary?.ratio === undefined
    ? "–"
    : `×${summary.ratio.toFixed(2)}`;
}

const CYCLES_HEADERS = ["subject", "cycles/s", "vs raw", "attempts/cycle", "cmds/cycle", "status"];

const CONTENDED_HEADERS = [
  "subject",
  "sections/s",
  "vs raw",
  "hand-off p50 ms",
  "vs raw",
  "hand-off p99 ms",
  "vs raw",
  "attempts/section",
  "vs raw",
  "cmds/section",
  "fewest–most",
  "lost",
  "overlaps",
  "status",
];

export function renderScenario(
  scenario: ScenarioDefinition,
  backend: BackendName,
  summaries: readonly SubjectSummary[],
  settings: { windowMs: number; sharedClient: boolean },
): string {
  const rounds = Math.max(...summaries.map((summary) => summary.rounds));
  let clients = "";
  if (scenario.contended) {
    clients = settings.sharedClient
      ? "; one client shared by the workers"
      : "; one client per worker";
  }
  const title = `${backend} · ${scenario.name}: ${scenario.description}${clients} (${rounds} round${rounds === 1 ? "" : "s"}, ${settings.windowMs} ms window)`;
  const [headers, row] = scenario.contended
    ? [CONTENDED_HEADERS, contendedRow]
    : [CYCLES_HEADERS, cyclesRow];
  const per = scenario.contended ? "section" : "cycle";
  const table = renderTable(
    withCost(headers, costHeaders(summaries, per)),
    summaries.map((summary) => withCost(row(summary), costCells(summary, cell, ratioCell))),
  );
  const notes = renderServerNotes(summaries);
  return `${title}\n${table}${notes === "" ? "" : `\n${notes}`}`;
}

/** The cost columns go just before the status, the last column. */
function withCost(cells: readonly string[], cost: readonly string[]): string[] {
  return [...cells.slice(0, -1), ...cost, ...cells.slice(-1)];
}

function cyclesRow(summary: SubjectSummary): string[] {
  const { metrics } = summary;
  return [
    summary.subject,
    cell(metrics.cyclesPerSecond, (value) => integer.format(value)),
    ratioCell(metrics.cyclesPerSecond),
    cell(metrics.attemptsPerCycle, formatCount),
    cell(metrics.commandsPerCycle, formatCount),
    summary.statusText,
  ];
}

function contendedRow(summary: SubjectSummary): string[] {
  const { metrics } = summary;
  return [
    summary.subject,
    cell(metrics.cyclesPerSecond, (value) => integer.format(value)),
    ratioCell(metrics.cyclesPerSecond),
    cell(metrics.handoffP50Ms, formatMs),
    ratioCell(metrics.handoffP50Ms),
    cell(metrics.handoffP99Ms, formatMs),
    ratioCell(metrics.handoffP99Ms),
    cell(metrics.attemptsPerCycle, formatCount),
    ratioCell(metrics.attemptsPerCycle),
    cell(metrics.commandsPerCycle, formatCount),
    summary.fewest === undefined ? "–" : `${summary.fewest}–${summary.most}`,
    summary.lostUpdates === undefined ? "–" : String(summary.lostUpdates),
    summary.overlaps === undefined ? "–" : String(summary.overlaps),
    summary.statusText,
  ];
}

/** A claim about one subject on one scenario, checked against the summary. */
export type Target = {
  readonly label: string;
  readonly subject: string;
  readonly scenario: ScenarioName;
  check(summary: SubjectSummary): { measured: string; pass: boolean };
};

const atLeastRatio =
  (minimum: number) =>
  (summary: SubjectSummary): { measured: string; pass: boolean } => {
    const ratio = summary.metrics.cyclesPerSecond?.ratio;
    return ratio === null || ratio === undefined || summary.status !== "ok"
      ? { measured: summary.statusText, pass: false }
      : { measured: `×${ratio.toFixed(2)}`, pass: ratio >= minimum };
  };

/** Issue 6's target for the Kysely adapter: seq and par64 within 15% of the raw SQL baseline. */
const SQL_TARGETS: readonly Target[] = (
  ["hasp-postgres", "hasp-mysql", "hasp-sqlite"] as const
).flatMap((subject) =>
  (["seq", "par64"] as const).map(
    (scenario): Target => ({
      label: `${scenario} cycles/s within 15% of raw (≥ ×0.85)`,
      subject,
      scenario,
      check: atLeastRatio(0.85),
    }),
  ),
);

/**
 * Issue 20's targets for the semaphore on Redis and PostgreSQL: at least twice the polling
 * baseline's sections/s, every worker served within 10% of the others, and an uncontended
 * slot taken and released within 15% of the raw baseline's.
 */
const SEMAPHORE_TARGETS: readonly Target[] = (["hasp-redis", "hasp-postgres"] as const).flatMap(
  (subject): Target[] => [
    {
      label: "semaphore-seq ≥ ×0.85 raw",
      subject,
      scenario: "semaphore-seq",
      check: atLeastRatio(0.85),
    },
    {
      label: "semaphore sections/s ≥ 2× raw polling",
      subject,
      scenario: "semaphore",
      check: atLeastRatio(2),
    },
    {
      label: "semaphore: every worker within 10% of the others (fewest ≥ 0.90 × most)",
      subject,
      scenario: "semaphore",
      check: (summary) => {
        const { fewest, most } = summary;
        return fewest === undefined || most === undefined || most === 0 || summary.status !== "ok"
          ? { measured: summary.statusText, pass: false }
          : {
              measured: `fewest ${fewest}, most ${most} sections/worker (×${(fewest / most).toFixed(2)})`,
              pass: fewest >= 0.9 * most,
            };
      },
    },
  ],
);

/** Issue 5's targets for the Redis adapter, issue 6's for SQL, issue 20's for the semaphore. */
export const TARGETS: readonly Target[] = [
  {
    label: "seq cycles/s within 10% of raw (≥ ×0.90)",
    subject: "hasp-redis",
    scenario: "seq",
    check: atLeastRatio(0.9),
  },
  {
    label: "par64 cycles/s within 10% of raw (≥ ×0.90)",
    subject: "hasp-redis",
    scenario: "par64",
    check: atLeastRatio(0.9),
  },
  {
    label: "contended8think sections/s ≥ 3× raw polling",
    subject: "hasp-redis",
    scenario: "contended8think",
    check: atLeastRatio(3),
  },
  {
    label: "contended8think hand-off p50 < 0.5 ms",
    subject: "hasp-redis",
    scenario: "contended8think",
    check: (summary) => {
      const p50 = summary.metrics.handoffP50Ms;
      return p50 === undefined || summary.status !== "ok"
        ? { measured: summary.statusText, pass: false }
        : {
            measured: `${formatMs(p50.median)} ms (worst round ${formatMs(p50.max)} ms)`,
            pass: p50.median < 0.5,
          };
    },
  },
  {
    label: "contended8think every worker served, no violation",
    subject: "hasp-redis",
    scenario: "contended8think",
    check: (summary) => ({
      measured: `fewest ${summary.fewest ?? "–"} sections/worker, ${summary.statusText}`,
      pass: summary.status === "ok" && (summary.fewest ?? 0) > 0,
    }),
  },
  ...SQL_TARGETS,
  ...SEMAPHORE_TARGETS,
];

export type TargetResult = { label: string; subject: string; measured: string; pass: boolean };

export function checkTargets(summaries: readonly SubjectSummary[]): TargetResult[] {
  return TARGETS.flatMap((target) => {
    const summary = summaries.find(
      (candidate) => candidate.subject === target.subject && candidate.scenario === target.scenario,
    );
    return summary === undefined
      ? []
      : [{ label: target.label, subject: target.subject, ...target.check(summary) }];
  });
}

export function renderTargets(results: readonly TargetResult[], sharedClient: boolean): string {
  if (results.length === 0) {
    return "";
  }
  const topology = sharedClient ? "one client shared by the workers" : "one client per worker";
  const rows = results.map((result) => [
    result.subject,
    result.label,
    result.measured,
    result.pass ? "PASS" : "MISS",
  ]);
  return `targets (issue 5: Redis, issue 6: SQL, issue 20: semaphore; contended: ${topology})\n${renderTable(["subject", "target", "measured", "result"], rows, [1, 2])}`;
}
