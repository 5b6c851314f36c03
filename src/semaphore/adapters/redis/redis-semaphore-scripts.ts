// The Lua scripts of RedisSemaphoreAdapter. Each is one atomic step on the server, registered
// once per client with defineCommand as hasp_semaphore_*. Both keys of a semaphore share its
// hash tag, so they live in one slot and the scripts run on Redis Cluster.
//
// Layout per semaphore key K (namespaced):
//   {K}        hash                 one field per slot, ":<slot id>" -> "<expiry ms>:<limit>:<token>"
//                                   (expiry on the server's clock, 0: never expires), followed by
//                                   ":<inbox>:<wait id>" when SERVE handed it to a queued wait
//                                   (until the slot's next write), and the
//                                   field "fence" -> the last token issued (no slot field is
//                                   "fence": theirs begin with ":"). The hash outlives its latest
//                                   slot by FENCE_GRACE_MS (persists while a slot never expires),
//                                   so it expires with its last slot, the fence's grace after it
//   {K}:queue  list of waits        blocked acquires, oldest first, in wait-entry.ts's format
//                                   with the claim's limit; expires with its latest deadline
//   <inbox>    channel              one per adapter, where a hand-off names the wait it served:
//                                   a wake-up only (anyone may PUBLISH); the wait asks CHECK
//
// Every script reads the server's clock (TIME) and the whole hash (HGETALL, O(live slots)):
// expired slots are dropped (HDEL) before the script decides anything. One hash rather than a
// sorted set of expiries beside a hash of tokens: a write costs about ten reads on the server,
// and a semaphore's slots are few, so scanning them is cheaper than keeping a second key.
//
// The limit rule: a slot is taken only while the live slots number fewer than the taker's limit
// and fewer than every live slot's own limit (kept in its field).

import { checkDurations, NOW_MS } from "../../../backends/redis/redis-fence.js";
import {
  CLOCK,
  checkLimit,
  DROP,
  FREE,
  fits,
  isLive,
  parts,
  readSlots,
  SLOT_WRITES,
  SOONEST,
  scanSlots,
} from "../../../backends/redis/redis-slots.js";
import { REDIS_QUEUE_LUA } from "../../../backends/redis/redis-wait-queue.js";
import {
  NEVER_EXPIRES_TTL,
  NO_CLAIM_TTL,
  WAIT_ENTRY_LUA,
} from "../../../backends/wait-queue/wait-entry.js";

/** The slot fragments (redis-slots.ts), over a hash of slots only. */
const SCAN = scanSlots({ writer: false });
const READ_SLOTS = readSlots({ writer: false });

/**
 * Lua: `serve()`, the hand-off. The queue's waits, oldest first, take the free slots while the
 * limit rule admits them: a claim gets a slot as ACQUIRE_SCRIPT gives it (a new token, its TTL
 * from now), a wait without a claim is woken to try (one slot kept free for it). A claim whose
 * slot id already holds a live slot (two waits of one holder) is passed over and stays queued,
 * at the head, in its order. The first live claim that does not fit stops the serving:
 * no newcomer passes it. Waits whose deadline passed are dropped on the way. Each served wait is
 * told on its adapter's inbox. Writes the slots granted and the fence in one HSET, the queue in
 * one LTRIM. Returns whether anything was granted (the caller then calls keep()), and sets
 * `blockedQueue` when a claim that does not fit stopped it.
 */
