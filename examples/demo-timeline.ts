// The demo's timeline (demo.ts): what the workers' reports mean, as lines on the terminal, and
// the fault: one worker killed right after it acquired a key, about a quarter into the run.
import type { WorkerReport } from "./demo-protocol.js";
import { seconds2, seconds3, type Terminal } from "./demo-terminal.js";
import type { WorkerProcess } from "./processes/worker-processes.js";

export type DemoWorker = WorkerProcess<WorkerReport> & { name: string; killed: boolean };

export type Fault = {
  worker: string;
  key: string;
  token: number;
  lockId: string;
  acquiredAt: number;
  killedAt: number;
  /** The killed section ended (and was logged) before the kill landed. */
  ended: boolean;
  takeover?: { worker: string; token: number; at: number };
};

/** The run's options the timeline needs (demo.ts's DemoOptions has them all). */
export type TimelineSettings = {
  workers: number;
  keys: readonly string[];
  /** Per worker; `null` with a duration. */
  sections: number | null;
  durationMs: number | null;
  ttlMs: number;
  kill: boolean;
  quiet: boolean;
};

const PALETTE = ["36", "35", "33", "32", "34", "96", "95", "93"];

type Report<T extends WorkerReport["type"]> = WorkerReport & { type: T };

/** Turns the workers' reports into timeline lines, and kills one worker once. */
export class DemoTimeline {
  readonly #settings: TimelineSettings;
  readonly #term: Terminal;
  /** Ms after the run's epoch, as the workers stamp their reports. */
  readonly #now: () => number;
  /** Sections of the whole run; `null` with a duration. */
  readonly #total: number | null;
  readonly #keyWidth: number;
  readonly #nameWidth: number;
  /** Worker name per lock id. */
  readonly #owners = new Map<string, string>();
  /** Per lock id, when its hold began (its "acquired" report). */
  readonly #acquiredAt = new Map<string, number>();
  /** "waiting" reports of a hold whose "acquired" report has not come yet, per holder's lock id. */
  readonly #waitsForUnseen = new Map<string, Array<() => void>>();
  readonly #holders = new Map<string, { worker: string; token: number; at: number }>();
  readonly #waiting = new Set<string>();
  #completed = 0;
  #lost = 0;
  #fault: Fault | undefined;

  constructor(settings: TimelineSettings, term: Terminal, now: () => number) {
    this.#settings = settings;
    this.#term = term;
    this.#now = now;
    this.#total = settings.sections === null ? null : settings.sections * settings.workers;
    this.#keyWidth = Math.max(...settings.keys.map((key) => key.length));
    this.#nameWidth = Math.max(3, `w${settings.workers}`.length);
  }

  /** Sections the workers reported completed. */
  get completed(): number {
    return this.#completed;
  }

  get lost(): number {
    return this.#lost;
  }

  get fault(): Fault | undefined {
    return this.#fault;
  }

  printHeading(): void {
    if (!this.#settings.quiet) {
      const heading = `${"time s".padStart(8)}  ${"who".padEnd(this.#nameWidth)}  ${"event".padEnd(8)}  ${"key".padEnd(this.#keyWidth)}  details`;
      this.#term.print(this.#term.paint("2", heading));
    }
  }

  onReport(worker: DemoWorker, report: WorkerReport): void {
    const { name } = worker;
    switch (report.type) {
      case "acquired":
        this.#acquired(worker, report);
        return;
      case "released":
        this.#released(name, report);
        return;
      case "waiting":
        this.#waitingFor(name, report);
        return;
      case "lost": {
        this.#lost += 1;
        const what = `the ${report.operation} found the hold gone: it outlived its TTL`;
        this.#add(report.at, name, "lost", report.key, what, { tone: "31", important: true });
        return;
      }
      case "done":
        this.#add(report.at, name, "done", "", `${report.sections} sections`);
        return;
    }
  }

  /** Holds nobody reported (a holder of an earlier run's): their waits as they were stamped. */
  showUnseenWaits(): void {
    for (const addWait of [...this.#waitsForUnseen.values()].flat()) {
      addWait();
    }
  }

  /** The progress line: time, sections, who holds what, how many wait. */
  progressText(): string {
    const { durationMs } = this.#settings;
    const elapsed = this.#now();
    const time =
      durationMs === null
        ? seconds2(elapsed)
        : `${(elapsed / 1000).toFixed(1)} of ${durationMs / 1000} s`;
    const count = `${this.#completed}${this.#total === null ? "" : `/${this.#total}`} sections`;
    const held = [...this.#holders]
      .map(([key, { worker, token }]) =>
        this.#fault?.key === key && this.#fault.token === token
          ? `${key} ${worker} (killed)`
          : `${key} ${worker}`,
      )
      .join(", ");
    return `  ${time} | ${count} | holding: ${held || "-"} | waiting: ${this.#waiting.size}`;
  }

  #acquired(worker: DemoWorker, report: Report<"acquired">): void {
    const { name } = worker;
    this.#owners.set(report.lockId, name);
    this.#acquiredAt.set(report.lockId, report.at);
    this.#holders.set(report.key, { worker: name, token: report.token, at: report.at });
    this.#waiting.delete(name);
    const tookOver = this.#takeOver(name, report);
    this.#add(report.at, name, "acquired", report.key, `token ${report.token}`, {
      important: tookOver,
    });
    for (const addWait of this.#waitsForUnseen.get(report.lockId) ?? []) {
      addWait();
    }
    this.#waitsForUnseen.delete(report.lockId);
    if (this.#shouldKill()) {
      this.#kill(worker, report);
    }
  }

