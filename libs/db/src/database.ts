import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import type { Database } from "./schema.js";

export interface DatabaseOptions {
  url: string;
  poolSize: number;
  /**
   * An idle pooled connection that Postgres closes (a restart, a failover, an administrator) is reported here.
   * Without a listener `pg` re-throws it and the whole process dies; with one, the pool replaces the connection.
   */
  onIdleConnectionError: (error: Error) => void;
}

/** Typed against the tables of the caller: a service passes its own (e.g. `AuthDatabase`), never all of them. */
export function createDatabase<Tables = Database>(options: DatabaseOptions): Kysely<Tables> {
  const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize });
  pool.on("error", options.onIdleConnectionError);
  return new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
}
