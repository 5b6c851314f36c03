/**
 * Prefixes for keys, so that components sharing a backend never meet.
 *
 * @module hasp/namespace
 */
export { type IKey, Namespace, type NamespaceSettings } from "./namespace.js";
