import { sql, type Kysely } from "kysely";

/**
 * What customers set to bound their projects and keys, administered through OpenAI's routes (and the key settings
 * extension): a project's rate limits per model, its model permissions, hard spend limits per month for a project
 * and for the organization, and a key's own rate limits and token budget. Only the settings live here; what has been
 * used against them is counted elsewhere.
 *
 * A project rate limit row holds only what the customer set for one model: a null column, like a missing row,
 * stands for the default the operator configured (`DEFAULT_MAX_…`), so a change of the defaults reaches every
 * project that did not choose otherwise.
 */

/** Counts are bigint: a token budget per month may pass 2^31; all of them stay below 2^53 (checked by the API). */
const RATE_LIMIT_COLUMNS = [
  "max_requests_per_1_minute",
  "max_tokens_per_1_minute",
  "max_requests_per_1_day",
  "max_audio_megabytes_per_1_minute",
];

const positive = (column: string) => sql`${sql.ref(column)} > 0`;

export async function up(db: Kysely<unknown>): Promise<void> {
  let rateLimits = db.schema
    .createTable("project_rate_limits")
    .addColumn("project_id", "text", (col) => col.notNull().references("projects.id"))
    // A model id of the catalogue; an id the catalogue later drops keeps its row, which then applies to nothing.
    .addColumn("model", "text", (col) => col.notNull())
    .addColumn("updated_at", "timestamptz", (col) => col.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint("project_rate_limits_pk", ["project_id", "model"]);
  for (const column of RATE_LIMIT_COLUMNS) {
    rateLimits = rateLimits.addColumn(column, "bigint", (col) => col.check(positive(column)));
  }
  await rateLimits.execute();

  await db.schema
    .createTable("project_model_permissions")
    .addColumn("project_id", "text", (col) => col.primaryKey().references("projects.id"))
    .addColumn("mode", "text", (col) => col.notNull().check(sql`mode in ('allow_list', 'deny_list')`))
    // Ids or aliases as the customer wrote them: an alias stands for whatever model it resolves to at the time.
    .addColumn("model_ids", sql`text[]`, (col) => col.notNull())
    .addColumn("updated_at", "timestamptz", (col) => col.notNull().defaultTo(sql`now()`))
    .execute();

  // Per calendar month (UTC), in cents of `currency`: the platform's currency when the limit was set.
  for (const { table, owner, references } of [
    { table: "project_spend_limits", owner: "project_id", references: "projects.id" },
    { table: "organization_spend_limits", owner: "organization_id", references: "organizations.id" },
  ]) {
    await db.schema
      .createTable(table)
      .addColumn(owner, "text", (col) => col.primaryKey().references(references))
      .addColumn("threshold_amount", "bigint", (col) => col.notNull().check(sql`threshold_amount > 0`))
      .addColumn("currency", "text", (col) => col.notNull())
      .addColumn("updated_at", "timestamptz", (col) => col.notNull().defaultTo(sql`now()`))
      .execute();
  }

  await db.schema
    .alterTable("api_keys")
    .addColumn("max_requests_per_1_minute", "bigint", (col) =>
      col.check(positive("max_requests_per_1_minute")),
    )
    .addColumn("max_tokens_per_1_minute", "bigint", (col) => col.check(positive("max_tokens_per_1_minute")))
    .addColumn("token_budget_limit", "bigint", (col) => col.check(positive("token_budget_limit")))
    .addColumn("token_budget_interval", "text", (col) =>
      col.check(sql`token_budget_interval in ('day', 'month')`),
    )
    .execute();
  // A budget is a limit per interval: one without the other means nothing.
  await db.schema
    .alterTable("api_keys")
    .addCheckConstraint(
      "api_keys_token_budget_check",
      sql`(token_budget_limit is null) = (token_budget_interval is null)`,
    )
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  // The table-level check goes with the columns it names.
  await db.schema
    .alterTable("api_keys")
    .dropColumn("max_requests_per_1_minute")
    .dropColumn("max_tokens_per_1_minute")
    .dropColumn("token_budget_limit")
    .dropColumn("token_budget_interval")
    .execute();
  for (const table of [
    "organization_spend_limits",
    "project_spend_limits",
    "project_model_permissions",
    "project_rate_limits",
  ]) {
    await db.schema.dropTable(table).execute();
  }
}
