export { SuperJsonSerdeAdapter } from "./super-json-serde-adapter.js";
