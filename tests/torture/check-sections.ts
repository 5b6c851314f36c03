/**
 * The torture suite's judge: reads the critical sections the workers logged and says whether
 * any two holds of one key overlapped, whether fencing tokens ever went backwards, and whether
 * the guarded resource accepted what it should and refused what it should.
 *
 * Times are milliseconds of one monotonic clock shared by every process of the run
 * (`process.hrtime.bigint()` minus an epoch the parent hands out).
 */

/** One critical section, as a worker appends it to the log. */
export type SectionRecord = {
  /** The lock key as the worker wrote it (without the namespace). */
  key: string;
  /** The fencing token the lock gave this hold. */
  token: number;
  /** When the acquire request that was granted left the worker: the hold began after it. */
  requested: number;
  /** The first and last instants inside the section (the guarded write lies between them). */
  start: number;
  end: number;
  pid: number;
  /** The worker's index in the run. */
  worker: number;
  /** Whether the guarded resource accepted the section's write (its token was not stale). */
  accepted: boolean;
  /** The parent stopped this worker (SIGSTOP) inside this section, for longer than its TTL. */
  stalled: boolean;
  /** The lock told the section its hold was lost (a refresh failed) before it wrote. */
  lost: boolean;
};

/**
 * A restart of the lock backend, which forgets every hold it granted (Redis without
 * persistence): `from` just before the kill, `dead` once the old server is surely gone, `back`
 * once the new one answers. A hold requested after `dead` was granted by the new server.
 */
export type Outage = { from: number; dead: number; back: number };

/** What the guarded resource holds at the end, per key. */
export type ResourceState = { token: number; writes: number };

/** A stall the parent injected: the worker held `key` with `token` while stopped. */
export type StallRecord = { key: string; token: number };

export type CheckSettings = {
  /** The TTL of ordinary holds: a section that outlasted most of it may have lost its hold. */
  ttlMs: number;
  outages: readonly Outage[];
  stalls: readonly StallRecord[];
  /** The resource per key; absent: not checked. */
  resource?: ReadonlyMap<string, ResourceState>;
};

export type CheckResult = {
  violations: string[];
  sections: number;
  accepted: number;
  /** Sections of stalled holders whose late write the guard refused. */
  staleRejected: number;
  /** Sections the checker did not hold to mutual exclusion, and why. */
  excused: { stalled: number; outage: number; slow: number };
  /** Pairs of sections of one key that overlapped in time, with an excuse (see `excused`). */
  excusedOverlaps: number;
  /** How many times a key passed from one process to another. */
  handoffs: number;
  /** The longest time a key went unheld between two sections, and when it began. */
  longestIdle: { key: string; ms: number; from: number } | null;
};

/**
 * Checks every key's sections, in the order they started:
 *
 * - **Mutual exclusion**: no two sections of one key overlap in time, unless one of them is
 *   excused: its worker was stopped past its TTL (stalled), the Redis that granted it was
 *   killed while it ran (it was requested before the old server was gone, and ended after the
 *   kill), or
 *   it outlasted 90 % of the TTL (the process itself stalled: the hold may have run out, which
 *   is the TTL working, not failing).
 * - **Fencing**: a section that began after another one ended carries a greater token, with no
 *   excuse (tokens survive stalls and restarts).
 * - **The guard**: a section whose hold was intact (not excused) had its write accepted; a
 *   stalled section's late write was refused; the resource counted exactly the accepted writes
 *   and holds the greatest accepted token.
 */
