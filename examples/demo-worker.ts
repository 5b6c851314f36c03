// One worker process of `npm run demo`, started by examples/demo.ts with its settings as JSON.
// It runs critical sections on the demo's keys through a LockProvider, appends each completed
// section to the store's log, and reports what happens to the coordinator over IPC.
import { setTimeout as sleep } from "node:timers/promises";
import type { LockRunContext } from "../src/lock/contracts/index.js";
import { LOCK_EVENTS, LockProvider } from "../src/lock/index.js";
import { TimeSpan } from "../src/time-span/index.js";
import type { GoPayload, WorkerReport, WorkerSettings } from "./demo-protocol.js";
import { type DemoStore, demoNamespace, openDemoStore } from "./demo-store.js";
import { workerChannel } from "./processes/worker-channel.js";

// Without its coordinator nobody checks the work: the channel stops the worker then.
const channel = workerChannel<WorkerSettings>();
const { settings, now } = channel;
const send = (report: WorkerReport) => channel.send(report);

/**
 * A lock event's `at` on the run's clock: when it happened, not when this worker's report of it
 * was sent, so the coordinator can order it against the other workers' reports.
 */
const happenedAt = (at: Date) => now() - (Date.now() - at.getTime());
const randomMs = (min: number, max: number) => min + Math.floor(Math.random() * (max - min + 1));

let store: DemoStore | undefined;
try {
  store = await openDemoStore(settings, { listen: true });
  const { append } = store;
  const provider = new LockProvider({
    adapter: store.adapter,
    namespace: demoNamespace(settings.run),
    defaultTtl: TimeSpan.fromMilliseconds(settings.ttlMs),
    defaultBlockingInterval: store.blockingInterval,
  });
  await provider.addListener(LOCK_EVENTS.UNAVAILABLE, ({ key, lockId, owner, remainingTime, at }) =>
    send({
      type: "waiting",
      at: happenedAt(at),
      key,
      lockId,
      owner,
      remainingMs: remainingTime?.toMilliseconds() ?? null,
    }),
  );
  await provider.addListener(LOCK_EVENTS.FAILED_REFRESH, ({ key, at }) =>
    send({ type: "lost", at: happenedAt(at), key, operation: "refresh" }),
  );
  await provider.addListener(LOCK_EVENTS.FAILED_RELEASE, ({ key, at }) =>
    send({ type: "lost", at: happenedAt(at), key, operation: "release" }),
  );

  const go = await channel.readyThenGo<GoPayload>();

  let completed = 0;
  const more = (n: number) =>
    settings.sections === null ? now() < (go.deadline ?? 0) : n < settings.sections;
  for (let n = 0; more(n); n++) {
    const key = settings.keys[(settings.index + n) % settings.keys.length] as string;
    const lock = provider.create(key);
    // The reports are sent from inside the section, so that on the timeline a key's next
    // holder always comes after its previous one let go (the lock events come a moment later).
    const section = async ({ fencingToken }: LockRunContext) => {
      const start = now();
      void send({ type: "acquired", at: start, key, token: fencingToken, lockId: lock.id });
      // The work the lock protects; the coordinator may kill the worker here.
      await sleep(randomMs(60, 160));
      const end = now();
      await append({ key, token: fencingToken, worker: settings.name, start, end });
      void send({ type: "released", at: end, key, token: fencingToken });
    };
    // Try once; when the key is held (an UNAVAILABLE event, reported as "waiting"), wait for it.
    const [ran] = await lock.run(section);
    if (!ran) {
      await lock.runBlockingOrFail(section, { time: TimeSpan.fromMinutes(1) });
    }
    completed += 1;
    // A moment outside the lock, as real work has, so that the others get their turn.
    await sleep(randomMs(0, 40));
  }
  await send({ type: "done", at: now(), sections: completed });
} catch (error) {
  console.error(`${settings.name}: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await store?.close();
  channel.finish();
}