  /** The first holder of the killed worker's key after the kill: the dead hold expired. */
  #takeOver(name: string, report: Report<"acquired">): boolean {
    const dead = this.#fault;
    if (dead === undefined || dead.takeover !== undefined || dead.key !== report.key) {
      return false;
    }
    dead.takeover = { worker: name, token: report.token, at: report.at };
    const what = `the hold of the killed ${dead.worker} ran out its TTL, ${seconds2(report.at - dead.killedAt)} after the kill`;
    this.#add(report.at, dead.worker, "expired", dead.key, what, { tone: "33", important: true });
    return true;
  }

  #released(name: string, report: Report<"released">): void {
    this.#completed += 1;
    if (this.#fault?.worker === name && this.#fault.token === report.token) {
      this.#fault.ended = true;
    }
    const held = this.#holders.get(report.key);
    let since = "";
    if (held?.token === report.token) {
      this.#holders.delete(report.key);
      since = `, held ${Math.round(report.at - held.at)} ms`;
    }
    this.#add(report.at, name, "released", report.key, `token ${report.token}${since}`);
  }

  #waitingFor(name: string, report: Report<"waiting">): void {
    this.#waiting.add(name);
    const left = report.remainingMs === null ? "" : `, TTL left ${seconds2(report.remainingMs)}`;
    // Each process stamps its own reports, the holder its "acquired" only once its section
    // runs: a worker can see the hold before that. A wait is shown after the hold it saw
    // began, and before its own (a lock event's time is in whole ms).
    const addWait = () => {
      const seen = Math.max(report.at, this.#acquiredAt.get(report.owner) ?? report.at);
      const at = Math.min(seen, (this.#acquiredAt.get(report.lockId) ?? Infinity) - 0.001);
      this.#term.add(at, () => {
        const what = `held by ${this.#ownerName(report.owner, at)}${left}`;
        return this.#row(at, name, "waiting", report.key, what);
      });
    };
    if (this.#acquiredAt.has(report.owner)) {
      addWait();
    } else {
      const waits = this.#waitsForUnseen.get(report.owner) ?? [];
      this.#waitsForUnseen.set(report.owner, [...waits, addWait]);
    }
  }

  #shouldKill(): boolean {
    const { kill, durationMs } = this.#settings;
    return (
      kill &&
      this.#fault === undefined &&
      (this.#total === null
        ? this.#now() >= (durationMs ?? 0) / 4
        : this.#completed >= Math.max(1, Math.floor(this.#total / 4)))
    );
  }

  #kill(worker: DemoWorker, report: Report<"acquired">): void {
    const killedAt = this.#now();
    worker.killed = true;
    worker.kill();
    this.#fault = {
      worker: worker.name,
      key: report.key,
      token: report.token,
      lockId: report.lockId,
      acquiredAt: report.at,
      killedAt,
      ended: false,
    };
    const what = `SIGKILL while holding token ${report.token}: ${report.key} stays taken until its TTL (${this.#settings.ttlMs / 1000} s) passes`;
    this.#add(killedAt, worker.name, "KILLED", report.key, what, {
      tone: "1;31",
      important: true,
    });
  }

  #ownerName(lockId: string, at: number): string {
    const name = this.#owners.get(lockId) ?? `an unknown owner (${lockId.slice(0, 8)})`;
    const fault = this.#fault;
    return fault?.lockId === lockId && at >= fault.killedAt ? `${name} (killed)` : name;
  }

  /** A timeline line; `important` ones show even with --quiet. */
  #add(
    at: number,
    worker: string,
    event: string,
    key: string,
    what: string,
    style: { tone?: string; important?: boolean } = {},
  ): void {
    this.#term.add(
      at,
      () => this.#row(at, worker, event, key, what, style.tone),
      style.important ?? false,
    );
  }

  /** One timeline line; `tone` colours the event and what happened. */
  #row(at: number, worker: string, event: string, key: string, what: string, tone = "0"): string {
    const term = this.#term;
    return `${term.paint("2", seconds3(at).padStart(8))}  ${this.#who(worker)}  ${term.paint(tone, event.padEnd(8))}  ${key.padEnd(this.#keyWidth)}  ${term.paint(tone, what)}`;
  }

  #who(name: string): string {
    const index = Number(name.slice(1)) - 1;
    return this.#term.paint(PALETTE[index % PALETTE.length] ?? "0", name.padEnd(this.#nameWidth));
  }
}
