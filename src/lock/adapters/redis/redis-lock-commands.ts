import type { RedisClient } from "../../../backends/redis/redis-client.js";
import { defineRedisCommands } from "../../../backends/redis/redis-commands.js";
import type { RedisCheckReply, RedisWaitReply } from "../../../backends/redis/redis-wait-queue.js";
import type { LeaveMode } from "../../../backends/wait-queue/wait-queue.js";
import {
  ACQUIRE_NOTING_SCRIPT,
  ACQUIRE_SCRIPT,
  CHECK_SCRIPT,
  FORCE_RELEASE_SCRIPT,
  GET_STATE_SCRIPT,
  LEAVE_SCRIPT,
  REFRESH_NOTING_SCRIPT,
  REFRESH_SCRIPT,
  RELEASE_SCRIPT,
  RESTORE_EXPIRY_SCRIPT,
  WAIT_SCRIPT,
} from "./redis-lock-scripts.js";

/** The acquire script's answer: the token, or the holder and its PTTL. */
export type AcquireReply = number | [owner: string, pttl: number];

/**
 * A noting script's answer: the script's own reply, and the owner's hold before it, its token
 * ("": none) and its expiry in ms of the server's clock (-1: never).
 */
export type NotedReply<TReply> = [reply: TReply, token: string, expiry: number];

/** The scripts as ioredis commands on the client, once `defineCommand` registered them. */
export type RedisLockCommands = {
  hasp_lock_acquire(hold: string, fence: string, owner: string, ttl: string): Promise<AcquireReply>;
  hasp_lock_release(hold: string, fence: string, queue: string, owner: string): Promise<number>;
  hasp_lock_force_release(hold: string, fence: string, queue: string): Promise<number>;
  /** The token when the key was taken at once, else the queue entry and the holder's PTTL. */
  hasp_lock_wait(
    hold: string,
    fence: string,
    queue: string,
    owner: string,
    ttl: string,
    maxWait: string,
    inbox: string,
    waitId: string,
  ): Promise<RedisWaitReply>;
  hasp_lock_leave(
    hold: string,
    fence: string,
    queue: string,
    entry: string,
    owner: string,
    mode: LeaveMode,
  ): Promise<number>;
  /** {1, token, pttl}: handed the key; {0, pttl, entry}: still queued (renewed); {-1, 0}: gone. */
  hasp_lock_check(
    hold: string,
    fence: string,
    queue: string,
    entry: string,
    owner: string,
    left: string,
    serve: "0" | "1",
  ): Promise<RedisCheckReply>;
  hasp_lock_refresh(hold: string, fence: string, owner: string, ttl: string): Promise<number>;
  hasp_lock_get_state(hold: string): Promise<[string, string, number] | null>;
  hasp_lock_acquire_noting(
    hold: string,
    fence: string,
    owner: string,
    ttl: string,
  ): Promise<NotedReply<AcquireReply>>;
  hasp_lock_refresh_noting(
    hold: string,
    fence: string,
    owner: string,
    ttl: string,
  ): Promise<NotedReply<number>>;
  hasp_lock_restore_expiry(
    hold: string,
    fence: string,
    owner: string,
    token: string,
    expiry: string,
  ): Promise<number>;
};

const COMMANDS = {
  hasp_lock_acquire: { numberOfKeys: 2, lua: ACQUIRE_SCRIPT },
  hasp_lock_release: { numberOfKeys: 3, lua: RELEASE_SCRIPT },
  hasp_lock_force_release: { numberOfKeys: 3, lua: FORCE_RELEASE_SCRIPT },
  hasp_lock_wait: { numberOfKeys: 3, lua: WAIT_SCRIPT },
  hasp_lock_leave: { numberOfKeys: 3, lua: LEAVE_SCRIPT },
  hasp_lock_check: { numberOfKeys: 3, lua: CHECK_SCRIPT },
  hasp_lock_refresh: { numberOfKeys: 2, lua: REFRESH_SCRIPT },
  hasp_lock_get_state: { numberOfKeys: 1, lua: GET_STATE_SCRIPT },
  hasp_lock_acquire_noting: { numberOfKeys: 2, lua: ACQUIRE_NOTING_SCRIPT },
  hasp_lock_refresh_noting: { numberOfKeys: 2, lua: REFRESH_NOTING_SCRIPT },
  hasp_lock_restore_expiry: { numberOfKeys: 2, lua: RESTORE_EXPIRY_SCRIPT },
} as const;

/** Registers the scripts on `client` (once per adapter), which then runs them as commands. */
export function defineRedisLockCommands(client: RedisClient): RedisLockCommands {
  return defineRedisCommands<RedisLockCommands>(client, COMMANDS);
}
