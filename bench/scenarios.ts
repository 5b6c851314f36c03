// The scenarios: what every subject is made to do. A scenario only sees the `LockClient`
// contract, so a new subject runs all of them unchanged. Every loop stops on time and on count.

import { setImmediate as nextMacrotask, setTimeout as sleep } from "node:timers/promises";
import { quantile } from "./stats.js";
import type {
  Counters,
  LockClient,
  Measurement,
  ScenarioName,
  SubjectEnvironment,
  SubjectFixture,
} from "./types.js";
import type { WindowCost } from "./window-cost.js";

export type ScenarioTiming = {
  readonly warmupMs: number;
  readonly windowMs: number;
  /** Contended: one client for all workers (one process) instead of one each (processes). */
  readonly sharedClient: boolean;
  /** Reads the client's and the server's cost at the window's edges, when given. */
  readonly cost?: WindowCost;
};

export type ScenarioDefinition = {
  readonly name: ScenarioName;
  readonly description: string;
  /** Whether the table shows hand-off, fairness and correctness columns. */
  readonly contended: boolean;
  /** The measured window of a full run and of `--quick`, ms. */
  readonly windowMs: { readonly full: number; readonly quick: number };
  /** Runs only the subjects with a semaphore (`SubjectDefinition.semaphore`, `runLimited`). */
  readonly semaphore?: boolean;
  run(
    fixture: SubjectFixture,
    env: SubjectEnvironment,
    timing: ScenarioTiming,
  ): Promise<Measurement>;
};

/** A scenario whose subject threw: the error, and what was measured until every worker stopped. */
export class ScenarioFailure extends Error {
  override name = "ScenarioFailure" as const;
  constructor(
    readonly reason: unknown,
    readonly measurement: Measurement,
  ) {
    super("a worker failed", { cause: reason });
  }
}

/** No phase runs more cycles than this, whatever the time left. */
const MAX_CYCLES = 2_000_000;
const PARALLEL_LOOPS = 64;
const CONTENDERS = 8;
const THINK_MS = 2;
/** The semaphore scenario: workers, slots, and ms inside and outside a slot. */
const SEMAPHORE = { workers: 16, limit: 4, insideMs: 2, outsideMs: 2 } as const;

type Snapshot = { readonly attempts: number; readonly commands: number };

function snapshot(counters: Counters): Snapshot {
  return { attempts: counters.attempts, commands: counters.commands };
}

function perCycle(
  before: Snapshot,
  after: Snapshot,
  cycles: number,
): Pick<Measurement, "attemptsPerCycle" | "commandsPerCycle"> {
  const counted = before.commands >= 0 && after.commands >= 0;
  return {
    attemptsPerCycle: cycles === 0 ? 0 : (after.attempts - before.attempts) / cycles,
    commandsPerCycle: !counted || cycles === 0 ? null : (after.commands - before.commands) / cycles,
  };
}

/** One acquire+release of `client` on the fresh key `key` (it must be free). */
type Cycle = (client: LockClient, key: string) => Promise<void>;

const lockCycle: Cycle = async (client, key) => {
  const held = await client.tryAcquire(key);
  if (held === null) {
    throw new Error(`the fresh key "${key}" was reported held`);
  }
  if (!(await held.release())) {
    throw new Error(`releasing the fresh key "${key}" answered false`);
  }
};

/** A slot of a fresh semaphore key (always free): one attempt, then the release. */
const slotCycle: Cycle = async (client, key) => {
  if (client.tryLimited === undefined) {
    throw new Error("the subject has no semaphore (tryLimited)");
  }
  const held = await client.tryLimited(key, SEMAPHORE.limit);
  if (held === null) {
    throw new Error(`no slot of the fresh key "${key}" was free`);
  }
  if (!(await held.release())) {
    throw new Error(`releasing a slot of the fresh key "${key}" answered false`);
  }
};

/**
 * Acquire+release on fresh keys (each must be free), in `loops` concurrent loops over one
 * client: a warm-up phase, then the measured phase. Keys never repeat within a child.
 */
