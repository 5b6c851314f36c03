import { pauseUnref } from "../timers/timers.js";

/**
 * Pauses before each background try of a run's release that failed (ms): a connection that
 * was cut is usually back within them, and the key is then free long before its TTL.
 */
const RELEASE_RETRY_PAUSES_MS = [25, 100, 400];

/**
 * Tries a release that failed again, in the background, after each pause while `stillHeld()`,
 * until the backend answers (`released` is called when it answers `true`). Never rejects: a
 * failure waits for the next pause, or for the TTL.
 */
export async function retryRelease(
  stillHeld: () => boolean,
  send: () => Promise<boolean>,
  released: () => void,
): Promise<void> {
  for (const pause of RELEASE_RETRY_PAUSES_MS) {
    await pauseUnref(pause);
    if (!stillHeld()) {
      return;
    }
    try {
      if (await send()) {
        released();
      }
      return;
    } catch {
      // The next pause, or the TTL.
    }
  }
}
