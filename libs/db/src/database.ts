import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import type { Database } from "./schema.js";

export interface DatabaseOptions {
  url: string;
  poolSize: number;
}

export function createDatabase(options: DatabaseOptions): Kysely<Database> {
  return new Kysely<Database>({
    dialect: new PostgresDialect({
      pool: new pg.Pool({ connectionString: options.url, max: options.poolSize }),
    }),
  });
}
