import { sql, type Kysely } from "kysely";

/**
 * Metering that bills: each raw event carries the prices it was recorded at and its cost, in pico-units (1e-12) of
 * the platform currency, so that integer arithmetic is exact and a later price change rewrites nothing. Aggregates
 * per minute, hour and day, per organization, project, key, model, end user and operation, hold the sums the Usage
 * and Costs API reads; they outlive the raw events, which a retention job deletes. Changes to publish to billing
 * consumers wait in an outbox written in the same transaction, so a crash between commit and publish loses nothing.
 *
 * Events recorded before this migration had no price: they keep a cost of 0 and no currency.
 */
const AGGREGATES = [
  { table: "usage_minute", unit: "minute" },
  { table: "usage_hourly", unit: "hour" },
  { table: "usage_daily", unit: "day" },
] as const;

/** Each raw event's prices (per token, per token, per audio minute) and costs, in pico-units. */
const PRICE_COLUMNS = [
  "input_price_pico",
  "output_price_pico",
  "audio_price_pico",
  "input_cost_pico",
  "output_cost_pico",
  "audio_cost_pico",
];

export async function up(db: Kysely<unknown>): Promise<void> {
  let events = db.schema
    .alterTable("usage_events")
    .addColumn("audio_seconds", "integer", (col) => col.notNull().defaultTo(0))
    .addColumn("currency", "text");
  for (const column of PRICE_COLUMNS) {
    events = events.addColumn(column, "bigint", (col) => col.notNull().defaultTo(0));
  }
  await events.execute();
  // Export pages through an organization's events by (finished_at, request_id); retention deletes by finished_at.
  await db.schema.dropIndex("usage_events_organization_finished_idx").execute();
  await db.schema
    .createIndex("usage_events_organization_finished_id_idx")
    .on("usage_events")
    .columns(["organization_id", "finished_at", "request_id"])
    .execute();

  await db.schema.dropTable("usage_hourly").execute();
  for (const { table, unit } of AGGREGATES) {
    await db.schema
      .createTable(table)
      .addColumn("organization_id", "text", (col) => col.notNull())
      .addColumn("bucket_start", "timestamptz", (col) => col.notNull())
      .addColumn("project_id", "text", (col) => col.notNull())
      .addColumn("key_id", "text", (col) => col.notNull())
      .addColumn("model", "text", (col) => col.notNull())
      // Part of the key, so never null: '' stands for requests that named no end user.
      .addColumn("end_user", "text", (col) => col.notNull())
      .addColumn("operation", "text", (col) => col.notNull())
      .addColumn("requests", "bigint", (col) => col.notNull())
      .addColumn("input_tokens", "bigint", (col) => col.notNull())
      .addColumn("output_tokens", "bigint", (col) => col.notNull())
      .addColumn("audio_seconds", "bigint", (col) => col.notNull())
      // Sums of bigint costs may outgrow a bigint; numeric stays exact.
      .addColumn("input_cost_pico", "numeric(38, 0)", (col) => col.notNull())
      .addColumn("output_cost_pico", "numeric(38, 0)", (col) => col.notNull())
      .addColumn("audio_cost_pico", "numeric(38, 0)", (col) => col.notNull())
      .addPrimaryKeyConstraint(`${table}_bucket_pk`, [
        "organization_id",
        "bucket_start",
        "project_id",
        "key_id",
        "model",
        "end_user",
        "operation",
      ])
      .execute();
    await sql`
      insert into ${sql.table(table)}
      select organization_id, date_trunc(${unit}, finished_at, 'UTC'), project_id, key_id, model,
             coalesce(end_user, ''), operation, count(*), sum(prompt_tokens), sum(completion_tokens),
             sum(audio_seconds), sum(input_cost_pico), sum(output_cost_pico), sum(audio_cost_pico)
      from usage_events group by 1, 2, 3, 4, 5, 6, 7`.execute(db);
  }

  await db.schema
    .createTable("metering_outbox")
    .addColumn("id", "bigint", (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn("created_at", "timestamptz", (col) => col.notNull().defaultTo(sql`now()`))
    // json, not jsonb: it is written once and read back whole, so jsonb's parsing on insert would be wasted.
    .addColumn("changes", "json", (col) => col.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("metering_outbox").execute();
  // From the hourly aggregate, not the raw events: retention may have deleted some of those.
  await db.schema
    .createTable("usage_hourly_0002")
    .addColumn("hour", "timestamptz", (col) => col.notNull())
    .addColumn("organization_id", "text", (col) => col.notNull())
    .addColumn("project_id", "text", (col) => col.notNull())
    .addColumn("key_id", "text", (col) => col.notNull())
    .addColumn("model", "text", (col) => col.notNull())
    .addColumn("requests", "bigint", (col) => col.notNull())
    .addColumn("prompt_tokens", "bigint", (col) => col.notNull())
    .addColumn("completion_tokens", "bigint", (col) => col.notNull())
    .addPrimaryKeyConstraint("usage_hourly_pk", ["hour", "organization_id", "project_id", "key_id", "model"])
    .execute();
  await sql`
    insert into usage_hourly_0002
    select bucket_start, organization_id, project_id, key_id, model, sum(requests), sum(input_tokens),
           sum(output_tokens)
    from usage_hourly group by 1, 2, 3, 4, 5`.execute(db);
  for (const { table } of AGGREGATES) await db.schema.dropTable(table).execute();
  await db.schema.alterTable("usage_hourly_0002").renameTo("usage_hourly").execute();

  await db.schema.dropIndex("usage_events_organization_finished_id_idx").execute();
  await db.schema
    .createIndex("usage_events_organization_finished_idx")
    .on("usage_events")
    .columns(["organization_id", "finished_at"])
    .execute();
  let events = db.schema.alterTable("usage_events").dropColumn("audio_seconds").dropColumn("currency");
  for (const column of PRICE_COLUMNS) {
    events = events.dropColumn(column);
  }
  await events.execute();
}
