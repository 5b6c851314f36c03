/** A UTF-16 code unit of a surrogate pair standing alone (a whole pair is one code point). */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * What keeps `value` from reaching every backend exactly as it is, or `undefined` when nothing
 * does. A lone surrogate has no UTF-8 form: the drivers send it as U+FFFD, so `"o\uD800"` and
 * `"o\uDC00"` would name one key or one owner there. PostgreSQL's text refuses NUL, which the
 * other backends store: refused everywhere, so that a key works the same on every backend.
 */
export function storedStringProblem(value: string): string | undefined {
  if (!value.isWellFormed()) {
    return `must be well-formed UTF-16 (a lone surrogate at index ${value.search(LONE_SURROGATE)})`;
  }
  const nul = value.indexOf("\0");
  return nul === -1 ? undefined : `must not contain NUL (at index ${nul})`;
}
