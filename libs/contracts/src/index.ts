export * from "./errors.js";
export * from "./subjects.js";
export * as openai from "./openai.js";
