// The Lua scripts of RedisSharedLockAdapter. Each is one atomic step on the server, registered
// once per client with defineCommand as hasp_shared_lock_*. Both keys of a shared lock share its
// hash tag, so they live in one slot and the scripts run on Redis Cluster.
//
// Layout per shared lock key K (namespaced):
//   {K}        hash                 the readers: one field per reader slot, as the semaphore's
//                                   (redis-slots.ts): ":<lock id>" -> "<expiry ms>:<limit>:<token>",
//                                   followed by ":<inbox>:<wait id>" when SERVE handed it to a
//                                   queued wait (until the slot's next write);
//                                   the writer: "writer" -> "<expiry ms>:<token>:<inbox>:<wait
//                                   id>:<owner>" (expiry 0: never expires; inbox and wait id ""
//                                   unless SERVE handed it to a queued wait, until its next
//                                   write; the owner last, as it may hold ":");
//                                   "fence" -> the last token issued, for both sides.
//                                   The hash outlives its latest member by FENCE_GRACE_MS
//                                   (persists while one never expires): it expires with its last
//                                   member, the fence's grace after it
//   {K}:queue  list of waits        writers' and readers' claims in arrival order, in
//                                   wait-entry.ts's format (a writer's claim has limit ""); it
//                                   expires with its latest deadline
//   <inbox>    channel              one per adapter, where a hand-off names the wait it served
//
// Every script that decides reads the server's clock (TIME) and the whole hash: the expired
// writer and reader slots are dropped (HDEL) before it decides, so a crashed reader keeps a
// writer out no longer than its TTL, whoever calls next.

import { checkDurations } from "../../../backends/redis/redis-fence.js";
import {
  CLOCK,
  checkLimit,
  DROP,
  fits,
  isLive,
  parts,
  readSlots,
  SLOT_WRITES,
  SOONEST,
  scanSlots,
} from "../../../backends/redis/redis-slots.js";
import { REDIS_QUEUE_LUA } from "../../../backends/redis/redis-wait-queue.js";
import { NEVER_EXPIRES_TTL, WAIT_ENTRY_LUA } from "../../../backends/wait-queue/wait-entry.js";

/** The slot fragments, with the "writer" field read (and dropped when expired). */
const READ = readSlots({ writer: true });

/** Lua expression: the writer value `value`'s expiry, token, inbox, wait id and owner (strings). */
const writerParts = (value: string) =>
  `string.match(${value}, '^(%d+):(%d+):([^:]*):([^:]*):(.*)$')`;

/**
 * Lua after READ: `putWriter(owner, ttl, token, mark)`, the writer's value (into `writer`,
 * returned for the caller's HSET) expiring ttl ms from now ('': never), `mark` the
 * "<inbox>:<wait id>" of the wait it is handed to ("" for "" ":" ""); while a writer holds no
 * reader slot is live, so its expiry alone decides `persistent`. `writerLeft(value)`: ms left
 * of a writer value (-1: never expires). `freeWriter()`: drops the writer.
 */
const WRITER_WRITES = `local function putWriter(owner, ttl, token, mark)
  local expiry = 0
  if ttl == '' then
    persistent = true
  else
    persistent = false
    expiry = nowMs + tonumber(ttl)
    if expiry > latest then
      latest = expiry
    end
  end
  writer = string.format('%.0f', expiry) .. ':' .. token .. ':' .. mark .. ':' .. owner
  return writer
end
local function writerLeft(value)
  local expiry = tonumber(string.match(value, '^%d+'))
  return expiry == 0 and -1 or expiry - nowMs
end
local function freeWriter()
  redis.call('HDEL', KEYS[1], 'writer')
  writer = nil
  persistent = false
end`;

/**
 * Lua: `serve()`, the hand-off. The queue's waits, oldest first: a reader's claim gets a slot
 * (a new token, its TTL from now) while no writer holds and the limit rule admits it; a
 * writer's claim gets the key (a new token) while nobody holds it, nor was handed it earlier in
 * this serving. A reader's claim whose lock id already holds a live slot (two waits of one
 * owner) is passed over and stays queued, at the head, in its order. The first claim that
 * cannot be served stops the serving: no newcomer passes it. Waits whose deadline passed are
 * dropped on the way. Each handed hold is marked with its wait (only that wait's leave may free
 * it), and each served wait is told on its adapter's inbox. Writes the holds and the fence in
 * one HSET, the queue in one LTRIM. Returns whether anything was granted (the caller then calls
 * keep()).
 */
