export { type ITimeSpan, TimeSpan } from "./time-span.js";