const SERVE = `local blockedQueue = false
local function serve()
  if not ${FREE} or redis.call('EXISTS', KEYS[2]) == 0 then
    return false
  end
  local woken, writes, skipped, keptUntil = 0, {}, {}, 0
  -- One entry: true when it leaves the queue (served, or lapsed), false when it must wait.
  local function take(entry)
    ${WAIT_ENTRY_LUA.findDeadline}
    if ${WAIT_ENTRY_LUA.deadline} <= nowMs then
      return true
    end
    ${WAIT_ENTRY_LUA.readFields}
    if ${WAIT_ENTRY_LUA.noClaim("ttl")} then
      -- Its limit is unknown: it is kept a slot under the live ones' limit, or the only one.
      if (minLimit and count + woken >= minLimit) or (not minLimit and woken > 0) then
        return false
      end
      woken = woken + 1
    else
      local limit = ${WAIT_ENTRY_LUA.limit}
      local f = ':' .. ${WAIT_ENTRY_LUA.owner}
      if slots[f] then
        -- Another wait of the same slot id has the slot: this one stays queued (its abort must
        -- not free that slot), and the ones behind it are served.
        skipped[#skipped + 1] = entry
        keptUntil = math.max(keptUntil, ${WAIT_ENTRY_LUA.deadline})
        return true
      end
      if count + woken >= tonumber(limit) or (minLimit and count + woken >= minLimit) then
        return false
      end
      writes[#writes + 1] = f
      -- Marked as this wait's: only its leave may free it (not another wait of the slot id).
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
  blockedQueue = blocked
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
  if last then
    writes[#writes + 1] = 'fence'
    writes[#writes + 1] = last
  end
  for i = 1, #writes, 1000 do
    redis.call('HSET', KEYS[1], unpack(writes, i, math.min(i + 999, #writes)))
  end
  return true
end`;

/**
 * Lua: `heldBack()`, whether the queue's first live wait (past the lapsed ones and the claims
 * whose slot id holds a slot, which SERVE passes over) is a claim that its own, smaller limit
 * holds back: the count is not below it, though it is below the live slots' limits (`queued`:
 * whether the queue existed as the script began). A newcomer
 * then takes no slot (first come, first served: otherwise the claim is passed for as long as
 * holders of the greater limit keep the count up). A woken wait without a claim is not queued
 * any more, and one still queued is not held back by a limit of its own.
 */
const HELD_BACK = `local function heldBack()
  if not queued then
    return false
  end
  local from = 0
  repeat
    local page = redis.call('LRANGE', KEYS[2], from, from + 31)
    for _, entry in ipairs(page) do
      ${WAIT_ENTRY_LUA.findDeadline}
      if ${WAIT_ENTRY_LUA.deadline} > nowMs then
        ${WAIT_ENTRY_LUA.readFields}
        if ${WAIT_ENTRY_LUA.noClaim("ttl")} then
          return false
        end
        if not slots[':' .. ${WAIT_ENTRY_LUA.owner}] then
          return count >= tonumber(${WAIT_ENTRY_LUA.limit})
        end
      end
    end
    from = from + 32
  until #page < 32
  return false
end`;

/**
 * KEYS[1] slots, KEYS[2] queue
 * ARGV[1] slot id, ARGV[2] limit, ARGV[3] ttl in ms ("" = never expires)
 * Returns the token (an integer) when a slot was taken, or re-taken by its live holder (the
 * token and the slot's limit kept, the TTL restarted); else {limit in force, live slots, ms
 * until the soonest live slot expires (-1: none expires)}. Slots found expired go to the queue
 * first (SERVE); otherwise the queue is read only as far as HELD_BACK does (a release hands its
 * slot to the queue itself, and the waits check at the soonest expiry they know of).
 */
export const ACQUIRE_SCRIPT = `
${checkLimit(2)}
${checkDurations({ argv: 3, name: "ttl", also: [""] })}
${READ_SLOTS}
local f = ':' .. ARGV[1]
local queued = redis.call('EXISTS', KEYS[2]) == 1
-- The common case first: a new slot, nobody queued.
if not queued and not slots[f] and ${fits("tonumber(ARGV[2])")} then
  local token = newToken()
  redis.call('HSET', KEYS[1], f, put(f, ARGV[3], ARGV[2], token), 'fence', token)
  keep()
  return tonumber(token)
end
${SERVE}
${HELD_BACK}
-- Slots that expired unnoticed go to the queue first: no newcomer takes them past a waiter.
if queued and #expired > 0 and serve() then
  keep()
end
local own = slots[f]
local token
if own then
  local _, limit
  _, limit, token = ${parts("own")}
  redis.call('HSET', KEYS[1], f, put(f, ARGV[3], limit, token))
elseif ${fits("tonumber(ARGV[2])")} and not heldBack() then
  token = newToken()
  redis.call('HSET', KEYS[1], f, put(f, ARGV[3], ARGV[2], token), 'fence', token)
else
  ${SOONEST}
  return {math.min(tonumber(ARGV[2]), minLimit), count, soonest()}
end
keep()
return tonumber(token)
`;

