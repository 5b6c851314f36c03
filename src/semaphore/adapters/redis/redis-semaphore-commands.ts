import type { RedisClient } from "../../../backends/redis/redis-client.js";
import { defineRedisCommands } from "../../../backends/redis/redis-commands.js";
import type { RedisCheckReply, RedisWaitReply } from "../../../backends/redis/redis-wait-queue.js";
import type { LeaveMode } from "../../../backends/wait-queue/wait-queue.js";
import {
  ACQUIRE_SCRIPT,
  CHECK_SCRIPT,
  FORCE_RELEASE_ALL_SCRIPT,
  GET_STATE_SCRIPT,
  LEAVE_SCRIPT,
  REFRESH_SCRIPT,
  RELEASE_SCRIPT,
  WAIT_SCRIPT,
} from "./redis-semaphore-scripts.js";

/** The acquire script's answer: the token, or the limit in force, live slots, soonest PTTL. */
export type SemaphoreAcquireReply = number | [limit: number, count: number, soonest: number];

/** The scripts as ioredis commands on the client, once `defineCommand` registered them. */
export type RedisSemaphoreCommands = {
  hasp_semaphore_acquire(
    slots: string,
    queue: string,
    slotId: string,
    limit: string,
    ttl: string,
  ): Promise<SemaphoreAcquireReply>;
  hasp_semaphore_release(slots: string, queue: string, slotId: string): Promise<number>;
  hasp_semaphore_force_release_all(slots: string, queue: string): Promise<number>;
  hasp_semaphore_refresh(
    slots: string,
    queue: string,
    slotId: string,
    ttl: string,
  ): Promise<number>;
  /** nil, or the limit in force, live slots, the slot id's token ("": none), its ms left. */
  hasp_semaphore_get_state(
    slots: string,
    slotId: string,
  ): Promise<[limit: number, count: number, token: string, left: number] | null>;
  hasp_semaphore_wait(
    slots: string,
    queue: string,
    slotId: string,
    ttl: string,
    maxWait: string,
    inbox: string,
    waitId: string,
    limit: string,
  ): Promise<RedisWaitReply>;
  hasp_semaphore_leave(
    slots: string,
    queue: string,
    entry: string,
    slotId: string,
    mode: LeaveMode,
  ): Promise<number>;
  hasp_semaphore_check(
    slots: string,
    queue: string,
    entry: string,
    slotId: string,
    left: string,
    serve: "0" | "1",
  ): Promise<RedisCheckReply>;
};

const COMMANDS = {
  hasp_semaphore_acquire: { numberOfKeys: 2, lua: ACQUIRE_SCRIPT },
  hasp_semaphore_release: { numberOfKeys: 2, lua: RELEASE_SCRIPT },
  hasp_semaphore_force_release_all: { numberOfKeys: 2, lua: FORCE_RELEASE_ALL_SCRIPT },
  hasp_semaphore_refresh: { numberOfKeys: 2, lua: REFRESH_SCRIPT },
  hasp_semaphore_get_state: { numberOfKeys: 1, lua: GET_STATE_SCRIPT },
  hasp_semaphore_wait: { numberOfKeys: 2, lua: WAIT_SCRIPT },
  hasp_semaphore_leave: { numberOfKeys: 2, lua: LEAVE_SCRIPT },
  hasp_semaphore_check: { numberOfKeys: 2, lua: CHECK_SCRIPT },
} as const;

/** Registers the scripts on `client` (once per adapter), which then runs them as commands. */
export function defineRedisSemaphoreCommands(client: RedisClient): RedisSemaphoreCommands {
  return defineRedisCommands<RedisSemaphoreCommands>(client, COMMANDS);
}
