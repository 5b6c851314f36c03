// The contracts of the bench: what a subject (a lock library on one backend) provides, what a
// child process is asked to run, and what it answers. Subjects and scenarios only meet here.

import type { ServerCost } from "./server-cpu.js";

/** A backend. Ratios compare a subject with the raw baseline of its own backend. */
export type BackendName = "redis" | "memory" | "postgres" | "mysql" | "sqlite" | "mongodb";

export const SCENARIO_NAMES = [
  "seq",
  "par64",
  "contended8",
  "contended8think",
  "semaphore",
  "semaphore-seq",
] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

/** What a subject's setup receives in the child process. */
export type SubjectEnvironment = {
  /** Set for Redis subjects: where the server is (loopback). */
  readonly redisUrl: string | undefined;
  /** Set for PostgreSQL subjects: where the server is (loopback). */
  readonly postgresUrl: string | undefined;
  /** Set for MySQL/MariaDB subjects: where the server is (loopback). */
  readonly mysqlUrl: string | undefined;
  /** Set for MongoDB subjects: where the server is (loopback). */
  readonly mongodbUrl: string | undefined;
  /** Unique to this child: every key (and namespace) the subject writes starts with it. */
  readonly prefix: string;
  /**
   * SQL and MongoDB: the start of the subject's table (collection) names (and SQLite's
   * directory): `prefix`, dropped by
   * `close()`; with `--keep-rows` one per subject, kept between runs (`keepTables`).
   */
  readonly tablePrefix: string;
  /** `--keep-rows`: `close()` leaves the tables (and their rows) for the next run. */
  readonly keepTables: boolean;
  /** TTL of every hold (long enough never to expire during a run). */
  readonly ttlMs: number;
  /** Longest blocking acquire before it counts as a failure. */
  readonly blockingTimeMs: number;
  /** The subject increments these; the scenario reads them. */
  readonly counters: Counters;
};

export type Counters = {
  /** Acquire attempts that reached the backend (hasp: adapter.acquire calls; raw: SET NX, upserts). */
  attempts: number;
  /** Commands (Redis) or statements (SQL) sent on the subject's command connections, or -1 when not counted. */
  commands: number;
  /** Redis: the commands sent at top level by name (lower case), scripts also as `evalsha <name>`. */
  byCommand: Record<string, number>;
};

/** A held key, from `tryAcquire`. */
export type Held = {
  /** Resolves to whether the hold was still ours and is now released. */
  release(): PromiseLike<boolean>;
};

/**
 * One client of the library, as one process would have it (its own connections). Scenarios
 * that need one client per worker call `connect` once per worker.
 */
export type LockClient = {
  /** One attempt without waiting: the release handle, or null when the key is held. */
  tryAcquire(key: string): Promise<Held | null>;
  /**
   * Waits for the key with the library's own waiting mechanism (bounded by `blockingTimeMs`,
   * then it throws), runs `section` while holding it, then releases (also when it throws).
   * Each call is its own owner: workers may share a client.
   */
  runExclusive(key: string, section: () => Promise<void>): Promise<void>;
  /**
   * The semaphore scenario (subjects with a `semaphore` description): waits for one of `limit`
   * slots of the key with the library's own mechanism (bounded by `blockingTimeMs`, then it
   * throws), runs `section` while holding it, then releases (also when it throws). Each call is
   * its own holder.
   */
  runLimited?(key: string, limit: number, section: () => Promise<void>): Promise<void>;
  /**
   * With `runLimited`: one attempt at one of `limit` slots of the key, without waiting (the
   * `semaphore-seq` scenario): the release handle, or null when no slot was free.
   */
  tryLimited?(key: string, limit: number): Promise<Held | null>;
};

/** A subject set up in a child process. */
export type SubjectFixture = {
  connect(): Promise<LockClient>;
  /** Closes every client and connection, and deletes what the run left in the backend. */
  close(): Promise<void>;
};

