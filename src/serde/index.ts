/**
 * Serializes values to text and back, custom classes (such as locks) included.
 *
 * @module hasp/serde
 */
export { SERDE_FORMAT_VERSION, Serde } from "./serde.js";
export type {
  ISerde,
  ISerdeAdapter,
  ISerdeRegister,
  ISerdeTransformer,
  JsonValue,
} from "./serde-contracts.js";
export { isSerdeError, SerdeError } from "./serde-error.js";
