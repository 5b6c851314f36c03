// Which faults a torture run (torture.ts) injects, and how many of each by default.
import type { TortureBackend } from "./torture-protocol.js";

/** How many of each fault a run injects; a fault a backend cannot take is ignored. */
export type TortureFaults = {
  /** Redis only: kill -9 and restart of the lock server. */
  redisRestarts: number;
  /** PostgreSQL only: rounds of `pg_terminate_backend` on every lock connection of the workers. */
  pgTerminations: number;
  /** SIGSTOPs of a holder past its TTL. */
  stalls: number;
  /** Workers 2 and 3 run with Date this far ahead and behind; 0: not at all. */
  clockShiftMs: number;
  /** Network backends: worker 1 reaches the lock backend through a proxy with this delay each way; 0: not at all. */
  delayMs: number;
  /** Network backends with a delay: cuts of every connection through the proxy. */
  proxyCuts: number;
};

/** The faults `npm run torture` and the CI test inject, scaled to the run's duration. */
export function defaultFaults(backend: TortureBackend, durationMs: number): TortureFaults {
  const every = (ms: number) => Math.max(1, Math.round(durationMs / ms));
  const network = backend !== "sqlite";
  return {
    redisRestarts: backend === "redis" ? every(2_500) : 0,
    pgTerminations: backend === "postgres" ? every(1_500) : 0,
    stalls: every(5_000),
    clockShiftMs: 10 * 60_000,
    delayMs: network ? 15 : 0,
    proxyCuts: network ? every(2_500) : 0,
  };
}
