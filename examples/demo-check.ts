// The demo's verdict on the section log the workers wrote (see demo.ts).
import type { SectionRecord } from "./demo-protocol.js";

/** What the check found, one sentence per problem. */
export type SectionCheck = { overlaps: string[]; tokenErrors: string[] };

/**
 * Per key, in the order the sections started: each one starts after every earlier one ended
 * (no overlapping holds), and carries a greater fencing token than the one before it.
 */
export function checkSections(records: readonly SectionRecord[]): SectionCheck {
  const overlaps: string[] = [];
  const tokenErrors: string[] = [];
  const describe = (s: SectionRecord) =>
    `${s.worker} (token ${s.token}, ${(s.start / 1000).toFixed(3)}-${(s.end / 1000).toFixed(3)} s)`;
  const byKey = new Map<string, SectionRecord[]>();
  for (const record of records) {
    const sections = byKey.get(record.key) ?? [];
    sections.push(record);
    byKey.set(record.key, sections);
  }
  for (const [key, sections] of byKey) {
    sections.sort((a, b) => a.start - b.start || a.end - b.end);
    // The section that ends last among those started so far, and the one started just before.
    let latest: SectionRecord | undefined;
    let previous: SectionRecord | undefined;
    for (const section of sections) {
      if (latest !== undefined && section.start <= latest.end) {
        overlaps.push(`${key}: ${describe(latest)} and ${describe(section)} overlap`);
      }
      if (previous !== undefined && section.token <= previous.token) {
        tokenErrors.push(
          `${key}: ${describe(section)} does not carry a greater token than ${describe(previous)}`,
        );
      }
      if (latest === undefined || section.end > latest.end) {
        latest = section;
      }
      previous = section;
    }
  }
  return { overlaps, tokenErrors };
}
