import { createHash } from "node:crypto";
import { KEY_MAX_BYTES } from "./sql-statement.js";

const HASHED_PREFIX = "#sha256:";

/**
 * The key as stored: longer than the column (255 UTF-8 bytes), or looking like a hashed key,
 * it becomes `#sha256:` and its SHA-256, so any key works and no two keys share a row.
 */
export function storedKey(key: string): string {
  if (
    key.startsWith(HASHED_PREFIX) ||
    // A UTF-16 code unit is at most 3 UTF-8 bytes: a short key needs no count.
    (key.length * 3 > KEY_MAX_BYTES && Buffer.byteLength(key) > KEY_MAX_BYTES)
  ) {
    return HASHED_PREFIX + createHash("sha256").update(key).digest("hex");
  }
  return key;
}
