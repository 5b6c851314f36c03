/**
 * The judge of every multi-process run (the demo, the cross-process tests, the torture suite):
 * reads the critical sections the workers logged and says whether any two holds of one key
 * overlapped, whether fencing tokens ever went backwards, and whether the guarded resource
 * accepted what it should and refused what it should (and so lost no update).
 *
 * Times are milliseconds of one monotonic clock shared by every process of the run
 * (`process.hrtime.bigint()` minus an epoch the parent hands out).
 *
 * What a worker sees of a hold, and why the checks below are sound (they report only what
 * really happened): the backend grants a hold at some instant `g` between the moment the
 * request that got it left the worker (`requested`) and the moment the answer came back
 * (`granted`), and the hold lasts until the release, or its TTL counted from `g` or from its
 * last refresh, whichever comes first. The section `[start, end]` lies after `granted` and
 * before the release was sent. So until `max(requested, refreshed) + TTL` the hold surely had
 * not run out, and the part of the section before that instant lies inside the real hold: two
 * such parts that overlap are two real holds at once. A superset such as `[requested,
 * release answered]` would not do: those of two holds one after the other overlap.
 */

/**
 * One critical section, as a worker appends it to the log. Only the key, the token, the worker
 * and the two instants are needed; the rest says more about the hold, for a sharper check.
 */
export type SectionRecord = {
  /** The lock key as the worker wrote it (without the namespace). */
  key: string;
  /** The fencing token the lock gave this hold. */
  token: number;
  /** Who ran it: a worker's index or name. */
  worker: number | string;
  /** The first and last instants inside the section (the guarded write lies between them). */
  start: number;
  end: number;
  pid?: number;
  /** The hold's TTL in ms; absent: the hold is taken to last the whole section. */
  ttl?: number;
  /**
   * When the request that was granted left the worker: the acquire, or the wait (`waitForRelease`)
   * that took the key or was handed it at a release. The hold began after it. Absent: `start`.
   */
  requested?: number;
  /** When the worker learned that it held the key: the grant's answer came back. */
  granted?: number;
  /** How the hold was granted: by an acquire, or by a wait (taken at once, or handed over). */
  via?: "acquire" | "wait";
  /** When the last refresh of the hold that succeeded before `end` was sent; null: none. */
  refreshed?: number | null;
  /** Whether the guarded resource accepted the section's write (its token was not stale). Absent: it did. */
  accepted?: boolean;
  /** The parent stopped this worker (SIGSTOP) inside this section, for longer than its TTL. */
  stalled?: boolean;
  /** The lock told the section its hold was lost (a refresh failed) before it wrote. */
  lost?: boolean;
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
  /** @default none */
  outages?: readonly Outage[];
  /** @default none */
  stalls?: readonly StallRecord[];
  /** The resource per key; absent: not checked. */
  resource?: ReadonlyMap<string, ResourceState>;
  /**
   * How many holds of one key may run at once: 1 for a lock, a semaphore's limit.
   * @default 1
   */
  limit?: number;
};

/** A violation, with the sections it concerns, for callers that word it their own way. */
export type Finding =
  | { kind: "overlap"; key: string; first: SectionRecord; second: SectionRecord }
  /** More than `limit` holds of one key at once (a semaphore's): `sections` were all held. */
  | { kind: "crowd"; key: string; limit: number; sections: readonly SectionRecord[] }
  | { kind: "token"; key: string; section: SectionRecord; earlier: SectionRecord }
  | { kind: "guard"; text: string };

export type CheckResult = {
  /** Every finding, in words (see `describeSection`). */
  violations: string[];
  findings: Finding[];
  sections: number;
  accepted: number;
  /** Sections of stalled holders whose late write the guard refused. */
  staleRejected: number;
  /** Sections held to mutual exclusion and to the guard, from start to end. */
  checked: number;
  /**
   * Sections held to mutual exclusion only up to the instant their hold may have run out (the
   * TTL from when it was requested or last refreshed), which came before their end; their
   * write is not held to the guard.
   */
  checkedInPart: number;
  /**
   * Sections that could not be checked at all: their hold may have run out before they began
   * (a wait that ended long after the key was handed to it, a process stalled).
   */
  unchecked: number;
  /** Sections excused by an injected fault: the worker was stopped, or the Redis that granted it was killed. */
  excused: { stalled: number; outage: number };
  /**
   * Pairs of sections of one key that overlapped in time, not a violation: one of them excused
   * or unchecked, or the overlap after the instant one's hold may have run out.
   */
  excusedOverlaps: number;
  /** How many times a key passed from one process to another. */
  handoffs: number;
  /** Sections whose hold a wait granted (taken at once, or handed over at a release). */
  grantedByWait: number;
  /** The longest time a key went unheld between two sections, and when it began. */
  longestIdle: { key: string; ms: number; from: number } | null;
};

/**
 * Part of the TTL left out of the time a hold surely lasts, for the backend's clock and rounding
 * (the server counts the TTL in milliseconds from an instant the worker only bounds).
 */
const TTL_MARGIN = 0.9;

