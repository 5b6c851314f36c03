// Every subject the bench knows, in table order per backend (baseline first, then hasp, then the
// peer libraries of issue 7, installed by bench/package.json).

import { asyncMutexMemory } from "./subjects/async-mutex.js";
import { databasesLockMemory } from "./subjects/databases-lock.js";
import { haspMemory, haspRedis } from "./subjects/hasp.js";
import { haspMongodb } from "./subjects/hasp-mongodb.js";
import { haspMysql, haspPostgres, haspSqlite } from "./subjects/hasp-sql.js";
import { rawMemory } from "./subjects/raw-memory.js";
import { rawMongodb } from "./subjects/raw-mongodb.js";
import { rawRedis } from "./subjects/raw-redis.js";
import { rawMysql, rawPostgres, rawSqlite } from "./subjects/raw-sql.js";
import { redisSemaphoreRedis } from "./subjects/redis-semaphore.js";
import { redlockRedis } from "./subjects/redlock.js";
import {
  verrouMemory,
  verrouMysql,
  verrouPostgres,
  verrouRedis,
  verrouSqlite,
} from "./subjects/verrou.js";
import type { SubjectDefinition } from "./types.js";

export const SUBJECTS: readonly SubjectDefinition[] = [
  rawRedis,
  haspRedis,
  verrouRedis,
  redlockRedis,
  redisSemaphoreRedis,
  rawMemory,
  haspMemory,
  verrouMemory,
  asyncMutexMemory,
  databasesLockMemory,
  rawPostgres,
  haspPostgres,
  verrouPostgres,
  rawMysql,
  haspMysql,
  verrouMysql,
  rawSqlite,
  haspSqlite,
  verrouSqlite,
  rawMongodb,
  haspMongodb,
];
