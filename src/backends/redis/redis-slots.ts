// Lua fragments over a hash of slots, shared by the semaphore's scripts and the shared lock's
// (whose readers are a semaphore's slots, beside a "writer" field): one field per slot,
// ":<slot id>" -> "<expiry ms>:<limit>:<token>" (expiry on the server's clock, 0: never
// expires), followed by ":<inbox>:<wait id>" when a serving handed it to a queued wait (until
// the slot's next write), and "fence" -> the last token issued. No slot field is "fence" or
// "writer": theirs begin with ":". The limit rule: a slot is taken only while the live slots
// number fewer than the taker's limit and fewer than every live slot's own limit.
//
// Every script that decides reads the server's clock (TIME) and the whole hash (HGETALL, O(live
// slots)): expired slots are dropped (HDEL) before the script decides anything.

import { FENCE_GRACE_MS, NOW_MS, tokenFrom } from "./redis-fence.js";

/** Lua: ARGV[n] must be a limit, a whole number from 1 with at most 9 digits. */
export const checkLimit = (
  argv: number,
) => `if not (#ARGV[${argv}] <= 9 and string.find(ARGV[${argv}], '^[1-9]%d*$')) then
  return redis.error_reply('ERR hasp: limit must be a positive whole number of at most 9 digits')
end`;

/**
 * Lua statements counting the live slot whose value is `value` into `count`, `minLimit`,
 * `latest` and `persistent`, given its expiry (`expiry`, a number): the one tally of the live
 * slots, by SCAN and by DROP's recount.
 */
const tally = (value: string) => `count = count + 1
      local limit = tonumber(string.match(${value}, '^%d+:(%d+):'))
      if not minLimit or limit < minLimit then
        minLimit = limit
      end
      if expiry == 0 then
        persistent = true
      elseif expiry > latest then
        latest = expiry
      end`;

/** Lua: the scan's branch for the shared lock's "writer" field (see scanSlots). */
const WRITER_FIELD = `  elseif field == 'writer' then
    local expiry = tonumber(string.match(value, '^%d+'))
    if expiry ~= 0 and expiry <= nowMs then
      expired[#expired + 1] = field
    else
      writer = value
      if expiry == 0 then
        persistent = true
      elseif expiry > latest then
        latest = expiry
      end
    end
`;

/**
 * Lua after CLOCK, in every script but GET_STATE (and the fast paths that read one field): the
 * key's live slots, the expired ones dropped. `slots` maps each
 * live slot's field to its value; `count` is how many, `minLimit` the smallest of their limits
 * (nil: none), `latest` the latest expiry (nowMs when none expires), `persistent` whether one
 * never expires; `last` is the fence. `keptLatest` and `keptPersistent` are what the hash's TTL
 * already covers: every script that sets a slot's expiry keeps the hash's TTL at least that
 * expiry plus the grace (or persists it), so keep() need not ask PTTL.
 *
 * With `writer` (the shared lock's hash), the field "writer" (its value begins with "<expiry ms>:") is
 * read too: `writer` is its value while it is live (nil otherwise), an expired one is dropped
 * with the expired slots (its field listed in `expired`), and a live one's expiry counts into
 * `latest` and `persistent`, so that keep() covers it. Without it, the text is the semaphore's.
 */
export const scanSlots = ({
  writer,
}: {
  writer: boolean;
}) => `local all = redis.call('HGETALL', KEYS[1])
local slots, count, minLimit, latest, persistent, last = {}, 0, nil, nowMs, false, nil
${writer ? "local writer = nil\n" : ""}local expired = {}
for i = 1, #all, 2 do
  local field, value = all[i], all[i + 1]
  if field == 'fence' then
    last = value
${writer ? WRITER_FIELD : ""}  else
    local expiry = tonumber(string.match(value, '^%d+'))
    if expiry ~= 0 and expiry <= nowMs then
      expired[#expired + 1] = field
    else
      slots[field] = value
      ${tally("value")}
    end
  end
end
for i = 1, #expired, 1000 do
  redis.call('HDEL', KEYS[1], unpack(expired, i, math.min(i + 999, #expired)))
end
local keptLatest, keptPersistent = latest, persistent`;

