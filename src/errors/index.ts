export { HaspError, isHaspError } from "./hasp-error.js";
export { InvalidArgumentError, isInvalidArgumentError } from "./invalid-argument-error.js";
