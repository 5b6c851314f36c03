// The short torture run of CI (the long one: `npm run torture`, see tests/torture/run.ts): per
// backend, 6 processes contend for 3 keys for 5 s while faults are injected, and the checker
// must find no overlapping holds, no token going backwards, and the stopped holder's late write
// refused. Before them, the checker itself is shown to catch each kind of violation, on made-up
// logs and on a real run with a lock that excludes nobody.
import { afterAll, describe, expect, test } from "vitest";
import { checkSections } from "../../examples/processes/check-sections.js";
import { describeWithBackend, uniqueName } from "../harness/backends.js";
import { formatReport } from "./format-report.js";
import { runTorture } from "./torture.js";
import { defaultFaults } from "./torture-faults.js";
import type { SectionRecord, TortureBackend } from "./torture-protocol.js";
import type { TortureReport } from "./torture-report.js";

const WORKERS = 6;
const KEYS = 3;
const DURATION_MS = 5_000;
/** Starting 6 tsx processes on a busy 2-core machine alone can take many seconds. */
const TIMEOUT_MS = 180_000;

const reports: TortureReport[] = [];

/** A semaphore run's limit: 6 workers on 2 keys of 2 slots still wait for each other. */
const SEMAPHORE_LIMIT = 2;
const SEMAPHORE_KEYS = 2;

