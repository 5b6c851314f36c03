export { SERDE_FORMAT_VERSION, Serde } from "./serde.js";
export type {
  ISerde,
  ISerdeAdapter,
  ISerdeRegister,
  ISerdeTransformer,
  JsonValue,
} from "./serde-contracts.js";
export { isSerdeError, SerdeError } from "./serde-error.js";