const SERVE = `local function serve()
  if writer or redis.call('EXISTS', KEYS[2]) == 0 then
    return false
  end
  local writes, skipped, keptUntil = {}, {}, 0
  -- One entry: true when it leaves the queue (served, or lapsed), false when it must wait.
  local function take(entry)
    ${WAIT_ENTRY_LUA.findDeadline}
    if ${WAIT_ENTRY_LUA.deadline} <= nowMs then
      return true
    end
    ${WAIT_ENTRY_LUA.readFields}
    local limit = ${WAIT_ENTRY_LUA.limit}
    local owner = ${WAIT_ENTRY_LUA.owner}
    if writer then
      return false
    end
    if limit == '' then
      if count > 0 then
        return false
      end
      writes[#writes + 1] = 'writer'
      writes[#writes + 1] = putWriter(owner, ttl, newToken(), inbox .. ':' .. wait)
    else
      local f = ':' .. owner
      if slots[f] then
        -- Another wait of the same lock id has the slot: this one stays queued (its abort must
        -- not free that slot), and the ones behind it are served.
        skipped[#skipped + 1] = entry
        keptUntil = math.max(keptUntil, ${WAIT_ENTRY_LUA.deadline})
        return true
      end
      if not ${fits("tonumber(limit)")} then
        return false
      end
      writes[#writes + 1] = f
      writes[#writes + 1] = put(f, ttl, limit, newToken()) .. ':' .. inbox .. ':' .. wait
    end
    redis.call('PUBLISH', inbox, wait)
    return true
  end
  -- A page at a time: a long queue is read only as far as it is served.
  local served, blocked = 0, false
  repeat
    local page = redis.call('LRANGE', KEYS[2], served, served + 31)
    for _, entry in ipairs(page) do
      if not take(entry) then
        blocked = true
        break
      end
      served = served + 1
    end
  until blocked or #page < 32
  if served > 0 then
    redis.call('LTRIM', KEYS[2], served, -1)
  end
  if #skipped > 0 then
    for i = #skipped, 1, -1 do
      redis.call('LPUSH', KEYS[2], skipped[i])
    end
    if redis.call('PTTL', KEYS[2]) < keptUntil - nowMs then
      redis.call('PEXPIRE', KEYS[2], keptUntil - nowMs)
    end
  end
  if #writes == 0 then
    return false
  end
  writes[#writes + 1] = 'fence'
  writes[#writes + 1] = last
  for i = 1, #writes, 1000 do
    redis.call('HSET', KEYS[1], unpack(writes, i, math.min(i + 999, #writes)))
  end
  return true
end`;

/**
 * Lua: `waiting()`, what a newcomer finds queued (after serve()): whether any live claim is
 * queued, whether a live writer's claim is, and whether the first live claim (past reader claims
 * whose lock id holds a slot, which SERVE passes over) is a reader's that its own, smaller limit
 * holds back.
 */
const WAITING = `local function waiting()
  local any, heldBack, first, from = false, false, true, 0
  repeat
    local page = redis.call('LRANGE', KEYS[2], from, from + 31)
    for _, entry in ipairs(page) do
      ${WAIT_ENTRY_LUA.findDeadline}
      if ${WAIT_ENTRY_LUA.deadline} > nowMs then
        ${WAIT_ENTRY_LUA.readFields}
        local limit = ${WAIT_ENTRY_LUA.limit}
        if limit == '' then
          return true, true, heldBack
        end
        any = true
        if first and not slots[':' .. ${WAIT_ENTRY_LUA.owner}] then
          first = false
          heldBack = count >= tonumber(limit)
        end
      end
    end
    from = from + 32
  until #page < 32
  return any, false, heldBack
end`;

/** Everything a script that decides opens with, after its argument checks. */
const PRELUDE = `${READ}
${WRITER_WRITES}
${SERVE}
${WAITING}
${SOONEST}`;