/** One backend's run; with `limit`, on semaphores of that limit. */
async function torture(
  backend: TortureBackend,
  url?: string,
  limit?: number,
): Promise<TortureReport> {
  const faults = defaultFaults(backend, DURATION_MS);
  const report = await runTorture({
    backend,
    ...(url === undefined ? {} : { url }),
    name: uniqueName(`torture ${backend}${limit === undefined ? "" : " sem"}`),
    workers: WORKERS,
    keys: limit === undefined ? KEYS : SEMAPHORE_KEYS,
    durationMs: DURATION_MS,
    faults,
    ...(limit === undefined ? {} : { limit }),
  });
  reports.push(report);
  console.log(formatReport(report).join("\n"));

  expect(report.problems).toEqual([]);
  expect(report.check.violations).toEqual([]);
  // Every section was checked, unless the machine was too loaded to tell (then said above).
  if (!report.machine.loaded) {
    expect(report.check.unchecked + report.check.checkedInPart).toBe(0);
  }
  // The blocking path users run: waits that take the key or are handed it.
  if (backend === "redis" || backend === "postgres") {
    expect(report.check.grantedByWait).toBeGreaterThan(0);
  }
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
      ttl: 3_000,
      requested: start - 0.5,
      granted: start - 0.2,
      via: "acquire",
      refreshed: null,
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
    checkSections(records, { outages: [], stalls });

  test("holds one after another with growing tokens pass", () => {
    const result = check([section(1), section(2, { worker: 1 }), section(5, { worker: 2 })]);
    expect(result.violations).toEqual([]);
    expect(result).toMatchObject({ sections: 3, accepted: 3, handoffs: 2, checked: 3 });
    expect(result).toMatchObject({ checkedInPart: 0, unchecked: 0 });
  });

  test("a hold handed over after a long wait is checked from the wait's start: two holds at once within its TTL are a violation", () => {
    const first = section(1, { length: 20 });
    // Waited 2.5 s of its 3 s TTL for the hand-off: its hold surely lasted until 0.5 s after.
    const handedOver = section(2, { worker: 1, via: "wait" });
    handedOver.requested = handedOver.start - 2_500;
    const overlapping = { ...handedOver, start: first.end - 5, end: first.end + 5 };
    expect(check([first, overlapping]).violations).toEqual([
      expect.stringContaining("key k: two holds at once: worker 0"),
    ]);
    expect(check([first, overlapping])).toMatchObject({ checked: 2, unchecked: 0 });
  });

  test("a section whose hold may have run out before it began is counted as not checked, never passed silently", () => {
    const first = section(1, { length: 20 });
    // Its wait began 3.5 s before it learned it held the key: past its 3 s TTL.
    const late = { ...section(2, { worker: 1, via: "wait" }), start: first.end - 5 };
    late.requested = late.start - 3_500;
    late.end = late.start + 10;
    const result = check([first, late]);
    expect(result.violations).toEqual([]);
    expect(result).toMatchObject({
      checked: 1,
      checkedInPart: 0,
      unchecked: 1,
      excusedOverlaps: 1,
    });
  });

  test("a section that outlasts its TTL is checked up to the instant its hold may have run out, and a refresh moves that instant", () => {
    const slow = section(1, { length: 4_000 });
    slow.requested = slow.start - 10;
    // The hold surely lasted until 2.7 s after its request (90% of 3 s).
    const after = section(2, { worker: 1 });
    after.start = slow.requested + 2_800;
    after.end = after.start + 2;
    after.requested = after.start - 0.5;
    const within = {
      ...after,
      requested: slow.requested + 2_599,
      start: slow.requested + 2_600,
      end: slow.requested + 2_602,
    };
    expect(check([slow, after]).violations).toEqual([]);
    expect(check([slow, after])).toMatchObject({ checked: 1, checkedInPart: 1, unchecked: 0 });
    expect(check([slow, within]).violations).toEqual([
      expect.stringContaining("two holds at once"),
    ]);
    const refreshed = { ...slow, refreshed: slow.requested + 1_000 };
    expect(check([refreshed, after]).violations).toEqual([
      expect.stringContaining("two holds at once"),
    ]);
    // Its write is not held to the guard: the hold may have run out before it.
    expect(check([{ ...slow, accepted: false }]).violations).toEqual([]);
  });

  test("two holds of one key at once are a violation, on two keys they are not", () => {
    const first = section(1);
    const second = { ...section(2, { worker: 1 }), start: first.end - 1 };
    expect(check([first, second]).violations).toEqual([
      expect.stringContaining("key k: two holds at once: worker 0"),
    ]);
    expect(check([first, { ...second, key: "other" }]).violations).toEqual([]);
  });

  test("with a limit (a semaphore's), that many holds at once pass and one more is a violation, however they interleave", () => {
    const first = section(1, { length: 10 });
    const second = { ...section(2, { worker: 1, length: 10 }), start: first.start + 1 };
    const third = { ...section(3, { worker: 2, length: 10 }), start: first.start + 2 };
    const fourth = { ...section(4, { worker: 3, length: 10 }), start: first.start + 3 };
    const crowd = (records: SectionRecord[]) =>
      checkSections(records, { outages: [], stalls: [], limit: 3 }).violations;
    expect(crowd([first, second, third])).toEqual([]);
    expect(crowd([first, second, third, fourth])).toEqual([
      expect.stringContaining("key k: 4 holds at once, limit 3: worker 0"),
    ]);
    // The first has ended when the fourth begins: three at once again.
    expect(crowd([first, second, third, { ...fourth, start: first.end + 0.5 }])).toEqual([]);
    // A fourth whose hold may have run out before it began is not checked, and says so.
    const late = { ...fourth, ttl: 1, requested: fourth.start - 5 };
    const result = checkSections([first, second, third, late], { limit: 3 });
    expect(result).toMatchObject({ violations: [], unchecked: 1 });
  });

  test("a token not above one of an earlier hold is a violation", () => {
    const records = [section(5), section(7, { worker: 1 }), section(6, { worker: 2 })];
    expect(check(records).violations).toEqual([
      expect.stringContaining("key k: token not increasing: worker 2 (pid 102) token 6"),
    ]);
  });

  test("a hold requested before another ended may have been granted first: a smaller token is no violation", () => {
    const first = section(7, { length: 5 });
    // Granted before `first` (its section came later: its answer was slow), then expired.
    const earlier = section(6, { worker: 1, gap: 10 });
    earlier.requested = first.start - 1;
    expect(check([first, earlier]).violations).toEqual([]);
    expect(check([first, { ...earlier, requested: first.end + 1 }]).violations).toEqual([
      expect.stringContaining("token not increasing"),
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
    next.requested = next.start - 0.5;
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
    const result = checkSections([cut, next], { outages, stalls: [] });
    expect(result.violations).toEqual([]);
    expect(result.excused.outage).toBe(1);

    const later = { ...next, worker: 2, pid: 102, token: 3, requested: next.start - 1 };
    const failed = checkSections([cut, next, later], { outages, stalls: [] });
    expect(failed.violations).toEqual([expect.stringContaining("two holds at once: worker 1")]);
  });

  test("a resource that disagrees with the log is a violation", () => {
    const records = [section(1), section(2)];
    const resource = new Map([["k", { token: 2, writes: 3 }]]);
    const result = checkSections(records, { outages: [], stalls: [], resource });
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
  test(
    "on a real run whose semaphore admits everyone (NoOpSemaphoreAdapter), it finds more holds at once than the limit",
    async () => {
      const report = await runTorture({
        backend: "sqlite",
        name: uniqueName("torture sem control"),
        workers: 4,
        keys: 1,
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
        limit: SEMAPHORE_LIMIT,
      });
      console.log(
        `[torture control] no-op semaphore: ${report.check.sections} sections, ${report.check.violations.length} violations found`,
      );
      expect(report.check.violations).toContainEqual(
        expect.stringMatching(/holds at once, limit 2/),
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

const semaphoreTitle = `${WORKERS} processes x ${SEMAPHORE_KEYS} semaphores of limit ${SEMAPHORE_LIMIT} for ${DURATION_MS / 1000} s under the same faults: never more than ${SEMAPHORE_LIMIT} holds of a key at once, tokens growing in hold order`;

describeWithBackend("redis", (url) => {
  test(
    `${semaphoreTitle} (lock server killed and restarted)`,
    async () => {
      const report = await torture("redis", url, SEMAPHORE_LIMIT);
      expect(report.faults.redisRestarts.length).toBeGreaterThan(0);
    },
    TIMEOUT_MS,
  );
});

describeWithBackend("postgres", (url) => {
  test(
    `${semaphoreTitle} (connections terminated)`,
    () => torture("postgres", url, SEMAPHORE_LIMIT),
    TIMEOUT_MS,
  );
});

describeWithBackend("mysql", (url) => {
  test(`${semaphoreTitle} (MariaDB)`, () => torture("mysql", url, SEMAPHORE_LIMIT), TIMEOUT_MS);
});

describe("sqlite (semaphores)", () => {
  test(
    `${semaphoreTitle} (one file)`,
    () => torture("sqlite", undefined, SEMAPHORE_LIMIT),
    TIMEOUT_MS,
  );
});