/**
 * Lua after SCAN: `put(f, ttl, limit, token)`, a slot for field f (live or new) expiring ttl ms
 * from now ('': never), into slots (its value returned, for the caller's HSET); `newToken()`,
 * above the fence and the clock in µs (the fence follows it: the caller writes `last`);
 * `keep()`, the hash's TTL after the slots changed: it outlives every live slot by the grace,
 * or persists while one never expires.
 */
export const SLOT_WRITES = `local function put(f, ttl, limit, token)
  local expiry = 0
  if ttl == '' then
    persistent = true
  else
    expiry = nowMs + tonumber(ttl)
    if expiry > latest then
      latest = expiry
    end
  end
  if not slots[f] then
    count = count + 1
    if not minLimit or tonumber(limit) < minLimit then
      minLimit = tonumber(limit)
    end
  end
  local was = slots[f]
  slots[f] = string.format('%.0f', expiry) .. ':' .. limit .. ':' .. token
  if was and expiry ~= 0 and string.sub(was, 1, 2) == '0:' then
    -- A slot that never expired now does: the hash may persist no longer.
    persistent = false
    for _, value in pairs(slots) do
      if string.sub(value, 1, 2) == '0:' then
        persistent = true
      end
    end
  end
  return slots[f]
end
local function newToken()
  local token
  ${tokenFrom("last")}
  last = token
  return token
end
local function keep()
  if persistent then
    if not keptPersistent then
      redis.call('PERSIST', KEYS[1])
    end
  elseif keptPersistent or latest > keptLatest then
    redis.call('PEXPIRE', KEYS[1], latest - nowMs + ${FENCE_GRACE_MS})
  end
  keptLatest, keptPersistent = latest, persistent
end`;

/** Lua: the server's time, `time` (TIME's reply) and `nowMs`. */
export const CLOCK = `local time = redis.call('TIME')
${NOW_MS}`;

/** CLOCK, scanSlots and SLOT_WRITES: what a script that may change the slots opens with. */
export const readSlots = ({ writer }: { writer: boolean }) => `${CLOCK}
${scanSlots({ writer })}
${SLOT_WRITES}`;

/** Lua expression: whether the slot value `value` (a string, or nil) is live at nowMs. */
export const isLive = (value: string) =>
  `(${value} and (string.sub(${value}, 1, 2) == '0:' or tonumber(string.match(${value}, '^%d+')) > nowMs))`;

/** Lua expression: whether a slot is free under the live slots' limits (after READ_SLOTS). */
export const FREE = "(not minLimit or count < minLimit)";

/** Lua expression: whether a slot of limit `n` (a Lua number) may be taken now. */
export const fits = (n: string) => `(count < ${n} and ${FREE})`;

/** Lua expression: a slot value's expiry, limit and token (strings), from `value`. */
export const parts = (value: string) => `string.match(${value}, '^(%d+):(%d+):(%d+)')`;

/** Lua: `soonest()`, ms until the soonest live slot expires, -1 when none does (-2: none live). */
export const SOONEST = `local function soonest()
  local best = nil
  for _, value in pairs(slots) do
    local expiry = tonumber(string.match(value, '^(%d+):'))
    if expiry ~= 0 and (not best or expiry < best) then
      best = expiry
    end
  end
  if best then
    return best - nowMs
  end
  return count > 0 and -1 or -2
end`;

/** Lua: `drop(f)`, which frees the live slot of field f and recounts what it may have set. */
export const DROP = `local function drop(f)
  redis.call('HDEL', KEYS[1], f)
  slots[f] = nil
  count, minLimit, latest, persistent = 0, nil, nowMs, false
  for _, value in pairs(slots) do
    local expiry = tonumber(string.match(value, '^%d+'))
    ${tally("value")}
  end
end`;
