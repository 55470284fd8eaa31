import { sql, type Kysely } from "kysely";

const MODES = sql`('off', 'flag', 'block')`;

/**
 * The guardrail (docs/guardrail.md). `auth` owns the policies: one row per project that set one (a project without a
 * row follows the platform's default, `GUARDRAIL_DEFAULT_MODE`), and a key's own mode. `metering` counts the inputs
 * `POST /v1/guardrail/screen` screened, in the raw events and in every aggregate. Never any screened text.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("project_guardrail_policies")
    .addColumn("project_id", "text", (col) => col.primaryKey().references("projects.id").onDelete("cascade"))
    .addColumn("mode", "text", (col) => col.notNull().check(sql`mode in ${MODES}`))
    .addColumn("threshold", "double precision", (col) => col.notNull())
    .addColumn("on_timeout", "text", (col) => col.notNull().check(sql`on_timeout in ('allow', 'block')`))
    .addColumn("updated_at", "timestamptz", (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .alterTable("api_keys")
    .addColumn("guardrail_mode", "text", (col) => col.check(sql`guardrail_mode in ${MODES}`))
    .execute();

  await db.schema
    .alterTable("usage_events")
    .addColumn("screened_inputs", "integer", (col) => col.notNull().defaultTo(0))
    .execute();
  for (const table of ["usage_minute", "usage_hourly", "usage_daily"]) {
    await db.schema
      .alterTable(table)
      .addColumn("screened_inputs", "bigint", (col) => col.notNull().defaultTo(0))
      .execute();
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ["usage_minute", "usage_hourly", "usage_daily", "usage_events"]) {
    await db.schema.alterTable(table).dropColumn("screened_inputs").execute();
  }
  await db.schema.alterTable("api_keys").dropColumn("guardrail_mode").execute();
  await db.schema.dropTable("project_guardrail_policies").execute();
}
