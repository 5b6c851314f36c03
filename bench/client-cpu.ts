// The child's own CPU time (user + system, every thread of the process), read at the edges of a
// measured window: what the subject's JavaScript, its driver and Node's I/O cost per cycle.

/** CPU time the process has used so far, µs. */
export function clientCpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}
