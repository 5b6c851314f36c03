// The short torture run of CI (the long one: `npm run torture`, see tests/torture/run.ts): per
// backend, 6 processes contend for 3 keys for 5 s while faults are injected, and the checker
// must find no overlapping holds, no token going backwards, and the stopped holder's late write
// refused. Before them, the checker itself is shown to catch each kind of violation, on made-up
// logs and on a real run with a lock that excludes nobody.
import { afterAll, describe, expect, test } from "vitest";
import { describeWithBackend, uniqueName } from "../harness/backends.js";
import { checkSections, type SectionRecord } from "./check-sections.js";
import { formatReport } from "./format-report.js";
import { defaultFaults, runTorture, type TortureReport } from "./torture.js";
import type { TortureBackend } from "./torture-protocol.js";

const WORKERS = 6;
const KEYS = 3;
const DURATION_MS = 5_000;
/** Starting 6 tsx processes on a busy 2-core machine alone can take many seconds. */
const TIMEOUT_MS = 180_000;

const reports: TortureReport[] = [];

async function torture(backend: TortureBackend, url?: string): Promise<TortureReport> {
  const faults = defaultFaults(backend, DURATION_MS);
  const report = await runTorture({
    backend,
    ...(url === undefined ? {} : { url }),
    name: uniqueName(`torture ${backend}`),
    workers: WORKERS,
    keys: KEYS,
    durationMs: DURATION_MS,
    faults,
  });
  reports.push(report);
  console.log(formatReport(report).join("\n"));

  expect(report.problems).toEqual([]);
  expect(report.check.violations).toEqual([]);
  expect(report.workers.map((worker) => worker.exit)).toEqual(report.workers.map(() => 0));
  // Every fault was really injected, and the stopped holder's late write was refused.
  expect(report.faults.stalls.length).toBe(faults.stalls);
  expect(report.check.staleRejected).toBe(faults.stalls);
  expect(report.faults.clockShifts.map((shift) => shift.worker)).toEqual([2, 3]);
  if (faults.delayMs > 0) {
    expect(report.faults.delay?.connections).toBeGreaterThan(0);
    expect(report.faults.proxyCuts.length).toBeGreaterThan(0);
  }
  return report;
}

afterAll(() => {
  if (reports.length === 0) {
    return;
  }
  const total = (pick: (report: TortureReport) => number) =>
    reports.reduce((sum, report) => sum + pick(report), 0);
  console.log(
    `[torture] ${reports.map((r) => r.backend).join(", ")}: ${total((r) => r.workers.length)} processes, ${total((r) => r.check.sections)} critical sections, ${total((r) => r.faults.redisRestarts.length + r.faults.pgTerminations.length + r.faults.stalls.length + r.faults.clockShifts.length + (r.faults.delay === null ? 0 : 1) + r.faults.proxyCuts.length)} faults injected, ${total((r) => r.check.staleRejected)} stale writes rejected, violations found: ${total((r) => r.check.violations.length)}`,
  );
});

