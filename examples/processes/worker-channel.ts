// A worker's side of a multi-process run (the coordinator's side is worker-processes.ts): its
// settings, the ready/go barrier, the run's clock, and its messages to and from the
// coordinator over Node's IPC channel.
import { hrtime } from "node:process";

/** Sent once the worker is connected to its store. `wallClock`: its `Date.now()`. */
export type ReadyMessage = { type: "ready"; wallClock: number };
/** `epoch`: the zero of the run's clock, a `process.hrtime.bigint()` in decimal. */
export type GoMessage<Payload extends object = object> = { type: "go"; epoch: string } & Payload;

export type WorkerChannel<Settings> = {
  /** The worker's one argument, parsed. */
  readonly settings: Settings;
  /** Ms since the run's epoch (before "go": since the worker started). */
  now(): number;
  /** Says "ready" and waits for "go"; from then on `now()` is on the run's clock. */
  readyThenGo<Payload extends object>(): Promise<GoMessage<Payload>>;
  /** Resolves once the message has left. */
  send(message: object): Promise<void>;
  /** Called with every message but "go". */
  onMessage(listener: (message: { type: string }) => void): void;
  /** The work is done: the channel closes, so that the process can exit. */
  finish(): void;
};

/**
 * The channel of this process, which must have been started by `startWorkers`. A worker that
 * loses its coordinator exits (1): nobody would check its work. `maxLifetimeMs`: a worker that
 * hangs (a lost wake-up, a dead server) exits (2) after that long.
 */
export function workerChannel<Settings>({
  maxLifetimeMs,
}: {
  maxLifetimeMs?: number;
} = {}): WorkerChannel<Settings> {
  const settings = JSON.parse(process.argv[2] ?? "{}") as Settings;
  const name = `worker ${process.pid}`;
  let finished = false;
  process.on("disconnect", () => {
    if (!finished) {
      console.error(`${name}: the coordinator is gone`);
      process.exit(1);
    }
  });
  if (maxLifetimeMs !== undefined) {
    setTimeout(() => {
      console.error(`${name}: still running after ${maxLifetimeMs} ms`);
      process.exit(2);
    }, maxLifetimeMs).unref();
  }
  let epoch = hrtime.bigint();
  const send = (message: object) =>
    new Promise<void>((resolve) => {
      process.send?.(message, undefined, {}, () => resolve());
    });
  return {
    settings,
    now: () => Number(hrtime.bigint() - epoch) / 1e6,
    readyThenGo: <Payload extends object>() =>
      new Promise<GoMessage<Payload>>((resolve) => {
        const onGo = (message: { type: string }) => {
          if (message.type === "go") {
            process.off("message", onGo);
            const go = message as GoMessage<Payload>;
            epoch = BigInt(go.epoch);
            resolve(go);
          }
        };
        process.on("message", onGo);
        void send({ type: "ready", wallClock: Date.now() } satisfies ReadyMessage);
      }),
    send,
    onMessage: (listener) => {
      process.on("message", (message: { type: string }) => {
        if (message.type !== "go") {
          listener(message);
        }
      });
    },
    finish: () => {
      finished = true;
      process.disconnect?.();
    },
  };
}
