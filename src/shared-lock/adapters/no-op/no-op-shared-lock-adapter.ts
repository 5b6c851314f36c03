import type { TimeSpan } from "../../../time-span/time-span.js";
import type {
  ISharedLockAdapter,
  SharedLockAdapterState,
  SharedLockReaderAcquireResult,
  SharedLockWriterAcquireResult,
} from "../../contracts/shared-lock-adapter.js";

/**
 * An adapter that always grants and stores nothing: for tests of code that takes an
 * `ISharedLockProvider` and should run as if the key were always free. It excludes nothing:
 * writers and readers all get in. Each acquire gets a new, increasing fencing token; releases,
 * refreshes and force releases answer `true`; `getState` always answers "nobody holds it".
 */
export class NoOpSharedLockAdapter implements ISharedLockAdapter {
  #lastToken = 0;

  async acquireWriter(
    _key: string,
    _lockId: string,
    _ttl: TimeSpan | null,
    _intent: TimeSpan | null,
  ): Promise<SharedLockWriterAcquireResult> {
    this.#lastToken += 1;
    return { acquired: true, fencingToken: this.#lastToken };
  }

  async releaseWriter(_key: string, _lockId: string): Promise<boolean> {
    return true;
  }

  async forceReleaseWriter(_key: string): Promise<boolean> {
    return true;
  }

  async refreshWriter(_key: string, _lockId: string, _ttl: TimeSpan): Promise<boolean> {
    return true;
  }

  async acquireReader(
    _key: string,
    _lockId: string,
    _limit: number,
    _ttl: TimeSpan | null,
  ): Promise<SharedLockReaderAcquireResult> {
    this.#lastToken += 1;
    return { acquired: true, fencingToken: this.#lastToken };
  }

  async releaseReader(_key: string, _lockId: string): Promise<boolean> {
    return true;
  }

  async forceReleaseAllReaders(_key: string): Promise<boolean> {
    return true;
  }

  async refreshReader(_key: string, _lockId: string, _ttl: TimeSpan): Promise<boolean> {
    return true;
  }

  async forceRelease(_key: string): Promise<boolean> {
    return true;
  }

  async getState(_key: string, _lockId: string): Promise<SharedLockAdapterState | null> {
    return null;
  }
}