type Excuse = keyof CheckResult["excused"];
/** Per section: its excuse, and the end of the part held to mutual exclusion (null: none). */
type Judged = { excuse: Excuse | null; to: number | null };

/** A section in the checker's words. */
export function describeSection(s: SectionRecord): string {
  const pid = s.pid === undefined ? "" : ` (pid ${s.pid})`;
  return `worker ${s.worker}${pid} token ${s.token} [${s.start.toFixed(3)}, ${s.end.toFixed(3)}] ms${s.accepted === false ? " (write refused)" : ""}`;
}

/** A finding in the checker's words. */
export function describeFinding(finding: Finding): string {
  switch (finding.kind) {
    case "overlap":
      return `key ${finding.key}: two holds at once: ${describeSection(finding.first)} and ${describeSection(finding.second)}`;
    case "token":
      return `key ${finding.key}: token not increasing: ${describeSection(finding.section)} was requested after ${describeSection(finding.earlier)} ended`;
    case "crowd":
      return `key ${finding.key}: ${finding.sections.length} holds at once, limit ${finding.limit}: ${finding.sections.map(describeSection).join("; ")}`;
    case "guard":
      return finding.text;
  }
}

/**
 * Checks every key's sections, in the order they started:
 *
 * - **Mutual exclusion**: no two sections of one key overlap in time (with a `limit`, no more
 *   than `limit` of them: a semaphore's), each taken up to the
 *   instant its hold may have run out (see the file's header), unless one is excused by an
 *   injected fault: its worker was stopped past its TTL (stalled), or the Redis that granted it
 *   was killed while it ran (it was requested before the old server was gone, and ended after
 *   the kill). A section whose hold may have run out before it began is not checked, and
 *   counted as such (`unchecked`): nothing is excused silently.
 * - **Fencing**: a section requested after another one ended carries a greater token (its hold
 *   was granted after the other's), with no excuse: tokens survive stalls and restarts.
 * - **The guard**: a section whose hold was surely intact to its end had its write accepted; a
 *   stalled section's late write was refused; the resource counted exactly the accepted writes
 *   (no lost update) and holds the greatest accepted token.
 */
export function checkSections(
  records: readonly SectionRecord[],
  settings: CheckSettings = {},
): CheckResult {
  const check = new SectionCheck(settings.outages ?? [], settings.limit ?? 1);
  const byKey = groupByKey(records);
  for (const [key, list] of byKey) {
    check.key(key, list);
  }
  const staleRejected = check.stalls(records, settings.stalls ?? []);
  if (settings.resource !== undefined) {
    check.resource(byKey, settings.resource);
  }
  const { findings, counts } = check;
  return {
    violations: findings.map(describeFinding),
    findings,
    sections: records.length,
    accepted: records.filter((record) => record.accepted !== false).length,
    staleRejected,
    ...counts,
    excused: check.excused,
    grantedByWait: records.filter((record) => record.via === "wait").length,
  };
}

function groupByKey(records: readonly SectionRecord[]): Map<string, SectionRecord[]> {
  const byKey = new Map<string, SectionRecord[]>();
  for (const record of records) {
    const list = byKey.get(record.key) ?? [];
    list.push(record);
    byKey.set(record.key, list);
  }
  for (const list of byKey.values()) {
    list.sort((a, b) => a.start - b.start || a.end - b.end);
  }
  return byKey;
}

/** What `checkSections` gathers as it goes. */
class SectionCheck {
  readonly findings: Finding[] = [];
  readonly excused = { stalled: 0, outage: 0 };
  readonly counts = {
    checked: 0,
    checkedInPart: 0,
    unchecked: 0,
    excusedOverlaps: 0,
    handoffs: 0,
    longestIdle: null as CheckResult["longestIdle"],
  };

  constructor(
    readonly outages: readonly Outage[],
    readonly limit: number,
  ) {}