/**
 * KEYS[1] slots, KEYS[2] queue
 * ARGV[1] slot id
 * Returns 1 when the slot id's live slot was freed, 0 when it held none. Either way, free
 * slots go to the queue (SERVE): a slot that expired unnoticed is served here too.
 */
export const RELEASE_SCRIPT = `
${CLOCK}
local f = ':' .. ARGV[1]
local own = redis.call('HGET', KEYS[1], f)
if not ${isLive("own")} then
  own = nil
end
-- Nobody queued: only this slot changes (expired ones stay until a script that decides reads
-- them); one that never expired changes the hash's TTL, below.
if redis.call('EXISTS', KEYS[2]) == 0 and not (own and string.sub(own, 1, 2) == '0:') then
  if own then
    redis.call('HDEL', KEYS[1], f)
    return 1
  end
  return 0
end
${SCAN}
${SLOT_WRITES}
${SERVE}
${DROP}
own = slots[f]
if own then
  drop(f)
end
-- keep() after a grant, or once a slot that never expired is gone (the hash may persist).
if serve() or (own and string.sub(own, 1, 2) == '0:') then
  keep()
end
return own and 1 or 0
`;

/**
 * KEYS[1] slots, KEYS[2] queue
 * Returns 1 when live slots were freed, 0 when none was live. Either way the queue is served
 * (SERVE) from the free key. The fence stays, with its grace.
 */
export const FORCE_RELEASE_ALL_SCRIPT = `
${READ_SLOTS}
${SERVE}
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
if serve() or freed == 1 then
  keep()
end
return freed
`;

/**
 * KEYS[1] slots, KEYS[2] queue
 * ARGV[1] slot id, ARGV[2] ttl in ms
 * Returns 1 when the slot id's live, expiring slot got a new TTL (from now); 0 when it holds
 * none, or its slot never expires (which stays as it is). The queue keeps its order; slots
 * found expired go to it (SERVE).
 */
export const REFRESH_SCRIPT = `
${checkDurations({ argv: 2, name: "ttl" })}
${READ_SLOTS}
${SERVE}
if #expired > 0 and serve() then
  keep()
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
redis.call('HSET', KEYS[1], f, put(f, ARGV[2], limit, token))
keep()
return 1
`;

/**
 * KEYS[1] slots
 * ARGV[1] slot id
 * Returns nil when no slot is live; else {limit in force, live slots, the slot id's token ("":
 * it holds no live slot), its slot's ms left (-1: never expires)}. Reads only: expired slots
 * are skipped, not dropped.
 */
export const GET_STATE_SCRIPT = `
local time = redis.call('TIME')
${NOW_MS}
local all = redis.call('HGETALL', KEYS[1])
local count, minLimit, token, left = 0, nil, '', -1
local mine = ':' .. ARGV[1]
for i = 1, #all, 2 do
  local field, value = all[i], all[i + 1]
  if field ~= 'fence' then
    local e1 = string.find(value, ':', 1, true)
    local e2 = string.find(value, ':', e1 + 1, true)
    local expiry = tonumber(string.sub(value, 1, e1 - 1))
    if expiry == 0 or expiry > nowMs then
      local limit = tonumber(string.sub(value, e1 + 1, e2 - 1))
      count = count + 1
      if not minLimit or limit < minLimit then
        minLimit = limit
      end
      if field == mine then
        local e3 = string.find(value, ':', e2 + 1, true)
        token = string.sub(value, e2 + 1, e3 and e3 - 1)
        left = expiry == 0 and -1 or expiry - nowMs
      end
    end
  end
end
if count == 0 then
  return false
end
return {minLimit, count, token, left}
`;

