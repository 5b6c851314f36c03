// hasp against the peer libraries (issue 7): per backend and scenario, on throughput as a ratio
// to the raw baseline of the same rounds.

import { renderTable } from "./render-table.js";
import type { SubjectSummary } from "./report.js";
import type { BackendName, ScenarioName } from "./types.js";

/**
 * A peer library (issue 7): neither the raw baseline nor hasp. Peers are compared with hasp on
 * throughput as a ratio to the raw baseline of the same rounds.
 */
function isPeer(summary: SubjectSummary): boolean {
  return !summary.baseline && !summary.subject.startsWith("hasp-");
}

export type PeerComparison = {
  backend: BackendName;
  scenario: ScenarioName;
  hasp: { subject: string; ratio: number | null; statusText: string };
  /** The fastest peer that ran every round it was given without breaking exclusion. */
  fastest: { subject: string; ratio: number } | null;
  /** Peers left out of the comparison, and why (failed, broke exclusion). */
  excluded: Array<{ subject: string; statusText: string }>;
  pass: boolean;
};

/** Per backend and scenario: whether hasp's cycles/s (sections/s) are at or above every peer's. */
export function comparePeers(summaries: readonly SubjectSummary[]): PeerComparison[] {
  const backends = [...new Set(summaries.map((summary) => summary.backend))];
  const byBackend = backends.flatMap((backend) =>
    summaries.filter((summary) => summary.backend === backend),
  );
  return byBackend.flatMap((hasp): PeerComparison[] => {
    if (!hasp.subject.startsWith("hasp-")) {
      return [];
    }
    const peers = summaries.filter(
      (summary) =>
        isPeer(summary) && summary.backend === hasp.backend && summary.scenario === hasp.scenario,
    );
    if (peers.length === 0) {
      return [];
    }
    const compared = peers.filter(
      (peer) =>
        (peer.status === "ok" || peer.status === "starved") &&
        typeof peer.metrics.cyclesPerSecond?.ratio === "number",
    );
    let fastest: PeerComparison["fastest"] = null;
    for (const peer of compared) {
      const ratio = peer.metrics.cyclesPerSecond?.ratio ?? 0;
      if (fastest === null || ratio > fastest.ratio) {
        fastest = { subject: peer.subject, ratio };
      }
    }
    const ratio = hasp.metrics.cyclesPerSecond?.ratio ?? null;
    const haspRan = hasp.status === "ok" || hasp.status === "starved";
    return [
      {
        backend: hasp.backend,
        scenario: hasp.scenario,
        hasp: { subject: hasp.subject, ratio, statusText: hasp.statusText },
        fastest,
        excluded: peers
          .filter((peer) => !compared.includes(peer))
          .map((peer) => ({ subject: peer.subject, statusText: peer.statusText })),
        pass: haspRan && ratio !== null && (fastest === null || ratio >= fastest.ratio),
      },
    ];
  });
}

export function renderPeers(comparisons: readonly PeerComparison[]): string {
  if (comparisons.length === 0) {
    return "";
  }
  const times = (ratio: number | null) => (ratio === null ? "–" : `×${ratio.toFixed(2)}`);
  const status = (text: string) => text.replace(/:.*$/s, "");
  const rows = comparisons.map((comparison) => [
    `${comparison.backend} · ${comparison.scenario}`,
    comparison.hasp.statusText === "ok"
      ? `${comparison.hasp.subject} ${times(comparison.hasp.ratio)}`
      : `${comparison.hasp.subject} ${times(comparison.hasp.ratio)} (${status(comparison.hasp.statusText)})`,
    comparison.fastest === null
      ? "–"
      : `${comparison.fastest.subject} ${times(comparison.fastest.ratio)}`,
    comparison.pass ? "PASS" : "MISS",
    comparison.excluded.map((peer) => `${peer.subject}: ${status(peer.statusText)}`).join("; "),
  ]);
  return `hasp ≥ every peer (cycles/s or sections/s, each as × raw of the same rounds; a peer that failed or broke exclusion is left out)\n${renderTable(["backend · scenario", "hasp", "fastest peer", "result", "left out"], rows, [1, 2, 3])}`;
}
