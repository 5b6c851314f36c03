import { MemorySharedLockAdapter } from "../../src/shared-lock/adapters/memory/memory-shared-lock-adapter.js";
import { sharedLockProviderTestSuite } from "../../src/shared-lock/test-suites/shared-lock-provider-test-suite.js";

sharedLockProviderTestSuite({ createAdapter: () => new MemorySharedLockAdapter() });
