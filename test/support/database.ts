import { randomBytes } from "node:crypto";
import pg from "pg";
import type { Kysely } from "kysely";
import { createDatabase, migrateToLatest, type Database } from "@llmaas/db";
import { testEnv } from "./env.js";

export interface TestDatabase {
  url: string;
  db: Kysely<Database>;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

async function admin<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: testEnv.TEST_POSTGRES_URL });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

/** A migrated database of its own, so concurrent runs on one Postgres never share rows. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `llmaas_test_${randomBytes(6).toString("hex")}`;
  await admin((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(testEnv.TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  // Dropping the database ends the backends of connections that are still closing; that is expected here.
  const db = createDatabase({ url: url.href, poolSize: 4, onConnectionError: () => undefined });
  await migrateToLatest(db);
  return {
    url: url.href,
    db,
    drop: async () => {
      await db.destroy();
      await admin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}
