export { type IKey, Namespace, type NamespaceSettings } from "./namespace.js";