  /** One key's sections, sorted by start. */
  key(key: string, list: readonly SectionRecord[]): void {
    const judged = new Map(list.map((section) => [section, this.#judge(section)] as const));
    const greatestEndedBefore = endedBefore(list);
    // Sections that have not ended by the current one's start.
    let open: SectionRecord[] = [];
    let previous: SectionRecord | undefined;
    let lastEnd = Number.POSITIVE_INFINITY;
    for (const section of list) {
      const idle = section.start - lastEnd;
      if (idle > (this.counts.longestIdle?.ms ?? 0)) {
        this.counts.longestIdle = { key, ms: idle, from: lastEnd };
      }
      lastEnd = Number.isFinite(lastEnd) ? Math.max(lastEnd, section.end) : section.end;
      open = open.filter((other) => other.end >= section.start);

      // Granted after every hold whose section ended before this one's request left.
      const greatest = greatestEndedBefore(section.requested ?? section.start);
      if (greatest !== undefined && section.token <= greatest.token) {
        this.findings.push({ kind: "token", key, section, earlier: greatest });
      }
      const mine = judged.get(section) as Judged;
      const held = open.filter((other) =>
        this.#overlap(section, judged.get(other) as Judged, mine),
      );
      this.#crowd(key, held, section);
      // Holders of a semaphore write with tokens out of order: the guard refuses some of them.
      if (
        this.limit === 1 &&
        section.accepted === false &&
        mine.excuse === null &&
        mine.to === section.end
      ) {
        this.#guard(
          `key ${key}: the guard refused the write of an intact hold: ${describeSection(section)}`,
        );
      }
      if (
        previous !== undefined &&
        (previous.pid ?? previous.worker) !== (section.pid ?? section.worker)
      ) {
        this.counts.handoffs += 1;
      }
      previous = section;
      open.push(section);
    }
  }

  /** Every stalled hold logged its section, and the guard refused its late write. */
  stalls(records: readonly SectionRecord[], stalls: readonly StallRecord[]): number {
    let staleRejected = 0;
    for (const stall of stalls) {
      const section = records.find(
        (record) => record.stalled && record.key === stall.key && record.token === stall.token,
      );
      if (section === undefined) {
        this.#guard(`the stalled hold of key ${stall.key} (token ${stall.token}) logged nothing`);
      } else if (section.accepted !== false) {
        this.#guard(
          `the guard accepted the late write of a stalled holder: ${describeSection(section)}`,
        );
      } else {
        staleRejected += 1;
      }
    }
    return staleRejected;
  }

  /** The resource counted exactly the accepted writes and holds the greatest accepted token. */
  resource(
    byKey: ReadonlyMap<string, readonly SectionRecord[]>,
    resource: ReadonlyMap<string, ResourceState>,
  ): void {
    for (const [key, list] of byKey) {
      const accepted = list.filter((section) => section.accepted !== false);
      const state = resource.get(key) ?? { token: 0, writes: 0 };
      const greatest = Math.max(0, ...accepted.map((section) => section.token));
      if (state.writes !== accepted.length || state.token !== greatest) {
        this.#guard(
          `key ${key}: the resource counted ${state.writes} writes up to token ${state.token}, the log ${accepted.length} up to ${greatest}`,
        );
      }
    }
  }

  #judge(section: SectionRecord): Judged {
    const excuse = this.#excuseOf(section);
    const heldUntil = surelyHeldUntil(section);
    const to = heldUntil < section.start ? null : Math.min(section.end, heldUntil);
    if (excuse !== null) {
      this.excused[excuse] += 1;
    } else if (to === null) {
      this.counts.unchecked += 1;
    } else if (to < section.end) {
      this.counts.checkedInPart += 1;
    } else {
      this.counts.checked += 1;
    }
    return { excuse, to };
  }

  #excuseOf(section: SectionRecord): Excuse | null {
    if (section.stalled) {
      return "stalled";
    }
    const requested = section.requested ?? section.start;
    if (this.outages.some((o) => requested < o.dead && section.end > o.from)) {
      return "outage";
    }
    return null;
  }

  /**
   * Whether the section judged `theirs` surely still held as `second` (judged `mine`) began (both
   * checked, neither excused); an overlap that is not sure is counted as excused.
   */
  #overlap(second: SectionRecord, theirs: Judged, mine: Judged): boolean {
    const bothChecked =
      mine.excuse === null && theirs.excuse === null && mine.to !== null && theirs.to !== null;
    if (bothChecked && theirs.to !== null && theirs.to >= second.start) {
      return true;
    }
    this.counts.excusedOverlaps += 1;
    return false;
  }

  /** `section` began while `held` surely held: more than the limit at once is a violation. */
  #crowd(key: string, held: readonly SectionRecord[], section: SectionRecord): void {
    if (held.length < this.limit) {
      return;
    }
    if (this.limit === 1) {
      for (const first of held) {
        this.findings.push({ kind: "overlap", key, first, second: section });
      }
    } else {
      this.findings.push({ kind: "crowd", key, limit: this.limit, sections: [...held, section] });
    }
  }

  #guard(text: string): void {
    this.findings.push({ kind: "guard", text });
  }
}

/** Until when the hold surely lasted (short of a release or an injected fault). */
function surelyHeldUntil(section: SectionRecord): number {
  if (section.ttl === undefined) {
    return Number.POSITIVE_INFINITY;
  }
  const from = Math.max(
    section.requested ?? section.start,
    section.refreshed ?? Number.NEGATIVE_INFINITY,
  );
  return from + section.ttl * TTL_MARGIN;
}
/**
 * For sections of one key: a function giving, of those that ended before an instant, the one
 * with the greatest token (undefined: none).
 */
function endedBefore(
  sections: readonly SectionRecord[],
): (instant: number) => SectionRecord | undefined {
  const byEnd = [...sections].sort((a, b) => a.end - b.end);
  const greatest: SectionRecord[] = [];
  for (const section of byEnd) {
    const last = greatest.at(-1);
    greatest.push(last === undefined || section.token > last.token ? section : last);
  }
  return (instant) => {
    // The number of sections that ended before `instant` (binary search on the ends).
    let low = 0;
    let high = byEnd.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if ((byEnd[middle] as SectionRecord).end < instant) {
        low = middle + 1;
      } else {
        high = middle;
      }
    }
    return low === 0 ? undefined : greatest[low - 1];
  };
}