/**
 * KEYS[1] hash, KEYS[2] queue
 * ARGV[1] lock id, ARGV[2] ttl in ms ("" = never expires)
 * Returns the token (an integer) when the key was taken, or re-taken by its live writer (the
 * token kept, the TTL restarted); else {1, writer's owner, its ms left (-1: never expires)},
 * {2, live reader slots, ms until the soonest expires (-1: none expires)}, or {3} (a wait is
 * queued). The queue is served first.
 */
export const ACQUIRE_WRITER_SCRIPT = `
${checkDurations({ argv: 2, name: "ttl", also: [""] })}
${PRELUDE}
local queued = redis.call('EXISTS', KEYS[2]) == 1
if queued and serve() then
  keep()
end
if writer then
  local _, token, _, _, owner = ${writerParts("writer")}
  if owner ~= ARGV[1] then
    return {1, owner, writerLeft(writer)}
  end
  redis.call('HSET', KEYS[1], 'writer', putWriter(ARGV[1], ARGV[2], token, ':'))
  keep()
  return tonumber(token)
end
if count > 0 then
  return {2, count, soonest()}
end
if queued and waiting() then
  return {3}
end
local token = newToken()
redis.call('HSET', KEYS[1], 'writer', putWriter(ARGV[1], ARGV[2], token, ':'), 'fence', token)
keep()
return tonumber(token)
`;

/**
 * KEYS[1] hash, KEYS[2] queue
 * ARGV[1] lock id, ARGV[2] limit, ARGV[3] ttl in ms ("" = never expires)
 * Returns the token (an integer) when a slot was taken, or re-taken by its live holder (token
 * and limit kept, the TTL restarted: also at the limit or while a writer waits); else {1,
 * writer's owner, its ms left}, {2, live slots, soonest slot's ms left} (a writer's claim is
 * queued, or the first claim is held back by its own limit), or {3, limit in force, live
 * slots, soonest slot's ms left} (-1: none expires, -2: no slot live). The queue is served first.
 */
export const ACQUIRE_READER_SCRIPT = `
${checkLimit(2)}
${checkDurations({ argv: 3, name: "ttl", also: [""] })}
${PRELUDE}
local f = ':' .. ARGV[1]
local queued = redis.call('EXISTS', KEYS[2]) == 1
if queued and serve() then
  keep()
end
if writer then
  local _, _, _, _, owner = ${writerParts("writer")}
  return {1, owner, writerLeft(writer)}
end
local own = slots[f]
local token
if own then
  local _, limit
  _, limit, token = ${parts("own")}
  redis.call('HSET', KEYS[1], f, put(f, ARGV[3], limit, token))
  keep()
  return tonumber(token)
end
if queued then
  local _, writerQueued, heldBack = waiting()
  if writerQueued or heldBack then
    return {2, count, soonest()}
  end
end
if not ${fits("tonumber(ARGV[2])")} then
  return {3, math.min(tonumber(ARGV[2]), minLimit or tonumber(ARGV[2])), count, soonest()}
end
token = newToken()
redis.call('HSET', KEYS[1], f, put(f, ARGV[3], ARGV[2], token), 'fence', token)
keep()
return tonumber(token)
`;

/**
 * KEYS[1] hash, KEYS[2] queue
 * ARGV[1] lock id ("" with ARGV[2] "force": whoever writes), ARGV[2] "own" or "force"
 * Returns 1 when the live writer (ARGV[1]'s, or anyone's when forced) was freed, 0 when none
 * was. Either way the queue is served (with nobody queued, only the writer's field is read).
 */
export const RELEASE_WRITER_SCRIPT = `
${CLOCK}
-- Nobody queued: only the writer's field changes (a writer that never expired changes the
-- hash's TTL, below).
if redis.call('EXISTS', KEYS[2]) == 0 then
  local value = redis.call('HGET', KEYS[1], 'writer')
  if not ${isLive("value")} then
    return 0
  end
  local expiry, _, _, _, owner = ${writerParts("value")}
  if ARGV[2] ~= 'force' and owner ~= ARGV[1] then
    return 0
  end
  if expiry ~= '0' then
    redis.call('HDEL', KEYS[1], 'writer')
    return 1
  end
end
${scanSlots({ writer: true })}
${SLOT_WRITES}
${WRITER_WRITES}
${SERVE}
local freed = 0
if writer then
  local _, _, _, _, owner = ${writerParts("writer")}
  if ARGV[2] == 'force' or owner == ARGV[1] then
    freeWriter()
    freed = 1
  end
end
serve()
keep()
return freed
`;

