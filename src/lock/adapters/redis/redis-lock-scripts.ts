// The Lua scripts of RedisLockAdapter. Each is one atomic step on the server, registered once
// per client with defineCommand (EVALSHA, with EVAL as ioredis's fallback). All the keys of one
// script share a hash tag, so they live in one slot and the scripts run on Redis Cluster.
//
// Layout per lock key K (namespaced):
//   {K}          string "<token>:<owner>"  expires with the hold (PX), or never (ttl null)
//   {K}:fence    string last token          outlives the hold by FENCE_GRACE_MS (its TTL is the
//                                           hold's plus the grace, set with it), so a new hold's
//                                           token is always above it; then the server clock takes over
//   {K}:queue    list of waits              blocked acquires, oldest first, each
//                                           "<deadline ms>:<ttl>:<inbox>:<wait id>:<limit>:<owner>"
//                                           (../wait-queue/wait-entry.ts: the format and its Lua): a
//                                           claim (ttl in ms, or empty: never expires) is handed the
//                                           key, a wait without one (ttl "-", no owner) is woken to
//                                           try; the deadline is renewed in place by the wait's
//                                           checks (a wait is known by the rest of its entry, which
//                                           never changes); the list expires with its latest deadline
//   <inbox>      channel                    one per adapter (no ":" in it), where a release names
//                                           the wait it served ("<wait id>"): a wake-up only, since
//                                           anyone may PUBLISH; the wait asks CHECK_SCRIPT
//
// The hold is one string (the token never contains ":"; the owner may), so each script reads it
// with one GET and the common paths make as few calls as they can. Every call (and argument)
// costs server time on each cycle: the grace is part of the script text, and a release with
// nobody waiting publishes nothing.

import {
  checkDurations,
  FENCE_GRACE_MS,
  NOW_MS,
  tokenFrom,
} from "../../../backends/redis/redis-fence.js";
import { REDIS_QUEUE_LUA } from "../../../backends/redis/redis-wait-queue.js";
import {
  NEVER_EXPIRES_TTL,
  NO_CLAIM_TTL,
  WAIT_ENTRY_LUA,
} from "../../../backends/wait-queue/wait-entry.js";

/** Lua shared by ACQUIRE and WAIT: a new token from `current` (the MGET of hold and fence), ... */
const NEW_TOKEN = `  local time = redis.call('TIME')
  ${tokenFrom("current[2]")}`;

/**
 * ... then the hold of ARGV[1] for ARGV[2] ms ("": never expires) with that token, fence beside:
 * two writes, since each new token must reach a key that outlives the hold. One key for both (the
 * hold's expiry in its value) saves the acquire a SET, but the release then rewrites the key
 * instead of deleting it: measured, no gain.
 */
const grantAndReturn = (result: string) => `if ARGV[2] == '' then
  redis.call('SET', KEYS[1], token .. ':' .. ARGV[1])
  redis.call('SET', KEYS[2], token)
else
  redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
  redis.call('SET', KEYS[2], token, 'PX', tonumber(ARGV[2]) + ${FENCE_GRACE_MS})
end
return ${result}`;

/**
 * KEYS[1] hold, KEYS[2] fence
 * ARGV[1] owner id, ARGV[2] ttl in ms ("" = never expires)
 * Returns the token (an integer) when acquired or re-acquired by the same owner (the token is
 * kept and the TTL restarts), {owner, pttl} when held by another (pttl -1: it never expires).
 * A new token is max(last token + 1, server time in µs): it grows even after the fence key
 * expired or a restart of a Redis without persistence emptied it. Tokens stay below 2^53, so a
 * Lua number holds them exactly.
 */
export const ACQUIRE_SCRIPT = `
${checkDurations({ argv: 2, name: "ttl", also: [""] })}
local current = redis.call('MGET', KEYS[1], KEYS[2])
local hold = current[1]
local token
if hold then
  local sep = string.find(hold, ':', 1, true)
  local owner = string.sub(hold, sep + 1)
  if owner ~= ARGV[1] then
    return {owner, redis.call('PTTL', KEYS[1])}
  end
  token = string.sub(hold, 1, sep - 1)
else
${NEW_TOKEN}
end
${grantAndReturn("tonumber(token)")}
`;

// Ends the key's hold. An expiring hold's fence already outlives it by FENCE_GRACE_MS (their
// TTLs are set together by every script), so it is left as it is: a write is the dearest call a
// script makes. A hold that never expires (PTTL -1), or one already gone (-2: the fence may be a
// persistent one whose hold someone else deleted), gives the fence its grace from now.
const FREE_KEY = `if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[2], ${FENCE_GRACE_MS})
end
redis.call('DEL', KEYS[1])`;

