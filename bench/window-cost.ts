// What a measured window cost, per cycle: the child's CPU (client) and the server's time or work
// (server-cpu.ts). A scenario calls `begin` and `end` at the window's edges and `result` once
// its cycles are counted; the child calls `beginRun` and `endRun` around the whole run, for a
// server whose counters can only be read over it.

import { setTimeout as sleep } from "node:timers/promises";
import { clientCpuMicros } from "./client-cpu.js";
import type { ServerCost, ServerProbe } from "./server-cpu.js";
import type { Measurement } from "./types.js";

export type WindowCostFields = Pick<
  Measurement,
  "clientCpuUsPerCycle" | "serverPerCycle" | "serverCost"
>;

type Sample = Awaited<ReturnType<ServerProbe["sample"]>>;

/** After the subject's close, until its server backends have exited (and flushed their counters). */
const EXIT_MS = 500;

function unread(probe: ServerProbe, error: unknown): ServerCost {
  return {
    source: probe.source,
    unit: probe.unit,
    scope: probe.scope,
    perCycle: null,
    counters: {},
    note: `not read: ${error instanceof Error ? error.message : String(error)}`,
  };
}

export class WindowCost {
  readonly #probe: ServerProbe | null;
  #cpuStart: number | undefined;
  #cpuEnd: number | undefined;
  #before: Promise<Sample> | undefined;
  #after: Promise<Sample> | undefined;

  constructor(probe: ServerProbe | null) {
    this.#probe = probe;
  }

  /** The window's probe, or null (no server, or one read over the whole run). */
  get #windowProbe(): ServerProbe | null {
    return this.#probe?.scope === "window" ? this.#probe : null;
  }

  async begin(): Promise<void> {
    const probe = this.#windowProbe;
    if (probe !== null) {
      this.#before = probe.sample();
      await this.#before.catch(() => undefined);
    }
    this.#cpuStart = clientCpuMicros();
  }

  end(): void {
    this.#cpuEnd = clientCpuMicros();
    const probe = this.#windowProbe;
    if (probe !== null) {
      this.#after = probe.sample();
      this.#after.catch(() => undefined);
    }
  }

  async result(cycles: number): Promise<WindowCostFields> {
    const cpu =
      this.#cpuStart === undefined || this.#cpuEnd === undefined || cycles === 0
        ? null
        : (this.#cpuEnd - this.#cpuStart) / cycles;
    const probe = this.#windowProbe;
    if (probe === null || this.#before === undefined || this.#after === undefined) {
      return { clientCpuUsPerCycle: cpu };
    }
    const serverCost = await Promise.all([this.#before, this.#after]).then(
      ([before, after]) => probe.cost(before, after, cycles),
      (error: unknown) => unread(probe, error),
    );
    return { clientCpuUsPerCycle: cpu, serverPerCycle: serverCost.perCycle, serverCost };
  }

  async beginRun(): Promise<void> {
    if (this.#probe?.scope === "run") {
      this.#before = this.#probe.sample();
      await this.#before.catch(() => undefined);
    }
  }

  /** After the subject's close: the run's server cost over every cycle of the run. */
  async endRun(measurement: Measurement): Promise<void> {
    const probe = this.#probe;
    if (probe?.scope !== "run" || this.#before === undefined) {
      return;
    }
    await sleep(EXIT_MS);
    const cycles = measurement.runCycles ?? measurement.totalSections ?? measurement.cycles;
    const serverCost = await Promise.all([this.#before, probe.sample()]).then(
      ([before, after]) => probe.cost(before, after, cycles),
      (error: unknown) => unread(probe, error),
    );
    measurement.serverCost = serverCost;
    measurement.serverPerCycle = serverCost.perCycle;
  }
}
