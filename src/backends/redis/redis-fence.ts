// The rules every Redis script of hasp keeps, whichever primitive it serves:
//
// - Fencing: a new token is max(last token + 1, server time in µs), `last` read from a fence key
//   that outlives the holds it numbers by FENCE_GRACE_MS (every script that sets a hold's expiry
//   sets its fence's to the same expiry plus the grace, in the same step), so tokens grow across
//   release, expiry and force release, and after a restart of a Redis that keeps nothing, as
//   long as the server's clock does not go back.
// - Durations: every ARGV that becomes a PX or PEXPIRE is checked before the script's first
//   write (checkDurations), so a script never fails halfway.
// - The server's clock: `TIME`, read only where a decision or a token needs it.

/** How long the fence counter outlives a hold, in ms. */
export const FENCE_GRACE_MS = 60_000;

/**
 * Lua opening every script that takes a duration, before anything else (above all before its
 * first write): each listed ARGV must be a whole number of ms, 1 to 13 digits with no sign,
 * exponent or point, or one of the values `also` allows. PX and PEXPIRE refuse what Lua prints
 * in exponent form (`tonumber('1e17') + 1` is `1e+17`), which would fail a script halfway,
 * after earlier writes; 13 digits plus the server's time in ms stay below 10^14, which Lua's
 * `%.14g` prints exactly. Anything else is an error reply, and nothing is written. The adapter
 * holds durations lower still (MAX_DURATION_MS, 100 years): this guards the scripts themselves.
 */
export const checkDurations = (
  ...args: ReadonlyArray<{ argv: number; name: string; also?: readonly string[] }>
) =>
  args
    .map(({ argv, name, also = [] }) => {
      const value = `ARGV[${argv}]`;
      const allowed = also.map((other) => `${value} == '${other}' or `).join("");
      const alternatives = also.map((other) => `, or "${other}"`).join("");
      return `if not (${allowed}(#${value} <= 13 and string.find(${value}, '^[1-9]%d*$'))) then
  return redis.error_reply('ERR hasp: ${name} must be a positive whole number of ms of at most 13 digits${alternatives}')
end`;
    })
    .join("\n");

/**
 * Lua of a new token, max(last + 1, server time in µs), into `token` (a string), given `last`
 * (the fence's value, or nil) and `time` (TIME's reply). A fresh key, or one whose fence expired,
 * takes TIME's two parts joined as digits: no arithmetic or format. TIME is asked even when the
 * fence lives: `last + 1` alone would save the call, but a replica promoted with an older fence
 * would then repeat the tokens its primary issued after it; the clock keeps them above.
 */
export const tokenFrom = (
  last: string,
) => `if ${last} and tonumber(${last}) >= tonumber(time[1]) * 1000000 + tonumber(time[2]) then
    token = string.format('%.0f', tonumber(${last}) + 1)
  else
    token = time[1] .. string.sub(time[2] + 1000000, 2)
  end`;

/** Lua: `nowMs`, the server's time in ms, from `time` (TIME's reply). */
export const NOW_MS =
  "local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)";
