// The cost columns of the table (client CPU and server time or work per cycle, beside
// throughput) and the Redis table of each operation's commands and server time.

import { renderTable } from "./render-table.js";
import type { MetricSummary, RunRecord, SubjectSummary } from "./report.js";
import type { ServerCost } from "./server-cpu.js";
import { median } from "./stats.js";
import type { Measurement, SplitPhase } from "./types.js";

/** The measurement fields summarized like throughput: median, min–max, ratio to raw. */
export const COST_METRICS = ["clientCpuUsPerCycle", "serverPerCycle"] as const;

/** Where a summary's server figure comes from, and why it may be off (from its rounds). */
export type ServerSummary = {
  source: ServerCost["source"];
  unit: ServerCost["unit"];
  notes: string[];
};

export function summarizeServer(measurements: readonly Measurement[]): ServerSummary | undefined {
  const costs = measurements.flatMap((m) => (m.serverCost === undefined ? [] : [m.serverCost]));
  const first = costs[0];
  if (first === undefined) {
    return undefined;
  }
  const notes = [...new Set(costs.flatMap((cost) => (cost.note === null ? [] : [cost.note])))];
  return { source: first.source, unit: first.unit, notes };
}

function figure(value: number): string {
  return value < 10 ? value.toFixed(2) : value < 1000 ? value.toFixed(1) : value.toFixed(0);
}

/** The headers of the cost columns of one backend's table (its server's unit). */
export function costHeaders(summaries: readonly SubjectSummary[], per: string): string[] {
  const server = summaries.find((summary) => summary.server !== undefined)?.server;
  const unit = server === undefined ? "" : ` ${server.unit}`;
  return [`client CPU µs/${per}`, "vs raw", `server${unit}/${per}`, "vs raw"];
}

/** The cost cells of one row; `cell`/`ratioCell`: the table's own formatting of a metric. */
export function costCells(
  summary: SubjectSummary,
  cell: (metric: MetricSummary | undefined, format: (value: number) => string) => string,
  ratioCell: (metric: MetricSummary | undefined) => string,
): string[] {
  const { clientCpuUsPerCycle: client, serverPerCycle: server } = summary.metrics;
  return [cell(client, figure), ratioCell(client), cell(server, figure), ratioCell(server)];
}

/** One line per server note, under the table. */
export function renderServerNotes(summaries: readonly SubjectSummary[]): string {
  const lines = summaries.flatMap((summary) =>
    (summary.server?.notes ?? []).map((note) => `  ${summary.subject}: ${note}`),
  );
  const source = summaries.find((summary) => summary.server !== undefined)?.server?.source;
  if (source === undefined) {
    return "";
  }
  const unit = {
    "redis commandstats":
      "server µs: Redis's own time in the commands the subject sent (INFO commandstats usec), not the network",
    pg_stat_statements:
      "server µs: execution time of the subject's statements (pg_stat_statements)",
    pg_stat_database:
      "server blks: buffer pages hit or read per cycle over the child's whole run, set-up and warm-up included (pg_stat_database of the whole database, flushed late: a lower bound; a work counter, not time)",
    "global status":
      "server rows: Handler_read_*, _write, _update, _delete per cycle (SHOW GLOBAL STATUS; a work counter, not time, of the whole server)",
  }[source];
  return [unit, ...lines].join("\n");
}

function listed(calls: Record<string, number>): string {
  const entries = Object.entries(calls);
  return entries.length === 0
    ? "–"
    : entries.map(([name, count]) => `${name} ×${count.toFixed(2)}`).join(", ");
}

/** Redis: per subject (raw and hasp) and operation, the commands sent and their server time. */
export function renderScriptSplit(records: readonly RunRecord[]): string {
  const phases = new Map<string, SplitPhase[]>();
  for (const record of records) {
    if (
      record.backend !== "redis" ||
      record.result.status !== "ok" ||
      !(record.subject.startsWith("raw-") || record.subject.startsWith("hasp-"))
    ) {
      continue;
    }
    for (const phase of record.result.measurement.scriptSplit?.phases ?? []) {
      const key = `${record.subject}\u0000${phase.operation}`;
      phases.set(key, [...(phases.get(key) ?? []), phase]);
    }
  }
  if (phases.size === 0) {
    return "";
  }
  const rows = [...phases].map(([key, list]) => {
    const [subject = "", operation = ""] = key.split("\u0000");
    const usec = median(list.flatMap((phase) => phase.usecPerOperation ?? []));
    const last = list[list.length - 1];
    const calls = Object.values(last?.sent ?? {}).reduce((sum, count) => sum + count, 0);
    return [
      subject,
      operation,
      listed(last?.sent ?? {}),
      usec === null ? "–" : figure(usec),
      usec === null || calls === 0 ? "–" : figure(usec / calls),
      listed(last?.nested ?? {}),
    ];
  });
  const operations = [...phases.values()][0]?.[0]?.operations ?? 0;
  const notes = [...phases].flatMap(([key, list]) =>
    list.flatMap((phase) =>
      phase.note === null ? [] : [`  ${key.replace("\u0000", " ")}: ${phase.note}`],
    ),
  );
  return [
    `redis · server time per operation (after the seq window: ${operations} acquires of fresh keys, then their releases; INFO commandstats; median over rounds)`,
    renderTable(
      [
        "subject",
        "operation",
        "sent per op",
        "server µs/op",
        "µs/call",
        "run inside the scripts, per op",
      ],
      rows,
      [1, 2],
    ),
    ...notes,
  ].join("\n");
}