/**
 * KEYS[1] hash, KEYS[2] queue
 * ARGV[1] lock id
 * Returns 1 when the lock id's live reader slot was freed, 0 when it held none. Either way the
 * queue is served (with nobody queued, only the slot's field is read).
 */
export const RELEASE_READER_SCRIPT = `
${CLOCK}
local f = ':' .. ARGV[1]
-- Nobody queued: only this slot changes (expired ones stay until a script that decides reads
-- them); one that never expired changes the hash's TTL, below.
if redis.call('EXISTS', KEYS[2]) == 0 then
  local own = redis.call('HGET', KEYS[1], f)
  if not ${isLive("own")} then
    return 0
  end
  if string.sub(own, 1, 2) ~= '0:' then
    redis.call('HDEL', KEYS[1], f)
    return 1
  end
end
${scanSlots({ writer: true })}
${SLOT_WRITES}
${WRITER_WRITES}
${SERVE}
${DROP}
local freed = 0
if slots[f] then
  drop(f)
  freed = 1
end
serve()
keep()
return freed
`;

/**
 * KEYS[1] hash, KEYS[2] queue
 * ARGV[1] "readers" (every reader slot) or "all" (the writer too)
 * Returns 1 when something live was freed, 0 otherwise. Either way the queue is served; the
 * fence stays, with its grace.
 */
export const FORCE_RELEASE_SCRIPT = `
${PRELUDE}
local freed = 0
if count > 0 then
  local fields = {}
  for f in pairs(slots) do
    fields[#fields + 1] = f
  end
  for i = 1, #fields, 1000 do
    redis.call('HDEL', KEYS[1], unpack(fields, i, math.min(i + 999, #fields)))
  end
  slots, count, minLimit, latest, persistent, freed = {}, 0, nil, nowMs, false, 1
end
if ARGV[1] == 'all' and writer then
  freeWriter()
  freed = 1
end
serve()
keep()
return freed
`;

/**
 * KEYS[1] hash, KEYS[2] queue
 * ARGV[1] lock id, ARGV[2] "writer" or "reader", ARGV[3] ttl in ms
 * Returns 1 when the lock id's live, expiring hold of that side got a new TTL (from now); 0
 * when it holds none, or its hold never expires (which stays as it is). Holds found expired go
 * to the queue first.
 */
export const REFRESH_SCRIPT = `
${checkDurations({ argv: 3, name: "ttl" })}
${PRELUDE}
if #expired > 0 and serve() then
  keep()
end
if ARGV[2] == 'writer' then
  if not writer then
    return 0
  end
  local expiry, token, _, _, owner = ${writerParts("writer")}
  if owner ~= ARGV[1] or expiry == '0' then
    return 0
  end
  redis.call('HSET', KEYS[1], 'writer', putWriter(owner, ARGV[3], token, ':'))
  keep()
  return 1
end
local f = ':' .. ARGV[1]
local own = slots[f]
if not own then
  return 0
end
local expiry, limit, token = ${parts("own")}
if expiry == '0' then
  return 0
end
redis.call('HSET', KEYS[1], f, put(f, ARGV[3], limit, token))
keep()
return 1
`;

/**
 * KEYS[1] hash, KEYS[2] queue
 * ARGV[1] lock id
 * Returns nil when nobody holds the key; {1, writer's owner, its ms left (-1: never expires),
 * its token}; or {2, limit in force, live slots, the lock id's token ("": no live slot), its
 * slot's ms left (-1: never expires), 1 when a live writer's claim is queued else 0}. Reads only:
 * expired holds are skipped, not dropped.
 */