// Ends the key's hold (live, or already gone) in favour of the first wait in the queue whose
// deadline has not passed: a claim gets the key, as ACQUIRE_SCRIPT gives it (a new token, the
// claim's TTL counted from now); a wait without a claim finds the key free and is woken to try.
// Waits whose deadline passed are dropped on the way (their waiter gave up or died). The wait is
// told on its adapter's inbox: one message, however many processes wait on the key. With nobody
// waiting this costs one LPOP.
// Inlined where it ends a script (a Lua function would be a new closure on every call), so it
// returns `result` on every path.
const handOverAndReturn = (result: string) => `
local entry = redis.call('LPOP', KEYS[3])
if entry then
  local time = redis.call('TIME')
  ${NOW_MS}
  repeat
    ${WAIT_ENTRY_LUA.findDeadline}
    if ${WAIT_ENTRY_LUA.deadline} > nowMs then
      ${WAIT_ENTRY_LUA.readFields}
      if ${WAIT_ENTRY_LUA.noClaim("ttl")} then
        ${FREE_KEY}
        redis.call('PUBLISH', inbox, wait)
        return ${result}
      end
      local owner = ${WAIT_ENTRY_LUA.owner}
      local last = redis.call('GET', KEYS[2])
      local token
      ${tokenFrom("last")}
      if ${WAIT_ENTRY_LUA.neverExpires("ttl")} then
        redis.call('SET', KEYS[1], token .. ':' .. owner)
        redis.call('SET', KEYS[2], token)
      else
        redis.call('SET', KEYS[1], token .. ':' .. owner, 'PX', ttl)
        redis.call('SET', KEYS[2], token, 'PX', tonumber(ttl) + ${FENCE_GRACE_MS})
      end
      redis.call('PUBLISH', inbox, wait)
      return ${result}
    end
    entry = redis.call('LPOP', KEYS[3])
  until not entry
end
${FREE_KEY}
return ${result}
`;

/**
 * KEYS[1] hold, KEYS[2] fence, KEYS[3] queue
 * ARGV[1] owner id
 * Returns 1 when the owner's hold ended: handed to the first claim in the queue, or freed (for
 * the first wait without a claim, if any); 0 when the owner held nothing. A key found free with
 * waits queued (its hold expired, or a restart of Redis forgot it) goes to them all the same:
 * its last holder is done with it.
 */
export const RELEASE_SCRIPT = `
local hold = redis.call('GET', KEYS[1])
if not hold then
  if redis.call('EXISTS', KEYS[3]) == 1 then
    ${handOverAndReturn("0")}
  end
  return 0
end
if string.sub(hold, string.find(hold, ':', 1, true) + 1) ~= ARGV[1] then
  return 0
end
${handOverAndReturn("1")}`;

/**
 * KEYS[1] hold, KEYS[2] fence, KEYS[3] queue
 * Returns 1 when a hold ended (as RELEASE_SCRIPT ends it), 0 when the key was free (and then
 * goes to the waits queued, if any, as RELEASE_SCRIPT does).
 */
export const FORCE_RELEASE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('EXISTS', KEYS[3]) == 1 then
    ${handOverAndReturn("0")}
  end
  return 0
end
${handOverAndReturn("1")}`;

/**
 * KEYS[1] hold, KEYS[2] fence, KEYS[3] queue
 * ARGV[1] owner id of the claim ("" without one), ARGV[2] its ttl in ms ("": never expires; "-":
 * no claim), ARGV[3] max wait in ms, ARGV[4] the waiter's inbox channel, ARGV[5] wait id
 * (neither with ":")
 * Returns, when the key is free: the token, the key now being the claim's (as ACQUIRE_SCRIPT
 * takes it); when it is the claim owner's own live hold: its token negated (re-taken, the TTL
 * restarted); or 0 without a claim (try now). Else {entry, pttl}:
 * the queue entry appended for the wait, and the hold's PTTL (-1: it never expires), when the
 * waiter checks on it (CHECK_SCRIPT, which renews the entry), since its expiry sends nothing.
 * The entry's deadline is the server's time plus the max wait, or plus the PTTL and
 * ENTRY_GRACE_MS when that ends sooner. The queue expires with its latest deadline.
 */
export const WAIT_SCRIPT = `
${checkDurations(
  { argv: 2, name: "ttl", also: [NEVER_EXPIRES_TTL, NO_CLAIM_TTL] },
  { argv: 3, name: "max wait" },
)}
local current = redis.call('MGET', KEYS[1], KEYS[2])
local hold = current[1]
local token
local again = false
if hold then
  local sep = string.find(hold, ':', 1, true)
  if ${WAIT_ENTRY_LUA.noClaim("ARGV[2]")} or string.sub(hold, sep + 1) ~= ARGV[1] then
    local time = redis.call('TIME')
    ${NOW_MS}
    local left = tonumber(ARGV[3])
    local pttl = redis.call('PTTL', KEYS[1])
    ${REDIS_QUEUE_LUA.joinAndReturn("KEYS[3]", { ttl: "ARGV[2]", inbox: "ARGV[4]", id: "ARGV[5]", owner: "ARGV[1]" })}
  end
  token = string.sub(hold, 1, sep - 1)
  again = true
