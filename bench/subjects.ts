// Every subject the bench knows, in table order per backend (baseline first). Issue 7 adds the
// peers here: verrou, redlock, redis-semaphore, async-mutex, @databases/lock, and SQL.

import { haspMemory, haspRedis } from "./subjects/hasp.js";
import { rawMemory } from "./subjects/raw-memory.js";
import { rawRedis } from "./subjects/raw-redis.js";
import type { SubjectDefinition } from "./types.js";

export const SUBJECTS: readonly SubjectDefinition[] = [rawRedis, haspRedis, rawMemory, haspMemory];
