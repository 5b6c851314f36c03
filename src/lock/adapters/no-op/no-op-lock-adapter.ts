import type { TimeSpan } from "../../../time-span/time-span.js";
import type {
  ILockAdapter,
  LockAcquireResult,
  LockAdapterState,
} from "../../contracts/lock-adapter.js";

/**
 * An adapter that always succeeds and stores nothing: for tests of code that takes an
 * `ILockProvider` and should run as if every lock were free. It gives no exclusion at all.
 * Each acquire gets a new, increasing fencing token; `getState` always answers "free".
 */
export class NoOpLockAdapter implements ILockAdapter {
  #lastToken = 0;

  async acquire(_key: string, _lockId: string, _ttl: TimeSpan | null): Promise<LockAcquireResult> {
    this.#lastToken += 1;
    return { acquired: true, fencingToken: this.#lastToken };
  }

  async release(_key: string, _lockId: string): Promise<boolean> {
    return true;
  }

  async forceRelease(_key: string): Promise<boolean> {
    return true;
  }

  async refresh(_key: string, _lockId: string, _ttl: TimeSpan): Promise<boolean> {
    return true;
  }

  async getState(_key: string): Promise<LockAdapterState | null> {
    return null;
  }
}
