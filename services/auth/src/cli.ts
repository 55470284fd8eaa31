import { parseArgs } from "node:util";
import { createDatabase } from "@llmaas/db";
import { loadAuthConfig } from "./config.js";
import { KeyStore } from "./keys.js";

const usage = "usage: create-key --name NAME [--tenant TENANT] [--json]";
const { values } = parseArgs({
  options: {
    name: { type: "string" },
    tenant: { type: "string", default: "default" },
    json: { type: "boolean", default: false },
  },
});
if (!values.name) {
  console.error(usage);
  process.exit(2);
}

const config = loadAuthConfig(process.env);
const db = createDatabase({ url: config.DATABASE_URL, poolSize: 1, onIdleConnectionError: () => undefined });
try {
  const key = await new KeyStore(db, config.AUTH_KEY_SECRET).create(values.tenant, values.name);
  if (values.json) {
    console.log(JSON.stringify(key));
  } else {
    console.log(
      `Created key ${key.id} (${key.name}) for tenant ${key.tenantId}. It is shown only this once:`,
    );
    console.log(key.apiKey);
  }
} finally {
  await db.destroy();
}
