// Redis runs every script under one name (EVALSHA), so commandstats cannot tell a subject's
// acquire script from its release script within a window of cycles. After the seq window, the
// child measures them apart: a batch of acquires on fresh keys, then their releases, with the
// server's counters read between the two.

import { SCRIPT_COMMANDS, type ServerProbe } from "./server-cpu.js";
import type { Held, ScriptSplit, SplitPhase, SubjectFixture } from "./types.js";

/** Operations of each batch: enough for a stable usec per call, short beside the window. */
const SPLIT_OPERATIONS = 1_000;

function phaseOf(
  operation: SplitPhase["operation"],
  cost: ReturnType<ServerProbe["cost"]>,
  operations: number,
): SplitPhase {
  const { counters } = cost;
  const named = (suffix: string) =>
    Object.entries(counters)
      .filter(([name, value]) => name.endsWith(suffix) && value > 0)
      .map(([name, value]) => [name.slice(0, -suffix.length), value] as const);
  const sentNames = named(".sent");
  // `evalsha` is also counted under each script's name: keep the names.
  const sent = Object.fromEntries(
    sentNames.filter(([name]) => !sentNames.some(([other]) => other.startsWith(`${name} `))),
  );
  const nested = Object.fromEntries(
    named(".calls")
      .map(([name, calls]) => [name, calls - (counters[`${name}.sent`] ?? 0)] as const)
      .filter(([name, calls]) => calls > 0.005 && !SCRIPT_COMMANDS.has(name)),
  );
  return {
    operation,
    operations,
    sent,
    nested,
    usecPerOperation: cost.perCycle,
    note: cost.note,
  };
}

/** Acquires then releases `SPLIT_OPERATIONS` fresh keys on a client of its own. */
export async function splitScripts(
  fixture: SubjectFixture,
  probe: ServerProbe,
): Promise<ScriptSplit> {
  const client = await fixture.connect();
  const held: Held[] = [];
  const start = await probe.sample();
  for (let index = 0; index < SPLIT_OPERATIONS; index += 1) {
    const hold = await client.tryAcquire(`split${index}`);
    if (hold === null) {
      throw new Error(`the fresh key "split${index}" was reported held`);
    }
    held.push(hold);
  }
  const middle = await probe.sample();
  for (const hold of held) {
    await hold.release();
  }
  const end = await probe.sample();
  return {
    phases: [
      phaseOf("acquire", probe.cost(start, middle, SPLIT_OPERATIONS), SPLIT_OPERATIONS),
      phaseOf("release", probe.cost(middle, end, SPLIT_OPERATIONS), SPLIT_OPERATIONS),
    ],
  };
}