elseif ${WAIT_ENTRY_LUA.noClaim("ARGV[2]")} then
  return 0
else
${NEW_TOKEN}
end
${grantAndReturn("again and -tonumber(token) or tonumber(token)")}
`;

/**
 * Lua shared by LEAVE and CHECK: `rest` and `mine()` of ARGV[1], a wait's entry as the wait last
 * heard of it. A wait is known by `rest`, which never changes: its deadline is renewed in place,
 * so an entry the waiter has not heard of yet (a reply lost, a command sent again) is still its.
 */
const FIND_MINE = WAIT_ENTRY_LUA.findMine("ARGV[1]");

/**
 * KEYS[1] hold, KEYS[2] fence, KEYS[3] queue
 * ARGV[1] the wait's queue entry (as WAIT_SCRIPT or its last check returned it), ARGV[2] owner id
 * of the claim ("" without one), ARGV[3] what to do: "keep" (the wait ran out, or the adapter
 * closes) or "release" (the wait was aborted)
 * Both remove the entry. An entry still queued was handed nothing: 0. One that is gone because
 * the key was handed to the claim: "keep" answers the hold's token (the waiter has the key),
 * "release" ends that hold as RELEASE_SCRIPT does (the next wait gets it). A wait without a
 * claim that was woken and is aborted passes the wake-up on if the key is still free.
 * Returns the claim's token when the key was handed to it and it keeps it; 0 otherwise.
 */
export const LEAVE_SCRIPT = `
${FIND_MINE}
${REDIS_QUEUE_LUA.leaveIfQueued("KEYS[3]")}
local hold = redis.call('GET', KEYS[1])
local sep = hold and string.find(hold, ':', 1, true)
if hold and string.sub(hold, sep + 1) == ARGV[2] then
  if ARGV[3] == 'release' then
    ${handOverAndReturn("0")}
  end
  return tonumber(string.sub(hold, 1, sep - 1))
end
if ARGV[3] == 'release' and not hold and redis.call('EXISTS', KEYS[3]) == 1 then
  ${handOverAndReturn("0")}
end
return 0
`;

/**
 * KEYS[1] hold, KEYS[2] fence, KEYS[3] queue
 * ARGV[1] the wait's queue entry (as WAIT_SCRIPT or its last check returned it), ARGV[2] owner id
 * of the claim ("" without one), ARGV[3] ms left of the wait, ARGV[4] "1" when the waiter's clock
 * says the holder's hold has run out, else "0"
 * A queued wait asks whether it was handed the key (on a message, which proves nothing, after a
 * reconnect, or at the holder's expiry). At the holder's expiry (ARGV[4] "1"), when the hold is
 * gone (it expired: an expiry sends nothing), the queue is served first, oldest first, as
 * RELEASE_SCRIPT serves it. Otherwise a gone hold is not served: after a restart of a Redis that
 * keeps nothing, the old holder may still be at work until its expiry. A queued entry is renewed
 * in place (its deadline as WAIT_SCRIPT sets it, from now): a refresh of the hold never costs
 * the wait its place. A claim whose entry is gone without the key being its owner's (a restart
 * of Redis lost the queue) goes back at the end of the queue.
 * Returns {1, token, pttl}: the key was handed to the claim (its entry is gone and the hold is
 * the claim owner's), with the hold's PTTL; {0, pttl, entry}: queued, the holder's PTTL (-1:
 * never expires, -2: no hold), and the renewed entry; {-1, 0}: neither (a wait without a claim
 * was woken).
 */
export const CHECK_SCRIPT = `
${checkDurations({ argv: 3, name: "wait left" })}
local time = redis.call('TIME')
${NOW_MS}
local left = tonumber(ARGV[3])
${FIND_MINE}
local function granted()
  local hold = redis.call('GET', KEYS[1])
  if hold then
    local sep = string.find(hold, ':', 1, true)
    if string.sub(hold, sep + 1) == ARGV[2] then
      return {1, tonumber(string.sub(hold, 1, sep - 1)), redis.call('PTTL', KEYS[1])}
    end
  end
  return false
end
local function answer()
  local index = mine()
  if not index then
    return granted() or {-1, 0}
  end
  local pttl = redis.call('PTTL', KEYS[1])
  ${REDIS_QUEUE_LUA.renewAndReturn("KEYS[3]")}
