// What the demo's coordinator (demo.ts) and its worker processes (demo-worker.ts) tell each other
// over the IPC channel (see processes/worker-processes.ts for "ready" and "go").
import type { StoreName, StoreTarget } from "./processes/stores.js";

export { STORES as DEMO_STORES } from "./processes/stores.js";
export type DemoStoreName = StoreName;

/** Where a run keeps its locks and its section log: the same for the coordinator and workers. */
export type DemoStoreSettings = StoreTarget & {
  /** Unique per run: names the lock and log tables on SQL, prefixes the keys on Redis. */
  run: string;
};

export type WorkerSettings = DemoStoreSettings & {
  /** "w1", "w2", …: the worker's name on the timeline. */
  name: string;
  /** 0-based; section `n` of worker `index` takes `keys[(index + n) % keys.length]`. */
  index: number;
  keys: readonly string[];
  /** Critical sections to run; `null`: until the deadline given with "go". */
  sections: number | null;
  ttlMs: number;
};

/** With "go": ms after the epoch when a worker without a section count stops starting sections. */
export type GoPayload = { deadline: number | null };

export type WorkerReport =
  /** Sent from inside the section: the worker holds the key. */
  | { type: "acquired"; at: number; key: string; token: number; lockId: string }
  /** Sent from inside the section, as it ends: the release follows at once. */
  | { type: "released"; at: number; key: string; token: number }
  /** The key was held by `owner` (a lock id); the worker's lock `lockId` now waits for it. */
  | {
      type: "waiting";
      at: number;
      key: string;
      lockId: string;
      owner: string;
      remainingMs: number | null;
    }
  /** The lock reported a lost hold: a refresh or the release found someone else's. */
  | { type: "lost"; at: number; key: string; operation: "refresh" | "release" }
  | { type: "done"; at: number; sections: number };