/**
 * KEYS[1] slots, KEYS[2] queue
 * ARGV[1] slot id of the claim ("" without one), ARGV[2] its ttl in ms ("": never expires; "-":
 * no claim), ARGV[3] max wait in ms, ARGV[4] the waiter's inbox channel, ARGV[5] wait id
 * (neither with ":"), ARGV[6] the claim's limit (with no claim: any limit, unused)
 * Serves the queue first (SERVE: slots that expired unnoticed). A claim whose slot id holds a
 * live slot re-takes it (its token negated: held before). Then, with no claim queued ahead that
 * waits for a slot (SERVE stopped at none): a claim that fits takes a slot (its token), a wait
 * without a claim is told to try (0) when a slot is free. Else queues the wait behind the others: {entry, ms until the soonest live
 * slot expires (-1: none expires)}, when the waiter checks (CHECK), since an expiry sends
 * nothing. The entry's deadline is the max wait from now, or the soonest expiry plus
 * ENTRY_GRACE_MS when that ends sooner. The queue expires with its latest deadline.
 */
export const WAIT_SCRIPT = `
${checkDurations(
  { argv: 2, name: "ttl", also: [NEVER_EXPIRES_TTL, NO_CLAIM_TTL] },
  { argv: 3, name: "max wait" },
)}
${checkLimit(6)}
${READ_SLOTS}
${SERVE}
${SOONEST}
if serve() then
  keep()
end
local claim = not (${WAIT_ENTRY_LUA.noClaim("ARGV[2]")})
local f = ':' .. ARGV[1]
local own = claim and slots[f]
if own then
  local _, limit, token = ${parts("own")}
  redis.call('HSET', KEYS[1], f, put(f, ARGV[2], limit, token))
  keep()
  return -tonumber(token)
end
-- Nobody ahead but, maybe, other waits of slot ids that hold a slot (which serve() passed over).
if not blockedQueue and (claim and ${fits("tonumber(ARGV[6])")} or (not claim and ${FREE})) then
  if not claim then
    return 0
  end
  local token = newToken()
  redis.call('HSET', KEYS[1], f, put(f, ARGV[2], ARGV[6], token), 'fence', token)
  keep()
  return tonumber(token)
end
local left = tonumber(ARGV[3])
local pttl = soonest()
${REDIS_QUEUE_LUA.joinAndReturn("KEYS[2]", {
  ttl: "ARGV[2]",
  inbox: "ARGV[4]",
  id: "ARGV[5]",
  owner: "ARGV[1]",
  limit: "(claim and ARGV[6] or '')",
})}
`;

/**
 * Lua shared by LEAVE and CHECK: `rest` and `mine()` of ARGV[1], a wait's entry as the wait last
 * heard of it (its deadline renewed in place; the rest never changes). `mine()` reads KEYS[3]
 * in the lock's fragment: here the queue is KEYS[2].
 */
const FIND_MINE = WAIT_ENTRY_LUA.findMine("ARGV[1]").replace("KEYS[3]", "KEYS[2]");

/**
 * KEYS[1] slots, KEYS[2] queue
 * ARGV[1] the wait's queue entry (as WAIT_SCRIPT or its last check returned it), ARGV[2] slot
 * id of the claim ("" without one), ARGV[3] "keep" (the wait ran out) or "release" (the wait
 * was aborted, or its adapter closed)
 * Both remove the entry. An entry still queued was handed nothing: 0. One that is gone while
 * the claim's slot id holds a live slot: "keep" answers the slot's token (the slot id holds it),
 * "release" frees that slot (served to the next waits) only when SERVE handed it to this very
 * wait (its value marked with the wait's inbox and id): another wait of the slot id, or a call
 * that re-took or refreshed it since, counts on it. An entry gone for another reason (it
 * lapsed: its process was paused past its deadline) was handed nothing. With "release", free
 * slots are served to the queue in any case (a woken wait that is aborted passes its turn on).
 * Returns the claim's token when it keeps a slot handed to it; 0 otherwise.
 */