end
if not mine() then
  local reply = granted()
  if reply then
    return reply
  end
  if ARGV[2] == '' then
    return {-1, 0}
  end
  redis.call('RPUSH', KEYS[3], ${WAIT_ENTRY_LUA.renewed("nowMs + left")})
end
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then
  ${handOverAndReturn("answer()")}
end
return answer()
`;

/**
 * KEYS[1] hold, KEYS[2] fence
 * ARGV[1] owner id, ARGV[2] ttl in ms
 * Returns 1 when the owner's expiring hold got a new TTL; 0 when not the owner, free, or a
 * hold that never expires (which stays as it is).
 */
export const REFRESH_SCRIPT = `
${checkDurations({ argv: 2, name: "ttl" })}
local hold = redis.call('GET', KEYS[1])
if not hold or string.sub(hold, string.find(hold, ':', 1, true) + 1) ~= ARGV[1]
  or redis.call('PTTL', KEYS[1]) < 0 then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) + ${FENCE_GRACE_MS})
return 1
`;

/**
 * KEYS[1] hold
 * Returns {owner, token, pttl} of the live hold (pttl -1: never expires), or nil when free.
 */
export const GET_STATE_SCRIPT = `
local hold = redis.call('GET', KEYS[1])
if not hold then
  return false
end
local sep = string.find(hold, ':', 1, true)
return {string.sub(hold, sep + 1), string.sub(hold, 1, sep - 1), redis.call('PTTL', KEYS[1])}
`;

// With waitForReplicas, a grant the replicas did not acknowledge is undone, and an undo puts
// back what the grant replaced, nothing more: a re-acquire or refresh restarted the TTL of a
// hold its owner still holds (and counts on), so only the previous expiry goes back. The
// grant's script notes that expiry in the same atomic step (its reads come before the grant's
// script, which checks its arguments before its first write as ever).
const notingPrevious = (script: string) => `
local previous = redis.call('GET', KEYS[1])
local token, expiry = '', 0
if previous then
  local sep = string.find(previous, ':', 1, true)
  if string.sub(previous, sep + 1) == ARGV[1] then
    token = string.sub(previous, 1, sep - 1)
    expiry = redis.call('PTTL', KEYS[1])
    if expiry >= 0 then
      local time = redis.call('TIME')
      expiry = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + expiry
    end
  end
end
local reply = (function()
${script}
end)()
if type(reply) == 'table' and reply.err then
  return reply
end
return {reply, token, expiry}
`;

/**
 * KEYS[1] hold, KEYS[2] fence
 * ARGV[1] owner id, ARGV[2] ttl in ms ("" = never expires)
 * Returns {reply, token, expiry}: ACQUIRE_SCRIPT's reply, run as it is, and the owner's live
 * hold before it: its token ("" when the owner held nothing, so a grant is a new hold) and its
 * expiry in ms of the server's clock (-1: it never expired; 0 with no hold).
 */
export const ACQUIRE_NOTING_SCRIPT = notingPrevious(ACQUIRE_SCRIPT);

/**
 * KEYS[1] hold, KEYS[2] fence
 * ARGV[1] owner id, ARGV[2] ttl in ms
 * Returns {reply, token, expiry}: REFRESH_SCRIPT's reply, run as it is, and the owner's hold
 * before it, as ACQUIRE_NOTING_SCRIPT notes it.
 */
export const REFRESH_NOTING_SCRIPT = notingPrevious(REFRESH_SCRIPT);

/**
 * KEYS[1] hold, KEYS[2] fence
 * ARGV[1] owner id, ARGV[2] token, ARGV[3] the expiry to put back: ms of the server's clock, or
 * -1 (never expires), as a noting script answered it
 * Undoes a re-acquire or refresh of a live hold: the hold gets its previous expiry back (an
 * expiry already past ends it, as its TTL would have), the fence its grace beyond it. Only the
 * hold of that owner with that token: a hold that ended or changed hands since stays as it is.
 * Returns 1 when the expiry was put back, 0 when the hold is not that owner's with that token.
 */
export const RESTORE_EXPIRY_SCRIPT = `
if not (ARGV[3] == '-1' or (#ARGV[3] <= 14 and string.find(ARGV[3], '^[1-9]%d*$'))) then
  return redis.error_reply('ERR hasp: expiry must be a positive whole number of ms of at most 14 digits, or "-1"')
end
if redis.call('GET', KEYS[1]) ~= ARGV[2] .. ':' .. ARGV[1] then
  return 0
end
if ARGV[3] == '-1' then
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
else
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
  redis.call('PEXPIREAT', KEYS[2], string.format('%.0f', tonumber(ARGV[3]) + ${FENCE_GRACE_MS}))
end
return 1
`;
