import { sql, type Kysely } from "kysely";

/**
 * The ledger behind quota leases (docs/quotas.md), owned by `auth`. `quota_windows` holds, per counter and window,
 * the limit in force and how much of it is handed out to gateways and not given back; a grant locks that one row, so
 * auth instances grant in turn and the sum never passes the limit. `quota_leases` holds each gateway's part of a
 * window, with the totals it last reported, so that a repeated report changes nothing.
 *
 * Amounts are numeric: money is counted in pico-units of the currency, beyond bigint's range for large limits.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("quota_windows")
    .addColumn("counter", "text", (col) => col.notNull())
    .addColumn("window_start", "bigint", (col) => col.notNull())
    .addColumn("window_end", "bigint", (col) => col.notNull())
    .addColumn("limit_amount", "numeric", (col) => col.notNull())
    .addColumn("outstanding", "numeric", (col) => col.notNull().defaultTo(0))
    .addPrimaryKeyConstraint("quota_windows_pk", ["counter", "window_start"])
    .execute();
  // The sweeper deletes ended windows.
  await db.schema.createIndex("quota_windows_end_idx").on("quota_windows").column("window_end").execute();

  await db.schema
    .createTable("quota_leases")
    .addColumn("counter", "text", (col) => col.notNull())
    .addColumn("window_start", "bigint", (col) => col.notNull())
    .addColumn("gateway_id", "text", (col) => col.notNull())
    .addColumn("granted", "numeric", (col) => col.notNull().defaultTo(0))
    .addColumn("consumed", "numeric", (col) => col.notNull().defaultTo(0))
    .addColumn("returned", "numeric", (col) => col.notNull().defaultTo(0))
    .addColumn("updated_at", "timestamptz", (col) => col.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("quota_leases_pk", ["counter", "window_start", "gateway_id"])
    .addForeignKeyConstraint(
      "quota_leases_window_fk",
      ["counter", "window_start"],
      "quota_windows",
      ["counter", "window_start"],
      (fk) => fk.onDelete("cascade"),
    )
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("quota_leases").execute();
  await db.schema.dropTable("quota_windows").execute();
}
