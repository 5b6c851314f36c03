/**
 * The serde adapter built on superjson.
 *
 * @module hasp/serde/super-json-serde-adapter
 */
export { SuperJsonSerdeAdapter } from "./super-json-serde-adapter.js";
