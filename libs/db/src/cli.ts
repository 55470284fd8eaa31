import { parseConfig, databaseEnv } from "@llmaas/config";
import { createDatabase } from "./database.js";
import { migrateDown, migrateToLatest } from "./migrate.js";

const direction = process.argv[2] ?? "up";
if (direction !== "up" && direction !== "down") {
  console.error("usage: migrate [up|down]");
  process.exit(2);
}
const config = parseConfig("migrate", databaseEnv, process.env);
const db = createDatabase({ url: config.DATABASE_URL, poolSize: 1, onConnectionError: () => undefined });
try {
  await (direction === "up" ? migrateToLatest(db) : migrateDown(db));
  console.log(`migrations: ${direction} done`);
} finally {
  await db.destroy();
}
