// The SQL adapter's way in to wait-queue/ until it is wired to it (issue 18: the adapter is being
// split by dialect meanwhile). Delete this file once src/lock/adapters/kysely/ imports
// wait-queue/ itself.

export { QueuedWaits } from "./wait-queue/queued-waits.js";
export { ENTRY_GRACE_MS } from "./wait-queue/wait-entry.js";
export type { LeaveMode, QueueEntry, WaitCheck, WaitQueue } from "./wait-queue/wait-queue.js";
