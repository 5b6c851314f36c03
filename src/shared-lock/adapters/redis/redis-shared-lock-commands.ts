import type { RedisClient } from "../../../backends/redis/redis-client.js";
import { defineRedisCommands } from "../../../backends/redis/redis-commands.js";
import type { RedisCheckReply, RedisWaitReply } from "../../../backends/redis/redis-wait-queue.js";
import type { LeaveMode } from "../../../backends/wait-queue/wait-queue.js";
import {
  ACQUIRE_READER_SCRIPT,
  ACQUIRE_WRITER_SCRIPT,
  CHECK_SCRIPT,
  FORCE_RELEASE_SCRIPT,
  GET_STATE_SCRIPT,
  LEAVE_SCRIPT,
  REFRESH_SCRIPT,
  RELEASE_READER_SCRIPT,
  RELEASE_WRITER_SCRIPT,
  WAIT_SCRIPT,
} from "./redis-shared-lock-scripts.js";

/**
 * The writer acquire's answer: the token, or {1, owner, writer's PTTL}, {2, live reader slots,
 * soonest slot's PTTL}, {3} (a wait is queued).
 */
export type WriterAcquireReply =
  | number
  | [blocker: 1, owner: string, pttl: number]
  | [blocker: 2, count: number, soonest: number]
  | [blocker: 3];

/**
 * The reader acquire's answer: the token, or {1, owner, writer's PTTL}, {2, live slots, soonest
 * slot's PTTL} (waiters), {3, limit in force, live slots, soonest slot's PTTL} (the limit).
 */
export type ReaderAcquireReply =
  | number
  | [blocker: 1, owner: string, pttl: number]
  | [blocker: 2, count: number, soonest: number]
  | [blocker: 3, limit: number, count: number, soonest: number];

/** getState's answer: nil, the writer, or the readers (see GET_STATE_SCRIPT). */
export type StateReply =
  | null
  | [heldBy: 1, owner: string, pttl: number, token: string]
  | [heldBy: 2, limit: number, count: number, token: string, left: number, writerWaiting: number];

/** The scripts as ioredis commands on the client, once `defineCommand` registered them. */
export type RedisSharedLockCommands = {
  hasp_shared_lock_acquire_writer(
    hash: string,
    queue: string,
    lockId: string,
    ttl: string,
  ): Promise<WriterAcquireReply>;
  hasp_shared_lock_acquire_reader(
    hash: string,
    queue: string,
    lockId: string,
    limit: string,
    ttl: string,
  ): Promise<ReaderAcquireReply>;
  hasp_shared_lock_release_writer(
    hash: string,
    queue: string,
    lockId: string,
    mode: "own" | "force",
  ): Promise<number>;
  hasp_shared_lock_release_reader(hash: string, queue: string, lockId: string): Promise<number>;
  hasp_shared_lock_force_release(
    hash: string,
    queue: string,
    what: "readers" | "all",
  ): Promise<number>;
  hasp_shared_lock_refresh(
    hash: string,
    queue: string,
    lockId: string,
    side: "writer" | "reader",
    ttl: string,
  ): Promise<number>;
  hasp_shared_lock_get_state(hash: string, queue: string, lockId: string): Promise<StateReply>;
  hasp_shared_lock_wait(
    hash: string,
    queue: string,
    lockId: string,
    ttl: string,
    maxWait: string,
    inbox: string,
    waitId: string,
    limit: string,
  ): Promise<RedisWaitReply>;
  hasp_shared_lock_leave(
    hash: string,
    queue: string,
    entry: string,
    lockId: string,
    mode: LeaveMode,
  ): Promise<number>;
  hasp_shared_lock_check(
    hash: string,
    queue: string,
    entry: string,
    lockId: string,
    left: string,
    serve: "0" | "1",
  ): Promise<RedisCheckReply>;
};

const COMMANDS = {
  hasp_shared_lock_acquire_writer: { numberOfKeys: 2, lua: ACQUIRE_WRITER_SCRIPT },
  hasp_shared_lock_acquire_reader: { numberOfKeys: 2, lua: ACQUIRE_READER_SCRIPT },
  hasp_shared_lock_release_writer: { numberOfKeys: 2, lua: RELEASE_WRITER_SCRIPT },
  hasp_shared_lock_release_reader: { numberOfKeys: 2, lua: RELEASE_READER_SCRIPT },
  hasp_shared_lock_force_release: { numberOfKeys: 2, lua: FORCE_RELEASE_SCRIPT },
  hasp_shared_lock_refresh: { numberOfKeys: 2, lua: REFRESH_SCRIPT },
  hasp_shared_lock_get_state: { numberOfKeys: 2, lua: GET_STATE_SCRIPT },
  hasp_shared_lock_wait: { numberOfKeys: 2, lua: WAIT_SCRIPT },
  hasp_shared_lock_leave: { numberOfKeys: 2, lua: LEAVE_SCRIPT },
  hasp_shared_lock_check: { numberOfKeys: 2, lua: CHECK_SCRIPT },
} as const;

/** Registers the scripts on `client` (once per adapter), which then runs them as commands. */
export function defineRedisSharedLockCommands(client: RedisClient): RedisSharedLockCommands {
  return defineRedisCommands<RedisSharedLockCommands>(client, COMMANDS);
}