export const LEAVE_SCRIPT = `
${FIND_MINE}
${REDIS_QUEUE_LUA.leaveIfQueued("KEYS[2]")}
${READ_SLOTS}
${SERVE}
${DROP}
local f = ':' .. ARGV[2]
local own = ARGV[2] ~= '' and slots[f]
if own and ARGV[3] == 'keep' then
  local _, _, token = ${parts("own")}
  return tonumber(token)
end
if ARGV[3] == 'release' then
  local entry = ARGV[1]
  ${WAIT_ENTRY_LUA.findDeadline}
  ${WAIT_ENTRY_LUA.readFields}
  local mark = ':' .. inbox .. ':' .. wait
  if own and string.sub(own, -#mark) == mark then
    drop(f)
  else
    own = nil
  end
  if serve() or (own and string.sub(own, 1, 2) == '0:') then
    keep()
  end
end
return 0
`;

/**
 * KEYS[1] slots, KEYS[2] queue
 * ARGV[1] the wait's queue entry (as WAIT_SCRIPT or its last check returned it), ARGV[2] slot
 * id of the claim ("" without one), ARGV[3] ms left of the wait, ARGV[4] "1" when the waiter's
 * clock says the soonest slot it knew of has run out, else "0"
 * A queued wait asks whether it was handed a slot (on a message, which proves nothing, after a
 * reconnect, or at a slot's expiry). The queue is served first (SERVE). A claim whose entry is
 * gone without a slot of its own (a restart of Redis lost the queue) goes back at the end, and
 * then the queue is served only with ARGV[4] "1": after a restart of a Redis that keeps nothing,
 * the slots' old holders may still be at work until the expiries the waits knew of.
 * Returns {1, token, ms left of the slot (-1: never expires)}: handed a slot (its entry gone,
 * the slot id's slot live); {0, ms until the soonest live slot expires (-1: none does, -2: no
 * live slot), the renewed entry}: still queued, its deadline as WAIT_SCRIPT sets it, from now;
 * {-1, 0}: neither (a wait without a claim was woken).
 */
export const CHECK_SCRIPT = `
${checkDurations({ argv: 3, name: "wait left" })}
${CLOCK}
${FIND_MINE}
local left = tonumber(ARGV[3])
local f = ':' .. ARGV[2]
local lost = false
-- A hand-off's check first: the entry gone and the slot live (one field read, not the hash).
if not mine() then
  local own = ARGV[2] ~= '' and redis.call('HGET', KEYS[1], f)
  if ${isLive("own")} then
    local expiry, _, token = ${parts("own")}
    return {1, tonumber(token), expiry == '0' and -1 or tonumber(expiry) - nowMs}
  end
  if ARGV[2] == '' then
    return {-1, 0}
  end
  redis.call('RPUSH', KEYS[2], ${WAIT_ENTRY_LUA.renewed("nowMs + left")})
  lost = true
end
${SCAN}
${SLOT_WRITES}
${SERVE}
${SOONEST}
if (ARGV[4] == '1' or not lost) and serve() then
  keep()
end
local index = mine()
if not index then
  local own = slots[f]
  if own then
    local expiry, _, token = ${parts("own")}
    return {1, tonumber(token), expiry == '0' and -1 or tonumber(expiry) - nowMs}
  end
  return {-1, 0}
end
local pttl = soonest()
${REDIS_QUEUE_LUA.renewAndReturn("KEYS[2]")}
`;
