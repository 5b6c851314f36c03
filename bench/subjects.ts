// Every subject the bench knows, in table order per backend (baseline first). Issue 7 adds the
// peers here: verrou, redlock, redis-semaphore, async-mutex, @databases/lock.

import { haspMemory, haspRedis } from "./subjects/hasp.js";
import { haspMysql, haspPostgres, haspSqlite } from "./subjects/hasp-sql.js";
import { rawMemory } from "./subjects/raw-memory.js";
import { rawRedis } from "./subjects/raw-redis.js";
import { rawMysql, rawPostgres, rawSqlite } from "./subjects/raw-sql.js";
import type { SubjectDefinition } from "./types.js";

export const SUBJECTS: readonly SubjectDefinition[] = [
  rawRedis,
  haspRedis,
  rawMemory,
  haspMemory,
  rawPostgres,
  haspPostgres,
  rawMysql,
  haspMysql,
  rawSqlite,
  haspSqlite,
];