/** A lock library on one backend: one row per scenario in the table. */
export type SubjectDefinition = {
  /** `<library>-<backend>`, as given to `--subject`. */
  readonly name: string;
  readonly backend: BackendName;
  /** The raw driver baseline of its backend: the denominator of that backend's ratios. */
  readonly baseline: boolean;
  /** One line for the README and the JSON. */
  readonly description: string;
  /**
   * Its semaphore, in one line, when its clients implement `runLimited`: only those subjects
   * run the semaphore scenario.
   */
  readonly semaphore?: string;
  setup(env: SubjectEnvironment): Promise<SubjectFixture>;
};

/** What the parent asks one child to run. */
export type Job = {
  readonly subject: string;
  readonly scenario: ScenarioName;
  readonly round: number;
  readonly redisUrl: string | undefined;
  readonly postgresUrl: string | undefined;
  readonly mysqlUrl: string | undefined;
  readonly mongodbUrl: string | undefined;
  readonly prefix: string;
  /** See SubjectEnvironment. */
  readonly tablePrefix: string;
  readonly keepTables: boolean;
  readonly warmupMs: number;
  readonly windowMs: number;
  /** Contended scenarios: the workers share one client instead of having one each. */
  readonly sharedClient: boolean;
};

/** Measured in a scenario's window. Contended-only fields are absent for seq and par64. */
export type Measurement = {
  /** Length of the measured window, ms. */
  windowMs: number;
  /** Acquire+release cycles (sections, for contended scenarios) completed in the window. */
  cycles: number;
  cyclesPerSecond: number;
  /** Acquire attempts per completed cycle or section (1 = no wasted attempt). */
  attemptsPerCycle: number;
  /** Commands per cycle or section on the command connections; null when not counted. */
  commandsPerCycle: number | null;
  /** seq, par64: cycles of the whole run, warm-up included (contended: `totalSections`). */
  runCycles?: number;
  /** The child's CPU time (user + system) in the window per cycle or section, µs. */
  clientCpuUsPerCycle?: number | null;
  /** The server's time (µs) or work counter per cycle or section: `serverCost.unit`; null when not measured. */
  serverPerCycle?: number | null;
  /** The server's counters over the window (bench/server-cpu.ts); absent without a server. */
  serverCost?: ServerCost;
  /** Redis, seq: each operation's commands and server time, measured apart (bench/script-split.ts). */
  scriptSplit?: ScriptSplit;
  /** Contended: start of a section minus end of the previous one by another worker, ms. */
  handoffP50Ms?: number | null;
  handoffP99Ms?: number | null;
  /** Contended: sections followed by one of another worker / by the same worker again. */
  handoffs?: number;
  retakes?: number;
  /** Contended: sections per worker in the window. */
  perWorker?: number[];
  /** Contended, whole run: sections whose counter increment was lost. */
  lostUpdates?: number;
  /**
   * Contended, whole run: sections entered while another was inside (semaphore: while `limit`
   * others were inside).
   */
  overlaps?: number;
  /** Contended, whole run: sections completed (warm-up and tail included). */
  totalSections?: number;
};

/** A child's answer. */
export type JobResult =
  | { status: "ok"; measurement: Measurement }
  /** `measurement`: what a contended run measured until its workers stopped (correctness counts). */
  | { status: "error"; error: string; measurement?: Measurement };

/** One kind of operation measured apart: its commands and their server time, per operation. */
export type SplitPhase = {
  operation: "acquire" | "release";
  operations: number;
  /** Per command sent (`set`, `evalsha hasp_lock_acquire`, …): calls per operation. */
  sent: Record<string, number>;
  /** Commands the scripts ran inside the server (commandstats counts them too), per operation. */
  nested: Record<string, number>;
  /** Server µs per operation over the phase's top-level commands. */
  usecPerOperation: number | null;
  note: string | null;
};

export type ScriptSplit = { phases: SplitPhase[] };
