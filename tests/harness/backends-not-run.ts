/**
 * How a test that did not run for want of a backend is labelled, so that the summary reporter
 * can tell "no server" from "does not apply here" and name the backend. Kept free of vitest and
 * drivers: the reporter imports it in vitest's main process.
 */
import type { BackendName } from "./services.js";

/** Why a backend's tests did not run. */
export type NotRunReason = "no server" | "left out by HASP_BACKENDS";

/** The name of the `describe` block that holds a missing backend's tests (`describeWithBackend`). */
export function notRunSuiteName(backend: BackendName, reason: NotRunReason): string {
  return `${backend} (not run: ${reason})`;
}

/** A skip note for a test that needs several backends, some of them missing. */
export function notRunNote(
  missing: ReadonlyArray<{ backend: BackendName; reason: NotRunReason }>,
  detail: string,
): string {
  return `not run: ${missing.map(({ backend, reason }) => `${backend} (${reason})`).join(", ")}; ${detail}`;
}

const SUITE = /^(\w+) \(not run: (no server|left out by HASP_BACKENDS)\)$/;
const NOTE_ENTRY = /(\w+) \((no server|left out by HASP_BACKENDS)\)/g;

/** The backends a suite name or a skip note says were missing; none for any other skip. */
export function backendsNotRun(label: string): Array<{ backend: string; reason: NotRunReason }> {
  const suite = SUITE.exec(label);
  if (suite !== null) {
    return [{ backend: suite[1] ?? "", reason: suite[2] as NotRunReason }];
  }
  if (!label.startsWith("not run: ")) {
    return [];
  }
  const head = label.slice(0, label.indexOf(";") === -1 ? undefined : label.indexOf(";"));
  return [...head.matchAll(NOTE_ENTRY)].map((match) => ({
    backend: match[1] ?? "",
    reason: match[2] as NotRunReason,
  }));
}
