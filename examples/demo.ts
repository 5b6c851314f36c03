// `npm run demo`: four workers in one process contend for one lock on the embedded memory
// store. Each takes the lock, does a read-modify-write of a shared counter with a pause in the
// middle (the lost-update trap), and hands the lock to the next waiter. Lock events are printed
// as they happen; one worker uses acquireOrFail piped through retry instead of a blocking wait.

import { MemoryLockAdapter } from "../src/lock/adapters/memory/memory-lock-adapter.js";
import { FailedAcquireLockError } from "../src/lock/contracts/lock-errors.js";
import { LOCK_EVENTS, LockProvider } from "../src/lock/index.js";
import { constantBackoff } from "../src/resilience/backoff-policies.js";
import { retry } from "../src/resilience/retry.js";
import { TimeSpan } from "../src/time-span/time-span.js";

const started = performance.now();
const stamp = () => `${(performance.now() - started).toFixed(0).padStart(5)} ms`;
const log = (line: string) => console.log(`${stamp()}  ${line}`);
const short = (id: string) => id.slice(0, 8);

const provider = new LockProvider({
  adapter: new MemoryLockAdapter(),
  defaultTtl: TimeSpan.fromSeconds(5),
});

const names = new Map<string, string>();
const who = (lockId: string) => names.get(lockId) ?? short(lockId);

await provider.addListener(LOCK_EVENTS.ACQUIRED, ({ key, lockId, fencingToken }) =>
  log(`ACQUIRED     ${key} by ${who(lockId)} (fencing token ${fencingToken})`),
);
await provider.addListener(LOCK_EVENTS.UNAVAILABLE, ({ key, lockId, owner }) =>
  log(`UNAVAILABLE  ${key} for ${who(lockId)}: held by ${who(owner)}`),
);
await provider.addListener(LOCK_EVENTS.RELEASED, ({ key, lockId }) =>
  log(`RELEASED     ${key} by ${who(lockId)}`),
);

const store = { counter: 0, lastToken: 0 };
const sections: Array<{ worker: string; token: number; start: number; end: number }> = [];

async function criticalSection(worker: string, fencingToken: number): Promise<void> {
  const start = performance.now();
  // A guarded resource rejects writes that carry an older token than it has seen.
  if (fencingToken <= store.lastToken) {
    throw new Error(`stale token ${fencingToken} after ${store.lastToken}`);
  }
  store.lastToken = fencingToken;
  const read = store.counter;
  await new Promise((resolve) => setTimeout(resolve, 20));
  store.counter = read + 1;
  sections.push({ worker, token: fencingToken, start, end: performance.now() });
}

async function blockingWorker(worker: string, rounds: number): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    const lock = provider.create("report");
    names.set(lock.id, worker);
    await lock.runBlockingOrFail(({ fencingToken }) => criticalSection(worker, fencingToken), {
      time: TimeSpan.fromSeconds(10),
    });
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function retryingWorker(worker: string): Promise<void> {
  const lock = provider.create("report");
  names.set(lock.id, worker);
  // No blocking wait: try, and on FailedAcquireLockError try again up to 50 times, 15 ms apart.
  const token = await lock.acquireOrFail().pipe(
    retry({
      maxAttempts: 50,
      errorPolicy: FailedAcquireLockError,
      backoffPolicy: constantBackoff({ delay: TimeSpan.fromMilliseconds(15) }),
    }),
  );
  try {
    await criticalSection(worker, token);
  } finally {
    await lock.release();
  }
}

log("four workers contend for the lock 'report' (memory store, TTL 5 s)");
await Promise.all([
  blockingWorker("ada", 3),
  blockingWorker("bob", 3),
  blockingWorker("cy", 3),
  retryingWorker("dee"),
]);
// Let the last events print before the summary.
await new Promise((resolve) => setImmediate(resolve));

const sorted = [...sections].sort((a, b) => a.start - b.start);
const overlaps = sorted.filter((section, i) => i > 0 && section.start < (sorted[i - 1]?.end ?? 0));
const increasing = sorted.every(
  (section, i) => i === 0 || section.token > (sorted[i - 1]?.token ?? 0),
);
const ok = store.counter === sections.length && overlaps.length === 0 && increasing;
console.log(
  `\ncheck: ${sections.length} critical sections, counter ${store.counter} (lost updates: ${sections.length - store.counter}), overlaps: ${overlaps.length}, fencing tokens strictly increasing: ${increasing ? "yes" : "no"} → ${ok ? "OK" : "FAILED"}`,
);
process.exitCode = ok ? 0 : 1;
