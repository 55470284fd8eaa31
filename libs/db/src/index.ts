export * from "./schema.js";
export * from "./database.js";
export * from "./migrate.js";
