/**
 * Prefixes for keys, so that components sharing a backend never meet.
 *
 * @module hasp/namespace
 */
export { type IKey, type INamespace, Namespace, type NamespaceSettings } from "./namespace.js";
