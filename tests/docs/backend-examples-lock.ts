/**
 * The docs' examples use fixed keys and tables (`invoice:42`, `hasp_locks`), so the source run
 * (tests/docs) and the package run (tests/package) of an example that talks to a server must not
 * overlap. Each holds this machine-wide lock while it runs one.
 */

import { TimeSpan } from "../../src/time-span/index.js";
import { closeMachineLock, withMachineLock } from "../harness/machine-lock.js";

/** Runs `fn` while no other process runs a docs example against a server. */
export function withBackendExampleLock<T>(fn: () => Promise<T>): Promise<T> {
  return withMachineLock("docs-examples:backends", fn, TimeSpan.fromMinutes(5));
}

export const closeBackendExampleLock = closeMachineLock;
