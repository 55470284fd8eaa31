import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("api_keys")
    .addColumn("id", "text", (col) => col.primaryKey())
    .addColumn("tenant_id", "text", (col) => col.notNull())
    .addColumn("name", "text", (col) => col.notNull())
    .addColumn("secret_hash", "bytea", (col) => col.notNull().unique())
    .addColumn("created_at", "timestamptz", (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn("revoked_at", "timestamptz")
    .execute();

  await db.schema
    .createTable("usage_events")
    .addColumn("request_id", "text", (col) => col.primaryKey())
    .addColumn("tenant_id", "text", (col) => col.notNull())
    .addColumn("key_id", "text", (col) => col.notNull())
    .addColumn("end_user", "text")
    .addColumn("model", "text", (col) => col.notNull())
    .addColumn("operation", "text", (col) => col.notNull())
    .addColumn("prompt_tokens", "integer", (col) => col.notNull())
    .addColumn("completion_tokens", "integer", (col) => col.notNull())
    .addColumn("status", "text", (col) => col.notNull())
    .addColumn("served_by", "text", (col) => col.notNull())
    .addColumn("started_at", "timestamptz", (col) => col.notNull())
    .addColumn("finished_at", "timestamptz", (col) => col.notNull())
    .addColumn("recorded_at", "timestamptz", (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex("usage_events_tenant_finished_idx")
    .on("usage_events")
    .columns(["tenant_id", "finished_at"])
    .execute();

  await db.schema
    .createTable("usage_hourly")
    .addColumn("hour", "timestamptz", (col) => col.notNull())
    .addColumn("tenant_id", "text", (col) => col.notNull())
    .addColumn("key_id", "text", (col) => col.notNull())
    .addColumn("model", "text", (col) => col.notNull())
    .addColumn("requests", "bigint", (col) => col.notNull())
    .addColumn("prompt_tokens", "bigint", (col) => col.notNull())
    .addColumn("completion_tokens", "bigint", (col) => col.notNull())
    .addPrimaryKeyConstraint("usage_hourly_pk", ["hour", "tenant_id", "key_id", "model"])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("usage_hourly").execute();
  await db.schema.dropTable("usage_events").execute();
  await db.schema.dropTable("api_keys").execute();
}
