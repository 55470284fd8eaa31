import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import type { Database } from "./schema.js";

export interface DatabaseOptions {
  url: string;
  poolSize: number;
  /**
   * A pooled connection that Postgres closes (a restart, a failover, an administrator) is reported here, idle or in
   * use. Without a listener `pg` re-throws it and the whole process dies; with one, the query in flight fails (and
   * can be retried) and the pool replaces the connection.
   */
  onConnectionError: (error: Error) => void;
}

/** Typed against the tables of the caller: a service passes its own (e.g. `AuthDatabase`), never all of them. */
export function createDatabase<Tables = Database>(options: DatabaseOptions): Kysely<Tables> {
  const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize });
  // The pool listens on idle connections only; a connection lost while checked out (mid-query, or inside a
  // transaction between statements) emits on the client itself.
  pool.on("error", options.onConnectionError);
  pool.on("connect", (client) => client.on("error", options.onConnectionError));
  return new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
}