export function checkSections(
  records: readonly SectionRecord[],
  settings: CheckSettings,
): CheckResult {
  const violations: string[] = [];
  const excused = { stalled: 0, outage: 0, slow: 0 };
  let excusedOverlaps = 0;
  let handoffs = 0;
  let longestIdle: CheckResult["longestIdle"] = null;

  const excuseOf = (section: SectionRecord): keyof typeof excused | null => {
    if (section.stalled) {
      return "stalled";
    }
    if (settings.outages.some((o) => section.requested < o.dead && section.end > o.from)) {
      return "outage";
    }
    if (section.end - section.requested >= settings.ttlMs * 0.9) {
      return "slow";
    }
    return null;
  };
  const describe = (s: SectionRecord) =>
    `worker ${s.worker} (pid ${s.pid}) token ${s.token} [${s.start.toFixed(3)}, ${s.end.toFixed(3)}] ms${s.accepted ? "" : " (write refused)"}`;

  const byKey = new Map<string, SectionRecord[]>();
  for (const record of records) {
    const list = byKey.get(record.key) ?? [];
    list.push(record);
    byKey.set(record.key, list);
  }

  for (const [key, list] of byKey) {
    list.sort((a, b) => a.start - b.start || a.end - b.end);
    const excuses = new Map(list.map((section) => [section, excuseOf(section)]));
    for (const excuse of excuses.values()) {
      if (excuse !== null) {
        excused[excuse] += 1;
      }
    }
    // Sections that have not ended by the current one's start, and the greatest token of
    // those that have.
    let open: SectionRecord[] = [];
    let ended: SectionRecord | undefined;
    let previous: SectionRecord | undefined;
    let lastEnd = Number.POSITIVE_INFINITY;
    for (const section of list) {
      const idle = section.start - lastEnd;
      if (idle > (longestIdle?.ms ?? 0)) {
        longestIdle = { key, ms: idle, from: lastEnd };
      }
      lastEnd = Number.isFinite(lastEnd) ? Math.max(lastEnd, section.end) : section.end;
      const stillOpen: SectionRecord[] = [];
      for (const other of open) {
        if (other.end < section.start) {
          if (ended === undefined || other.token > ended.token) {
            ended = other;
          }
        } else {
          stillOpen.push(other);
        }
      }
      open = stillOpen;

      if (ended !== undefined && section.token <= ended.token) {
        violations.push(
          `key ${key}: token not increasing: ${describe(section)} began after ${describe(ended)} ended`,
        );
      }
      for (const other of open) {
        if (excuses.get(other) === null && excuses.get(section) === null) {
          violations.push(
            `key ${key}: two holds at once: ${describe(other)} and ${describe(section)}`,
          );
        } else {
          excusedOverlaps += 1;
        }
      }
      if (!section.accepted && excuses.get(section) === null) {
        violations.push(
          `key ${key}: the guard refused the write of an intact hold: ${describe(section)}`,
        );
      }
      if (previous !== undefined && previous.pid !== section.pid) {
        handoffs += 1;
      }
      previous = section;
      open.push(section);
    }
  }

  let staleRejected = 0;
  for (const stall of settings.stalls) {
    const section = records.find(
      (record) => record.stalled && record.key === stall.key && record.token === stall.token,
    );
    if (section === undefined) {
      violations.push(`the stalled hold of key ${stall.key} (token ${stall.token}) logged nothing`);
    } else if (section.accepted) {
      violations.push(
        `the guard accepted the late write of a stalled holder: ${describe(section)}`,
      );
    } else {
      staleRejected += 1;
    }
  }

  if (settings.resource !== undefined) {
    for (const [key, list] of byKey) {
      const accepted = list.filter((section) => section.accepted);
      const state = settings.resource.get(key) ?? { token: 0, writes: 0 };
      const greatest = Math.max(0, ...accepted.map((section) => section.token));
      if (state.writes !== accepted.length || state.token !== greatest) {
        violations.push(
          `key ${key}: the resource counted ${state.writes} writes up to token ${state.token}, the log ${accepted.length} up to ${greatest}`,
        );
      }
    }
  }

  return {
    violations,
    sections: records.length,
    accepted: records.filter((record) => record.accepted).length,
    staleRejected,
    excused,
    excusedOverlaps,
    handoffs,
    longestIdle,
  };
}
