/**
 * The base of every hasp error, and the error for rejected settings and arguments.
 *
 * @module hasp/errors
 */
export { HaspError, isHaspError } from "./hasp-error.js";
export { InvalidArgumentError, isInvalidArgumentError } from "./invalid-argument-error.js";
