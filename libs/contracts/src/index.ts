export * from "./errors.js";
export * from "./definitions.js";
export * from "./auth.js";
export * from "./subjects.js";
export * from "./admin.js";
export * from "./operator.js";
export * as openai from "./openai.js";
export * as openaiAdmin from "./openai-admin.js";
export * from "./metering.js";
