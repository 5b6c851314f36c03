import type { RedisClient } from "./redis-client.js";

/** A script as `defineCommand` takes it: how many of its arguments are keys, and its Lua. */
export type RedisScriptDefinition = { readonly numberOfKeys: number; readonly lua: string };

/**
 * Registers `definitions` on `client` (once per adapter; EVALSHA, with EVAL as ioredis's
 * fallback), which then runs each script as a command of its name: typed as `TCommands`, whose
 * keys the definitions must name.
 */
export function defineRedisCommands<TCommands>(
  client: RedisClient,
  definitions: { readonly [name in keyof TCommands]: RedisScriptDefinition },
): TCommands {
  for (const [name, definition] of Object.entries<RedisScriptDefinition>(definitions)) {
    client.defineCommand(name, definition);
  }
  return client as unknown as TCommands;
}
