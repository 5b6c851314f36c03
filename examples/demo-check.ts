// The demo's verdict on the section log the workers wrote (see demo.ts), in its own words.
import { checkSections as check, type SectionRecord } from "./processes/check-sections.js";

/** What the check found, one sentence per problem. */
export type SectionCheck = { overlaps: string[]; tokenErrors: string[] };

/**
 * Per key, in the order the sections started: each one starts after every earlier one ended
 * (no overlapping holds), and carries a greater fencing token than those before it.
 */
export function checkSections(records: readonly SectionRecord[]): SectionCheck {
  const describe = (s: SectionRecord) =>
    `${s.worker} (token ${s.token}, ${(s.start / 1000).toFixed(3)}-${(s.end / 1000).toFixed(3)} s)`;
  const overlaps: string[] = [];
  const tokenErrors: string[] = [];
  for (const finding of check(records).findings) {
    if (finding.kind === "overlap") {
      overlaps.push(
        `${finding.key}: ${describe(finding.first)} and ${describe(finding.second)} overlap`,
      );
    } else if (finding.kind === "token") {
      tokenErrors.push(
        `${finding.key}: ${describe(finding.section)} does not carry a greater token than ${describe(finding.earlier)}`,
      );
    }
  }
  return { overlaps, tokenErrors };
}
