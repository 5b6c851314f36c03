// The cut-off of a blocking acquire: whatever the backend does, the acquire ends by then. Any
// primitive's blocking acquire (a lock, a semaphore's slot) races its backend calls against one
// (see `acquireBlocking`).

/**
 * How long past its `time` a blocking acquire still waits for the backend's answer to a call
 * under way (ms). A healthy backend answers well within it (Redis in under a millisecond, SQL in
 * a few, a distant or majority-acknowledged write in tens); one that does not (stopped, its
 * connection hanging, a statement blocked on a row lock) is given up on, and the acquire
 * resolves `false` (or throws `FailedAcquireLockError`) at `time` plus this, at the latest.
 */
export const BLOCKING_SLACK_MS = 250;
