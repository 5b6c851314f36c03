import type { TimeSpan } from "../../../time-span/time-span.js";
import type {
  ISemaphoreAdapter,
  SemaphoreAcquireResult,
  SemaphoreAdapterState,
} from "../../contracts/semaphore-adapter.js";

/**
 * An adapter that always grants and stores nothing: for tests of code that takes an
 * `ISemaphoreProvider` and should run as if a slot were always free. It limits nothing. Each
 * acquire gets a new, increasing fencing token; `getState` always answers "no slot live".
 */
export class NoOpSemaphoreAdapter implements ISemaphoreAdapter {
  #lastToken = 0;

  async acquire(
    _key: string,
    _slotId: string,
    _limit: number,
    _ttl: TimeSpan | null,
  ): Promise<SemaphoreAcquireResult> {
    this.#lastToken += 1;
    return { acquired: true, fencingToken: this.#lastToken };
  }

  async release(_key: string, _slotId: string): Promise<boolean> {
    return true;
  }

  async forceReleaseAll(_key: string): Promise<boolean> {
    return true;
  }

  async refresh(_key: string, _slotId: string, _ttl: TimeSpan): Promise<boolean> {
    return true;
  }

  async getState(_key: string, _slotId: string): Promise<SemaphoreAdapterState | null> {
    return null;
  }
}