async function runCycles(
  fixture: SubjectFixture,
  env: SubjectEnvironment,
  timing: ScenarioTiming,
  loops: number,
  once: Cycle = lockCycle,
): Promise<Measurement> {
  const client = await fixture.connect();
  let keys = 0;
  const cycle = () => {
    keys += 1;
    return once(client, `c${keys}`);
  };
  const phase = async (ms: number): Promise<number> => {
    const end = performance.now() + ms;
    const cap = Math.ceil(MAX_CYCLES / loops);
    const loop = async () => {
      let done = 0;
      while (done < cap && performance.now() < end) {
        await cycle();
        done += 1;
      }
      return done;
    };
    const counts = await Promise.all(Array.from({ length: loops }, loop));
    return counts.reduce((sum, count) => sum + count, 0);
  };
  const warm = await phase(timing.warmupMs);
  await timing.cost?.begin();
  const before = snapshot(env.counters);
  const started = performance.now();
  const cycles = await phase(timing.windowMs);
  const elapsed = performance.now() - started;
  timing.cost?.end();
  return {
    windowMs: elapsed,
    cycles,
    cyclesPerSecond: (cycles / elapsed) * 1000,
    ...perCycle(before, snapshot(env.counters), cycles),
    runCycles: warm + cycles,
    ...(await timing.cost?.result(cycles)),
  };
}

/**
 * Eight workers, each with its own client (as eight processes would have; or one shared client
 * with `sharedClient`), take one key in turn: blocking acquire, read-modify-write of a shared
 * counter with an await in between, release, then `thinkMs` outside the lock. Runs warm-up
 * plus window without a break; only sections wholly inside the window are measured, so the
 * stopping tail does not count.
 */
async function runContended(
  fixture: SubjectFixture,
  env: SubjectEnvironment,
  timing: ScenarioTiming,
  thinkMs: number,
): Promise<Measurement> {
  const shared = timing.sharedClient ? await fixture.connect() : undefined;
  const clients = await Promise.all(
    Array.from({ length: CONTENDERS }, () => shared ?? fixture.connect()),
  );
  const sections = new ContendedSections();
  let stopped = false;
  const windowStart = performance.now() + timing.warmupMs;
  const windowEnd = windowStart + timing.windowMs;
  const counters = new WindowCounters(env.counters, timing);

  const contend = async (index: number) => {
    const client = clients[index];
    if (client === undefined) {
      throw new Error(`no client for worker ${index}`);
    }
    while (!stopped && sections.total < MAX_CYCLES && performance.now() < windowEnd) {
      let ran = false;
      await client.runExclusive("contended", () => {
        ran = true;
        return sections.run(index);
      });
      if (!ran) {
        throw new Error("runExclusive resolved without running the section");
      }
      if (thinkMs > 0) {
        await sleep(thinkMs);
      }
    }
  };
  const settled = await Promise.allSettled(
    clients.map((_, index) =>
      contend(index).catch((error: unknown) => {
        stopped = true;
        throw error;
      }),
    ),
  );
  counters.stop();
  const failure = settled.find((outcome) => outcome.status === "rejected");
  const measurement = measureContended(sections, counters, { windowStart, windowEnd, timing });
  Object.assign(measurement, await timing.cost?.result(measurement.cycles));
  if (failure !== undefined) {
    // Every worker has stopped, so the correctness counts are final: a library that throws
    // after letting two holders in is reported as violating exclusion, not only as failing.
    throw new ScenarioFailure(failure.reason, measurement);
  }
  return measurement;
}

/**
 * The contended sections as they ran: each a read-modify-write of a shared counter with an
 * await in between, so that two holders at once show as overlaps and lost updates.
 */
class ContendedSections {
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  /** The worker of each section. */
  readonly owners: number[] = [];
  #inside = 0;
  #overlaps = 0;
  #counter = 0;
  #total = 0;

  get total(): number {
    return this.#total;
  }

  get overlaps(): number {
    return this.#overlaps;
  }

  get lostUpdates(): number {
    return this.#total - this.#counter;
  }

  async run(owner: number): Promise<void> {
    const start = performance.now();
    this.#inside += 1;
    if (this.#inside > 1) {
      this.#overlaps += 1;
    }
    const read = this.#counter;
    await nextMacrotask();
    this.#counter = read + 1;
    this.#inside -= 1;
    this.#total += 1;
    this.starts.push(start);
    this.ends.push(performance.now());
    this.owners.push(owner);
  }
}

/** The subject's counters at the window's start and end, taken on time while workers run. */
class WindowCounters {
  readonly #counters: Counters;
  readonly #startTimer: NodeJS.Timeout;
  readonly #endTimer: NodeJS.Timeout;
  #atStart: Snapshot | undefined;
  #atEnd: Snapshot | undefined;

