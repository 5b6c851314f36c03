// The Lua scripts of RedisLockAdapter. Each is one atomic step on the server, registered once
// per client with defineCommand (EVALSHA, with EVAL as ioredis's fallback). All the keys of one
// script share a hash tag, so they live in one slot and the scripts run on Redis Cluster.
//
// Layout per lock key K (namespaced):
//   {K}          string "<token>:<owner>"  expires with the hold (PX), or never (ttl null)
//   {K}:fence    string last token          outlives the hold by FENCE_GRACE_MS, so a new hold's
//                                           token is always above it; then the server clock takes over
//   {K}:released channel                    PUBLISHed by release and forceRelease
//
// The hold is one string (the token never contains ":"; the owner may), so each script reads it
// with one GET and the common paths make as few calls as they can. Every call (and argument)
// costs server time on each cycle: the grace is part of the script text and the channel name is
// derived from KEYS[1], so only what varies is sent.

/** How long the fence counter outlives a hold, in ms. */
export const FENCE_GRACE_MS = 60_000;

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
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
  token = string.format('%.0f', math.max(tonumber(current[2] or '0') + 1, now))
end
if ARGV[2] == '' then
  redis.call('SET', KEYS[1], token .. ':' .. ARGV[1])
  redis.call('SET', KEYS[2], token)
else
  redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
  redis.call('SET', KEYS[2], token, 'PX', tonumber(ARGV[2]) + ${FENCE_GRACE_MS})
end
return tonumber(token)
`;

/**
 * KEYS[1] hold, KEYS[2] fence
 * ARGV[1] owner id
 * Returns 1 when the owner's hold was deleted (and the release published on KEYS[1]:released),
 * 0 otherwise.
 */
export const RELEASE_SCRIPT = `
local hold = redis.call('GET', KEYS[1])
if not hold or string.sub(hold, string.find(hold, ':', 1, true) + 1) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('PEXPIRE', KEYS[2], ${FENCE_GRACE_MS})
redis.call('PUBLISH', KEYS[1] .. ':released', '1')
return 1
`;

/**
 * KEYS[1] hold, KEYS[2] fence
 * Returns 1 when a hold was deleted (and the release published on KEYS[1]:released), 0 when the
 * key was free.
 */
export const FORCE_RELEASE_SCRIPT = `
if redis.call('DEL', KEYS[1]) == 0 then
  return 0
end
redis.call('PEXPIRE', KEYS[2], ${FENCE_GRACE_MS})
redis.call('PUBLISH', KEYS[1] .. ':released', '1')
return 1
`;

/**
 * KEYS[1] hold, KEYS[2] fence
 * ARGV[1] owner id, ARGV[2] ttl in ms
 * Returns 1 when the owner's expiring hold got a new TTL; 0 when not the owner, free, or a
 * hold that never expires (which stays as it is).
 */
export const REFRESH_SCRIPT = `
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