describe("the checker", () => {
  let clock = 0;
  /** A section of key "k" by worker `worker`, `length` ms long, starting `gap` ms after the last. */
  const section = (
    token: number,
    fields: Partial<SectionRecord> & { gap?: number; length?: number } = {},
  ): SectionRecord => {
    const { gap = 1, length = 2, ...rest } = fields;
    clock += gap;
    const start = clock;
    clock += length;
    return {
      key: "k",
      token,
      requested: start - 0.5,
      start,
      end: start + length,
      pid: 100 + (rest.worker ?? 0),
      worker: 0,
      accepted: true,
      stalled: false,
      lost: false,
      ...rest,
    };
  };
  const check = (records: SectionRecord[], stalls: Array<{ key: string; token: number }> = []) =>
    checkSections(records, { ttlMs: 3_000, outages: [], stalls });

  test("holds one after another with growing tokens pass", () => {
    const result = check([section(1), section(2, { worker: 1 }), section(5, { worker: 2 })]);
    expect(result.violations).toEqual([]);
    expect(result).toMatchObject({ sections: 3, accepted: 3, handoffs: 2 });
  });

  test("two holds of one key at once are a violation, on two keys they are not", () => {
    const first = section(1);
    const second = { ...section(2, { worker: 1 }), start: first.end - 1 };
    expect(check([first, second]).violations).toEqual([
      expect.stringContaining("key k: two holds at once: worker 0"),
    ]);
    expect(check([first, { ...second, key: "other" }]).violations).toEqual([]);
  });

  test("a token not above one of an earlier hold is a violation", () => {
    const records = [section(5), section(7, { worker: 1 }), section(6, { worker: 2 })];
    expect(check(records).violations).toEqual([
      expect.stringContaining("key k: token not increasing: worker 2 (pid 102) token 6"),
    ]);
  });

  test("the guard refusing an intact hold is a violation", () => {
    const records = [section(1), section(2, { accepted: false })];
    expect(check(records).violations).toEqual([
      expect.stringContaining("the guard refused the write of an intact hold"),
    ]);
  });

  test("a stalled holder overlapping the next one passes when its late write was refused, and is a violation when accepted", () => {
    const stalled = section(1, { stalled: true, length: 1_500, accepted: false });
    const next = { ...section(2, { worker: 1 }), start: stalled.start + 600 };
    next.end = next.start + 2;
    const after = section(3, { worker: 2 });
    const passed = check([stalled, next, after], [{ key: "k", token: 1 }]);
    expect(passed.violations).toEqual([]);
    expect(passed).toMatchObject({ staleRejected: 1, excusedOverlaps: 1 });
    expect(passed.excused.stalled).toBe(1);

    const failed = check([{ ...stalled, accepted: true }, next, after], [{ key: "k", token: 1 }]);
    expect(failed.violations).toEqual([
      expect.stringContaining("the guard accepted the late write of a stalled holder"),
    ]);
  });

  test("a hold granted by a Redis killed while it ran may overlap the next one; two holds granted after the kill may not", () => {
    const cut = section(1, { length: 50 });
    const next = { ...section(2, { worker: 1 }), requested: cut.start + 16, start: cut.start + 20 };
    next.end = next.start + 2;
    const outages = [{ from: cut.start + 5, dead: cut.start + 6, back: cut.start + 15 }];
    const result = checkSections([cut, next], { ttlMs: 3_000, outages, stalls: [] });
    expect(result.violations).toEqual([]);
    expect(result.excused.outage).toBe(1);

    const later = { ...next, worker: 2, pid: 102, token: 3, requested: next.start - 1 };
    const failed = checkSections([cut, next, later], { ttlMs: 3_000, outages, stalls: [] });
    expect(failed.violations).toEqual([expect.stringContaining("two holds at once: worker 1")]);
  });

  test("a resource that disagrees with the log is a violation", () => {
    const records = [section(1), section(2)];
    const resource = new Map([["k", { token: 2, writes: 3 }]]);
    const result = checkSections(records, { ttlMs: 3_000, outages: [], stalls: [], resource });
    expect(result.violations).toEqual([
      "key k: the resource counted 3 writes up to token 2, the log 2 up to 2",
    ]);
  });

  test(
    "on a real run whose lock excludes nobody (NoOpLockAdapter), it finds overlapping holds, tokens going backwards and refused writes",
    async () => {
      const report = await runTorture({
        backend: "sqlite",
        name: uniqueName("torture control"),
        workers: 4,
        keys: 2,
        durationMs: 1_500,
        faults: {
          redisRestarts: 0,
          pgTerminations: 0,
          stalls: 0,
          clockShiftMs: 0,
          delayMs: 0,
          proxyCuts: 0,
        },
        noOpLock: true,
      });
      const kinds = new Set(
        report.check.violations.map(
          (violation) =>
            /two holds at once|token not increasing|the guard refused/.exec(violation)?.[0],
        ),
      );
      console.log(
        `[torture control] no-op lock: ${report.check.sections} sections, ${report.check.violations.length} violations found`,
      );
      expect(kinds).toEqual(
        new Set(["two holds at once", "token not increasing", "the guard refused"]),
      );
      expect(report.problems).toEqual([]);
    },
    TIMEOUT_MS,
  );
});

const title = `${WORKERS} processes x ${KEYS} keys for ${DURATION_MS / 1000} s under faults: no overlapping holds, tokens growing in hold order, the stopped holder's late write refused`;

describeWithBackend("redis", (url) => {
  test(
    `${title} (lock server killed and restarted)`,
    async () => {
      const report = await torture("redis", url);
      expect(report.faults.redisRestarts.length).toBeGreaterThan(0);
    },
    TIMEOUT_MS,
  );
});

describeWithBackend("postgres", (url) => {
  test(
    `${title} (lock connections terminated)`,
    async () => {
      const report = await torture("postgres", url);
      expect(report.faults.pgTerminations.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    },
    TIMEOUT_MS,
  );
});

describeWithBackend("mysql", (url) => {
  test(`${title} (MariaDB)`, () => torture("mysql", url), TIMEOUT_MS);
});

describe("sqlite", () => {
  test(`${title} (one file)`, () => torture("sqlite"), TIMEOUT_MS);
});