  constructor(counters: Counters, timing: ScenarioTiming) {
    this.#counters = counters;
    this.#startTimer = setTimeout(() => {
      this.#atStart = snapshot(counters);
      void timing.cost?.begin();
    }, timing.warmupMs);
    this.#endTimer = setTimeout(() => {
      this.#atEnd = snapshot(counters);
      timing.cost?.end();
    }, timing.warmupMs + timing.windowMs);
  }

  stop(): void {
    clearTimeout(this.#startTimer);
    clearTimeout(this.#endTimer);
  }

  /** Per cycle over the window; a window cut short counts up to now. */
  perCycle(cycles: number): Pick<Measurement, "attemptsPerCycle" | "commandsPerCycle"> {
    const fallback = snapshot(this.#counters);
    return perCycle(this.#atStart ?? fallback, this.#atEnd ?? fallback, cycles);
  }
}

/** Only sections wholly inside the window count; hand-offs and retakes in hold order. */
function measureContended(
  sections: ContendedSections,
  counters: WindowCounters,
  window: { windowStart: number; windowEnd: number; timing: ScenarioTiming },
): Measurement {
  const { starts, ends, owners } = sections;
  const { windowStart, windowEnd, timing } = window;
  // Sections never overlap when the lock works, so start order is hold order.
  const order = starts.map((_, index) => index).sort((a, b) => (starts[a] ?? 0) - (starts[b] ?? 0));
  const perWorker = Array.from({ length: CONTENDERS }, () => 0);
  const gaps: number[] = [];
  let cycles = 0;
  let handoffs = 0;
  let retakes = 0;
  let previous: number | undefined;
  for (const index of order) {
    const start = starts[index] ?? 0;
    const end = ends[index] ?? 0;
    const owner = owners[index] ?? 0;
    if (start >= windowStart && end <= windowEnd) {
      cycles += 1;
      perWorker[owner] = (perWorker[owner] ?? 0) + 1;
      if (previous !== undefined && (starts[previous] ?? 0) >= windowStart) {
        if (owners[previous] === owner) {
          retakes += 1;
        } else {
          handoffs += 1;
          gaps.push(start - (ends[previous] ?? 0));
        }
      }
    }
    previous = index;
  }
  return {
    windowMs: timing.windowMs,
    cycles,
    cyclesPerSecond: (cycles / timing.windowMs) * 1000,
    ...counters.perCycle(cycles),
    handoffP50Ms: quantile(gaps, 0.5),
    handoffP99Ms: quantile(gaps, 0.99),
    handoffs,
    retakes,
    perWorker,
    lostUpdates: sections.lostUpdates,
    overlaps: sections.overlaps,
    totalSections: sections.total,
  };
}

/**
 * Sixteen workers, each with its own client (or one shared with `sharedClient`), on one key of a
 * semaphore of limit 4 (fresh: the child's prefix): wait for a slot, 2 ms inside, release, 2 ms
 * outside. At most 2,000 sections/s fit (4 slots of 2 ms); the 16 workers ask for 4,000, so
 * slots are always wanted and a release must go to a waiter. Only sections wholly inside the
 * window count.
 */
async function runSemaphore(
  fixture: SubjectFixture,
  env: SubjectEnvironment,
  timing: ScenarioTiming,
): Promise<Measurement> {
  const shared = timing.sharedClient ? await fixture.connect() : undefined;
  const clients = await Promise.all(
    Array.from({ length: SEMAPHORE.workers }, () => shared ?? fixture.connect()),
  );
  const sections = new LimitedSections(SEMAPHORE.limit);
  let stopped = false;
  const windowStart = performance.now() + timing.warmupMs;
  const windowEnd = windowStart + timing.windowMs;
  const counters = new WindowCounters(env.counters, timing);

  const work = async (index: number) => {
    const client = clients[index];
    if (client?.runLimited === undefined) {
      throw new Error("the subject has no semaphore (runLimited)");
    }
    while (!stopped && sections.total < MAX_CYCLES && performance.now() < windowEnd) {
      let ran = false;
      await client.runLimited("semaphore", SEMAPHORE.limit, () => {
        ran = true;
        return sections.run(index);
      });
      if (!ran) {
        throw new Error("runLimited resolved without running the section");
      }
      await sleep(SEMAPHORE.outsideMs);
    }
  };
  const settled = await Promise.allSettled(
    clients.map((_, index) =>
      work(index).catch((error: unknown) => {
        stopped = true;
        throw error;
      }),
    ),
  );
  counters.stop();
  const failure = settled.find((outcome) => outcome.status === "rejected");
  const measurement = sections.measure(counters, { windowStart, windowEnd, timing });
  Object.assign(measurement, await timing.cost?.result(measurement.cycles));
  if (failure !== undefined) {
    throw new ScenarioFailure(failure.reason, measurement);
  }
  return measurement;
}

/** The semaphore's sections as they ran: each 2 ms inside, counted against the limit. */
class LimitedSections {
  readonly #limit: number;
  readonly #sections: Array<{ start: number; end: number; owner: number }> = [];
  #inside = 0;
  #overLimit = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  get total(): number {
    return this.#sections.length;
  }

  async run(owner: number): Promise<void> {
    const start = performance.now();
    this.#inside += 1;
    if (this.#inside > this.#limit) {
      this.#overLimit += 1;
    }
    try {
      await sleep(SEMAPHORE.insideMs);
    } finally {
      this.#inside -= 1;
    }
    this.#sections.push({ start, end: performance.now(), owner });
  }

  /** Sections wholly inside the window, per worker; `overlaps`: entered with the limit inside. */
  measure(
    counters: WindowCounters,
    window: { windowStart: number; windowEnd: number; timing: ScenarioTiming },
  ): Measurement {
    const { windowStart, windowEnd, timing } = window;
    const perWorker = Array.from({ length: SEMAPHORE.workers }, () => 0);
    const gaps = this.#slotGaps(windowStart, windowEnd);
    let cycles = 0;
    for (const { start, end, owner } of this.#sections) {
      if (start >= windowStart && end <= windowEnd) {
        cycles += 1;
        perWorker[owner] = (perWorker[owner] ?? 0) + 1;
      }
    }
    return {
      windowMs: timing.windowMs,
      cycles,
      cyclesPerSecond: (cycles / timing.windowMs) * 1000,
      ...counters.perCycle(cycles),
      handoffP50Ms: quantile(gaps, 0.5),
      handoffP99Ms: quantile(gaps, 0.99),
      handoffs: gaps.length,
      perWorker,
      lostUpdates: 0,
      overlaps: this.#overLimit,
      totalSections: this.total,
    };
  }

  /**
   * The semaphore's hand-off: each time a section's end freed a slot of a full key, how long
   * until the next section started in it (in the window; a freed slot always has a waiter here).
   */
  #slotGaps(windowStart: number, windowEnd: number): number[] {
    const events = this.#sections.flatMap(({ start, end }) => [
      { at: start, step: 1 },
      { at: end, step: -1 },
    ]);
    // At one instant an end comes before a start: the slot was freed, then taken.
    events.sort((a, b) => a.at - b.at || a.step - b.step);
    const gaps: number[] = [];
    let inside = 0;
    let freedAt: number | undefined;
    for (const { at, step } of events) {
      if (step === -1 && inside === this.#limit) {
        freedAt = at;
      } else if (step === 1 && freedAt !== undefined) {
        if (freedAt >= windowStart && at <= windowEnd) {
          gaps.push(at - freedAt);
        }
        freedAt = undefined;
      }
      inside += step;
    }
    return gaps;
  }
}

