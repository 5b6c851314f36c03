/**
 * Calls `fn` with the adapter and the stored key: a synchronous throw (a bad argument, a broken
 * adapter) becomes a rejection, so that every failure of a call takes one path. No async
 * function: this is every operation's path, and each promise layer costs ticks.
 */
export function callAdapter<TAdapter, TValue>(
  adapter: TAdapter,
  key: string,
  fn: (adapter: TAdapter, key: string) => Promise<TValue>,
): Promise<TValue> {
  try {
    return fn(adapter, key);
  } catch (error) {
    return Promise.reject(error);
  }
}
