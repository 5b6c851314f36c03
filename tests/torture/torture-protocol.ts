/**
 * What the torture runner (torture.ts) and its worker processes (fixtures/torture-worker.ts)
 * agree on: the worker's settings and report, and where the guarded resource and the log live.
 */

export const TORTURE_BACKENDS = ["redis", "postgres", "mysql", "sqlite"] as const;
export type TortureBackend = (typeof TORTURE_BACKENDS)[number];

/** The worker's one argument, as JSON. */
export type WorkerSettings = {
  backend: TortureBackend;
  /** The lock backend: a URL (maybe through a delay proxy), or the SQLite file. */
  lockTarget: string;
  /** Where the guarded resource and the log live: a URL, or the SQLite file. */
  resourceTarget: string;
  /** Of the run: lock namespace, lock table, and prefix of every other key or table. */
  name: string;
  keys: string[];
  /** `process.hrtime.bigint()` of the parent, in decimal: the zero of every logged time. */
  epoch: string;
  ttlMs: number;
  /** The TTL of a section the parent stops: shorter than the stop. */
  stallTtlMs: number;
  index: number;
  /** The worker exits with code 2 if still running after this long. */
  maxLifetimeMs: number;
  /** The negative control: lock through NoOpLockAdapter (every acquire succeeds). */
  noOpLock: boolean;
};

/** What a worker prints at the end ("done <json>"). */
export type WorkerStats = {
  sections: number;
  /** LockBackendErrors met (each followed by another try of the same lock). */
  backendErrors: number;
  /** A few distinct ones, as "operation: cause". */
  errorSamples: string[];
  /** Blocking acquires that ran out of time. */
  acquireTimeouts: number;
  /** Sections told (by their aborted signal) that the hold was lost before they wrote. */
  lostHolds: number;
  /** Runs whose closing release found the hold gone. */
  failedReleases: number;
  /** The longest the process's event loop was late while it ran (a stalled process, a busy machine). */
  maxEventLoopDelayMs: number;
};

/**
 * The guarded resource on Redis, one hash per key (`token`, `writes`).
 *
 * KEYS[1]: the key's resource hash.
 * ARGV[1]: the writer's fencing token.
 * Returns 1 when the token is not below the stored one (stored, `writes` + 1), 0 when refused.
 */
export const GUARDED_WRITE_LUA = `
local stored = tonumber(redis.call('HGET', KEYS[1], 'token') or '0')
if tonumber(ARGV[1]) < stored then
  return 0
end
redis.call('HSET', KEYS[1], 'token', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'writes', 1)
return 1
`;

/** The SQL tables beside the lock table: the guarded resource and the log. */
export function sqlTables(name: string): { resource: string; log: string } {
  return { resource: `${name}_res`, log: `${name}_log` };
}
