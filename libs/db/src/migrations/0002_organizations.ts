import { sql, type Kysely } from "kysely";

/**
 * Organizations, projects, service accounts, project and admin API keys, administrators and the audit log, replacing
 * keys that belonged to a bare `tenant_id`.
 *
 * Existing keys keep working: their keyed hashes move to `api_key_secrets` unchanged. They go into one default
 * organization (`org_default`), in one project per former tenant (so what the tenants separated stays separate),
 * each owned by a service account. Usage rows follow the same mapping, and the hourly aggregates are rebuilt from the
 * events they were folded from.
 */

/** The same ids metering derives for usage events published before this migration (version 1). */
const legacyProjectId = (tenant: string) => sql<string>`'proj_' || substr(md5(${sql.ref(tenant)}), 1, 24)`;
const legacyServiceAccountId = (tenant: string) =>
  sql<string>`'svc_acct_' || substr(md5(${sql.ref(tenant)}), 1, 24)`;

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("organizations")
    .addColumn("id", "text", (col) => col.primaryKey())
    .addColumn("name", "text", (col) => col.notNull())
    .addColumn("status", "text", (col) =>
      col.notNull().check(sql`status in ('active', 'suspended', 'deleted')`),
    )
    .addColumn("created_at", "timestamptz", (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn("suspended_at", "timestamptz")
    .addColumn("deleted_at", "timestamptz")
    .addColumn("oidc", "jsonb")
    // Administrators' tokens are routed to their organization by issuer.
    .addColumn("oidc_issuer", "text", (col) => col.generatedAlwaysAs(sql`oidc ->> 'issuer'`).stored())
    .execute();
  await db.schema
    .createIndex("organizations_oidc_issuer_idx")
    .on("organizations")
    .column("oidc_issuer")
    .execute();

  await db.schema
    .createTable("projects")
    .addColumn("id", "text", (col) => col.primaryKey())
    .addColumn("organization_id", "text", (col) => col.notNull().references("organizations.id"))
    .addColumn("name", "text", (col) => col.notNull())
    .addColumn("status", "text", (col) => col.notNull().check(sql`status in ('active', 'archived')`))
    .addColumn("created_at", "timestamptz", (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn("archived_at", "timestamptz")
    .execute();
  await db.schema
    .createIndex("projects_organization_idx")
    .on("projects")
    .columns(["organization_id", "id"])
    .execute();

  await db.schema
    .createTable("service_accounts")
    .addColumn("id", "text", (col) => col.primaryKey())
    .addColumn("organization_id", "text", (col) => col.notNull().references("organizations.id"))
    .addColumn("project_id", "text", (col) => col.notNull().references("projects.id"))
    .addColumn("name", "text", (col) => col.notNull())
    .addColumn("role", "text", (col) => col.notNull().check(sql`role in ('owner', 'member', 'none')`))
    .addColumn("created_at", "timestamptz", (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn("deleted_at", "timestamptz")
    .execute();
  await db.schema
    .createIndex("service_accounts_project_idx")
    .on("service_accounts")
    .columns(["project_id", "id"])
    .execute();

  await db.schema.alterTable("api_keys").renameTo("api_keys_v1").execute();
  await db.schema
    .createTable("api_keys")
    .addColumn("id", "text", (col) => col.primaryKey())
    .addColumn("organization_id", "text", (col) => col.notNull().references("organizations.id"))
    .addColumn("project_id", "text", (col) => col.notNull().references("projects.id"))
    .addColumn("service_account_id", "text", (col) => col.notNull().references("service_accounts.id"))
    .addColumn("name", "text", (col) => col.notNull())
    .addColumn("redacted_value", "text", (col) => col.notNull())
    .addColumn("created_at", "timestamptz", (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn("expires_at", "timestamptz")
    .addColumn("last_used_at", "timestamptz")
    .addColumn("deleted_at", "timestamptz")
    .addColumn("allowed_models", sql`text[]`)
    .execute();
  await db.schema.createIndex("api_keys_project_idx").on("api_keys").columns(["project_id", "id"]).execute();

  // A key has one secret, or two or more while a rotation's grace period runs; each is found by its keyed hash.
  await db.schema
    .createTable("api_key_secrets")
    .addColumn("secret_hash", "bytea", (col) => col.primaryKey())
    .addColumn("key_id", "text", (col) => col.notNull().references("api_keys.id").onDelete("cascade"))
    .addColumn("created_at", "timestamptz", (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn("expires_at", "timestamptz")
    .execute();
  await db.schema.createIndex("api_key_secrets_key_idx").on("api_key_secrets").column("key_id").execute();

  await db.schema
    .createTable("admin_api_keys")
    .addColumn("id", "text", (col) => col.primaryKey())
    .addColumn("organization_id", "text", (col) => col.notNull().references("organizations.id"))
    .addColumn("name", "text", (col) => col.notNull())
    .addColumn("redacted_value", "text", (col) => col.notNull())
    .addColumn("secret_hash", "bytea", (col) => col.notNull().unique())
    .addColumn("owner", "jsonb", (col) => col.notNull())
    .addColumn("created_at", "timestamptz", (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn("expires_at", "timestamptz")
    .addColumn("last_used_at", "timestamptz")
    .addColumn("deleted_at", "timestamptz")
    .execute();
  await db.schema
    .createIndex("admin_api_keys_organization_idx")
    .on("admin_api_keys")
    .columns(["organization_id", "id"])
    .execute();

  await db.schema
    .createTable("administrators")
    .addColumn("id", "text", (col) => col.primaryKey())
    .addColumn("organization_id", "text", (col) => col.notNull().references("organizations.id"))
    .addColumn("issuer", "text", (col) => col.notNull())
    .addColumn("subject", "text", (col) => col.notNull())
    .addColumn("email", "text")
    .addColumn("name", "text")
    .addColumn("role", "text", (col) => col.notNull().check(sql`role in ('owner', 'reader')`))
    .addColumn("created_at", "timestamptz", (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn("last_login_at", "timestamptz", (col) => col.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint("administrators_identity_key", ["organization_id", "issuer", "subject"])
    .execute();

  // One row per ID token seen: its first use is the administrator's sign-in, audited once whatever the number of
  // auth instances. Rows go once the token has expired.
  await db.schema
    .createTable("admin_sessions")
    .addColumn("token_hash", "bytea", (col) => col.primaryKey())
    .addColumn("organization_id", "text", (col) => col.notNull())
    .addColumn("administrator_id", "text", (col) => col.notNull().references("administrators.id"))
    .addColumn("created_at", "timestamptz", (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn("expires_at", "timestamptz", (col) => col.notNull())
    .execute();
  await db.schema
    .createIndex("admin_sessions_expires_idx")
    .on("admin_sessions")
    .column("expires_at")
    .execute();

  await db.schema
    .createTable("audit_logs")
    .addColumn("id", "text", (col) => col.primaryKey())
    .addColumn("organization_id", "text", (col) => col.notNull())
    .addColumn("type", "text", (col) => col.notNull())
    .addColumn("effective_at", "timestamptz", (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn("project_id", "text")
    .addColumn("project_name", "text")
    .addColumn("actor", "jsonb")
    .addColumn("resource_id", "text")
    .addColumn("details", "jsonb")
    .execute();
  await db.schema
    .createIndex("audit_logs_organization_idx")
    .on("audit_logs")
    .columns(["organization_id", "id"])
    .execute();
  // Append-only for everyone, not just for the API: a change or deletion fails whoever attempts it.
  await sql`
    create function audit_logs_append_only() returns trigger language plpgsql as $$
    begin
      raise exception 'audit_logs is append-only';
    end $$`.execute(db);
  await sql`
    create trigger audit_logs_append_only before update or delete or truncate on audit_logs
    for each statement execute function audit_logs_append_only()`.execute(db);

  await moveLegacyKeys(db);
  await attributeUsageToProjects(db);
}

async function moveLegacyKeys(db: Kysely<unknown>): Promise<void> {
  await sql`
    insert into organizations (id, name, status, created_at)
    select 'org_default', 'Default organization', 'active', now()
    where exists (select 1 from api_keys_v1) or exists (select 1 from usage_events)`.execute(db);
  await sql`
    with tenants as (
      select tenant_id, min(created_at) as created_at from api_keys_v1 group by tenant_id
      union all
      select tenant_id, min(started_at) from usage_events
      where tenant_id not in (select tenant_id from api_keys_v1) group by tenant_id
    )
    insert into projects (id, organization_id, name, status, created_at)
    select ${legacyProjectId("tenant_id")}, 'org_default', tenant_id, 'active', created_at from tenants`.execute(
    db,
  );
  await sql`
    insert into service_accounts (id, organization_id, project_id, name, role, created_at)
    select ${legacyServiceAccountId("tenant_id")}, 'org_default', ${legacyProjectId("tenant_id")},
           'Keys from before organizations', 'member', min(created_at)
    from api_keys_v1 group by tenant_id`.execute(db);
  // Old keys read `sk-lm-<id>-<secret>`: their id was never secret, so it can stand for the redacted value.
  await sql`
    insert into api_keys (id, organization_id, project_id, service_account_id, name, redacted_value, created_at,
                          deleted_at)
    select id, 'org_default', ${legacyProjectId("tenant_id")}, ${legacyServiceAccountId("tenant_id")}, name,
           'sk-lm-' || id || '-...', created_at, revoked_at
    from api_keys_v1`.execute(db);
  await sql`
    insert into api_key_secrets (secret_hash, key_id, created_at)
    select secret_hash, id, created_at from api_keys_v1`.execute(db);
  await db.schema.dropTable("api_keys_v1").execute();
}

async function attributeUsageToProjects(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("usage_events").addColumn("project_id", "text").execute();
  await sql`update usage_events set project_id = ${legacyProjectId("tenant_id")}, tenant_id = 'org_default'`.execute(
    db,
  );
  await db.schema.alterTable("usage_events").renameColumn("tenant_id", "organization_id").execute();
  await db.schema
    .alterTable("usage_events")
    .alterColumn("project_id", (col) => col.setNotNull())
    .execute();
  await db.schema.dropIndex("usage_events_tenant_finished_idx").execute();
  await db.schema
    .createIndex("usage_events_organization_finished_idx")
    .on("usage_events")
    .columns(["organization_id", "finished_at"])
    .execute();

  await db.schema.dropTable("usage_hourly").execute();
  await db.schema
    .createTable("usage_hourly")
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
  await rebuildHourlyUsage(db, ["organization_id", "project_id"]);
}

async function rebuildHourlyUsage(db: Kysely<unknown>, owners: string[]): Promise<void> {
  const columns = sql.join(owners.map((owner) => sql.ref(owner)));
  await sql`
    insert into usage_hourly (hour, ${columns}, key_id, model, requests, prompt_tokens, completion_tokens)
    select date_trunc('hour', finished_at, 'UTC'), ${columns}, key_id, model, count(*), sum(prompt_tokens),
           sum(completion_tokens)
    from usage_events group by 1, ${columns}, key_id, model`.execute(db);
}

/**
 * Back to keys of a bare tenant. A project this migration made for a former tenant gives that tenant back (its id is
 * derived from the tenant's name, which is the project's); anything else falls back to its organization. A key that
 * is refused today for any reason (deleted, expired, its project archived, its organization suspended or deleted)
 * goes back revoked, never live. Each key keeps its newest secret.
 */
export async function down(db: Kysely<unknown>): Promise<void> {
  const tenantOf = (organization: string, project: string) => sql<string>`
    coalesce((select p.name from projects p
              where p.id = ${sql.ref(project)} and ${sql.ref(organization)} = 'org_default'
                and p.id = ${legacyProjectId("p.name")}), ${sql.ref(organization)})`;
  await db.schema
    .createTable("api_keys_v1")
    .addColumn("id", "text", (col) => col.primaryKey())
    .addColumn("tenant_id", "text", (col) => col.notNull())
    .addColumn("name", "text", (col) => col.notNull())
    .addColumn("secret_hash", "bytea", (col) => col.notNull().unique())
    .addColumn("created_at", "timestamptz", (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn("revoked_at", "timestamptz")
    .execute();
  await sql`
    insert into api_keys_v1 (id, tenant_id, name, secret_hash, created_at, revoked_at)
    select distinct on (k.id) k.id, ${tenantOf("k.organization_id", "k.project_id")}, k.name, s.secret_hash,
           k.created_at,
           coalesce(k.deleted_at, p.archived_at, o.suspended_at, o.deleted_at,
                    case when k.expires_at <= now() then k.expires_at end,
                    case when s.expires_at <= now() then s.expires_at end)
    from api_keys k
    join api_key_secrets s on s.key_id = k.id
    join projects p on p.id = k.project_id
    join organizations o on o.id = k.organization_id
    order by k.id, s.created_at desc`.execute(db);
  await sql`update usage_events set organization_id = ${tenantOf("organization_id", "project_id")}`.execute(
    db,
  );

  await db.schema.dropTable("audit_logs").execute();
  await sql`drop function audit_logs_append_only()`.execute(db);
  for (const table of [
    "admin_sessions",
    "administrators",
    "admin_api_keys",
    "api_key_secrets",
    "api_keys",
    "service_accounts",
    "projects",
    "organizations",
  ]) {
    await db.schema.dropTable(table).execute();
  }
  await db.schema.alterTable("api_keys_v1").renameTo("api_keys").execute();

  await db.schema.dropIndex("usage_events_organization_finished_idx").execute();
  await db.schema.alterTable("usage_events").renameColumn("organization_id", "tenant_id").execute();
  await db.schema.alterTable("usage_events").dropColumn("project_id").execute();
  await db.schema
    .createIndex("usage_events_tenant_finished_idx")
    .on("usage_events")
    .columns(["tenant_id", "finished_at"])
    .execute();
  await db.schema.dropTable("usage_hourly").execute();
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
  await rebuildHourlyUsage(db, ["tenant_id"]);
}
