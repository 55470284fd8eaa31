export * from "./tracing.js";
export * from "./logger.js";