export const GET_STATE_SCRIPT = `
${CLOCK}
local all = redis.call('HGETALL', KEYS[1])
local count, minLimit, token, left = 0, nil, '', -1
local mine = ':' .. ARGV[1]
for i = 1, #all, 2 do
  local field, value = all[i], all[i + 1]
  if field == 'writer' then
    if ${isLive("value")} then
      local expiry, wtoken, _, _, owner = ${writerParts("value")}
      return {1, owner, expiry == '0' and -1 or tonumber(expiry) - nowMs, wtoken}
    end
  elseif field ~= 'fence' and ${isLive("value")} then
    local expiry, limit, own = ${parts("value")}
    count = count + 1
    if not minLimit or tonumber(limit) < minLimit then
      minLimit = tonumber(limit)
    end
    if field == mine then
      token = own
      left = expiry == '0' and -1 or tonumber(expiry) - nowMs
    end
  end
end
if count == 0 then
  return false
end
local writerWaiting = 0
for _, entry in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  ${WAIT_ENTRY_LUA.findDeadline}
  if ${WAIT_ENTRY_LUA.deadline} > nowMs then
    ${WAIT_ENTRY_LUA.readFields}
    if ${WAIT_ENTRY_LUA.limit} == '' then
      writerWaiting = 1
      break
    end
  end
end
return {2, minLimit, count, token, left, writerWaiting}
`;

/**
 * KEYS[1] hash, KEYS[2] queue
 * ARGV[1] lock id of the claim, ARGV[2] its ttl in ms ("": never expires), ARGV[3] max wait in
 * ms, ARGV[4] the waiter's inbox channel, ARGV[5] wait id (neither with ":"), ARGV[6] the
 * claim's limit ("": a writer's claim)
 * Serves the queue first. A claim whose lock id holds a live hold of its side re-takes it (its
 * token negated: held before). Then a claim that acquireWriter or acquireReader would admit
 * takes its hold (its token). Else queues the wait behind the others: {entry, ms until what
 * it waits on may expire (-1: never, -2: nothing held)}, when the waiter checks (CHECK), since
 * an expiry sends nothing. The entry's deadline is the max wait from now, or that expiry plus
 * ENTRY_GRACE_MS when that ends sooner. The queue expires with its latest deadline.
 */
export const WAIT_SCRIPT = `
${checkDurations({ argv: 2, name: "ttl", also: [NEVER_EXPIRES_TTL] }, { argv: 3, name: "max wait" })}
if ARGV[6] ~= '' then
${checkLimit(6)}
end
${PRELUDE}
if serve() then
  keep()
end
local f = ':' .. ARGV[1]
if ARGV[6] == '' then
  if writer then
    local _, token, _, _, owner = ${writerParts("writer")}
    if owner == ARGV[1] then
      redis.call('HSET', KEYS[1], 'writer', putWriter(owner, ARGV[2], token, ':'))
      keep()
      return -tonumber(token)
    end
  elseif count == 0 and not waiting() then
    local token = newToken()
    redis.call('HSET', KEYS[1], 'writer', putWriter(ARGV[1], ARGV[2], token, ':'), 'fence', token)
    keep()
    return tonumber(token)
  end
elseif not writer then
  local own = slots[f]
  if own then
    local _, limit, token = ${parts("own")}
    redis.call('HSET', KEYS[1], f, put(f, ARGV[2], limit, token))
    keep()
    return -tonumber(token)
  end
  local _, writerQueued, heldBack = waiting()
  if not writerQueued and not heldBack and ${fits("tonumber(ARGV[6])")} then
    local token = newToken()
    redis.call('HSET', KEYS[1], f, put(f, ARGV[2], ARGV[6], token), 'fence', token)
    keep()
    return tonumber(token)
  end
end
local left = tonumber(ARGV[3])
local pttl = writer and writerLeft(writer) or soonest()
${REDIS_QUEUE_LUA.joinAndReturn("KEYS[2]", {
  ttl: "ARGV[2]",
  inbox: "ARGV[4]",
  id: "ARGV[5]",
  owner: "ARGV[1]",
  limit: "ARGV[6]",
})}
`;

/**
 * Lua shared by LEAVE and CHECK: `rest` and `mine()` of ARGV[1], a wait's entry as the wait last
 * heard of it; `side`, "" for a writer's claim (its limit field), else the reader's limit.
 */
const FIND_MINE = `${WAIT_ENTRY_LUA.findMine("ARGV[1]").replace("KEYS[3]", "KEYS[2]")}
local side, mark
do
  local entry = ARGV[1]
  ${WAIT_ENTRY_LUA.findDeadline}
  ${WAIT_ENTRY_LUA.readFields}
  side = ${WAIT_ENTRY_LUA.limit}
  mark = inbox .. ':' .. wait
end`;