export const SCENARIOS: readonly ScenarioDefinition[] = [
  {
    name: "seq",
    description: "one client, acquire+release on fresh keys, one after another",
    contended: false,
    windowMs: { full: 800, quick: 200 },
    run: (fixture, env, timing) => runCycles(fixture, env, timing, 1),
  },
  {
    name: "par64",
    description: `${PARALLEL_LOOPS} concurrent acquire+release loops on distinct fresh keys, one client`,
    contended: false,
    windowMs: { full: 800, quick: 200 },
    run: (fixture, env, timing) => runCycles(fixture, env, timing, PARALLEL_LOOPS),
  },
  {
    name: "contended8",
    description: `${CONTENDERS} workers on one key: blocking acquire, read-modify-write with an await, release`,
    contended: true,
    windowMs: { full: 1500, quick: 400 },
    run: (fixture, env, timing) => runContended(fixture, env, timing, 0),
  },
  {
    name: "contended8think",
    description: `contended8, plus ${THINK_MS} ms outside the lock after each section (the release must go to a waiter)`,
    contended: true,
    windowMs: { full: 1500, quick: 400 },
    run: (fixture, env, timing) => runContended(fixture, env, timing, THINK_MS),
  },
  {
    name: "semaphore",
    description: `${SEMAPHORE.workers} workers on one semaphore key of limit ${SEMAPHORE.limit}: wait for a slot, ${SEMAPHORE.insideMs} ms inside, release, ${SEMAPHORE.outsideMs} ms outside`,
    contended: true,
    semaphore: true,
    windowMs: { full: 1500, quick: 400 },
    run: runSemaphore,
  },
  {
    name: "semaphore-seq",
    description: `one client, a slot of a fresh semaphore key (limit ${SEMAPHORE.limit}) taken and released, one after another`,
    contended: false,
    semaphore: true,
    windowMs: { full: 800, quick: 200 },
    run: (fixture, env, timing) => runCycles(fixture, env, timing, 1, slotCycle),
  },
];