/**
 * KEYS[1] hash, KEYS[2] queue
 * ARGV[1] the wait's queue entry (as WAIT_SCRIPT or its last check returned it), ARGV[2] lock
 * id of the claim, ARGV[3] "keep" (the wait ran out) or "release" (the wait was aborted, or its
 * adapter closed)
 * Both remove the entry. An entry still queued was handed nothing: 0. One that is gone while
 * the claim's lock id holds a live hold of the claim's side: "keep" answers its token;
 * "release" frees it only when SERVE handed it to this very wait (marked with the wait's inbox
 * and id): another wait of the lock id, or a call that re-took or refreshed it since, counts on
 * it. With "release", the queue is served in any case. Returns the claim's token when it keeps
 * a hold handed to it; 0 otherwise.
 */
export const LEAVE_SCRIPT = `
${FIND_MINE}
${REDIS_QUEUE_LUA.leaveIfQueued("KEYS[2]")}
${PRELUDE}
${DROP}
local f = ':' .. ARGV[2]
if side == '' then
  if writer then
    local _, token, inbox, wait, owner = ${writerParts("writer")}
    if owner == ARGV[2] then
      if ARGV[3] == 'keep' then
        return tonumber(token)
      end
      if inbox .. ':' .. wait == mark then
        freeWriter()
      end
    end
  end
else
  local own = slots[f]
  if own and ARGV[3] == 'keep' then
    local _, _, token = ${parts("own")}
    return tonumber(token)
  end
  if own and string.sub(own, -#mark - 1) == ':' .. mark then
    drop(f)
  end
end
if ARGV[3] == 'release' then
  serve()
  keep()
end
return 0
`;

/**
 * KEYS[1] hash, KEYS[2] queue
 * ARGV[1] the wait's queue entry, ARGV[2] lock id of the claim, ARGV[3] ms left of the wait,
 * ARGV[4] "1" when the waiter's clock says what it waited on has run out, else "0"
 * A queued wait asks whether it was handed its hold. The queue is served first. An entry gone
 * without a hold of its own (a restart of Redis lost the queue) goes back at the end, and then
 * the queue is served only with ARGV[4] "1". Returns {1, token, ms left of the hold (-1: never
 * expires)}: handed it (its entry gone, the hold live); {0, ms until what it waits on may expire
 * (-1: never, -2: nothing held), the renewed entry}: still queued; {-1, 0}: neither.
 */
export const CHECK_SCRIPT = `
${checkDurations({ argv: 3, name: "wait left" })}
${CLOCK}
${FIND_MINE}
local left = tonumber(ARGV[3])
local f = ':' .. ARGV[2]
local lost = false
-- A hand-off's check first: the entry gone and the hold live (one field read, not the hash).
local function handed(value)
  if side == '' then
    if ${isLive("value")} then
      local expiry, token, _, _, owner = ${writerParts("value")}
      if owner == ARGV[2] then
        return {1, tonumber(token), expiry == '0' and -1 or tonumber(expiry) - nowMs}
      end
    end
  elseif ${isLive("value")} then
    local expiry, _, token = ${parts("value")}
    return {1, tonumber(token), expiry == '0' and -1 or tonumber(expiry) - nowMs}
  end
  return nil
end
if not mine() then
  local got = handed(redis.call('HGET', KEYS[1], side == '' and 'writer' or f))
  if got then
    return got
  end
  redis.call('RPUSH', KEYS[2], ${WAIT_ENTRY_LUA.renewed("nowMs + left")})
  lost = true
end
${scanSlots({ writer: true })}
${SLOT_WRITES}
${WRITER_WRITES}
${SERVE}
${WAITING}
${SOONEST}
if (ARGV[4] == '1' or not lost) and serve() then
  keep()
end
local index = mine()
if not index then
  local got
  if side == '' then
    got = writer and handed(writer)
  else
    got = handed(slots[f])
  end
  if got then
    return got
  end
  return {-1, 0}
end
local pttl = writer and writerLeft(writer) or soonest()
${REDIS_QUEUE_LUA.renewAndReturn("KEYS[2]")}
`;
