import type { ColumnType, Generated, Selectable } from "kysely";

/**
 * One Postgres database, tables with one owner each: `auth` alone reads and writes identities, keys and the audit log
 * (`AuthDatabase`); `metering` alone writes usage (`MeteringDatabase`). Each service is typed against its own tables
 * only, so a query across the boundary does not compile; another service asks the owner over NATS.
 */

/** Columns Postgres fills in itself on insert. */
type DefaultedTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;
/** bigint counters come back from `pg` as strings, so they cannot lose precision. */
type Counter = ColumnType<string, number | bigint | string, number | bigint | string>;
/** jsonb: written as JSON text, read back parsed. */
type Json<T> = ColumnType<T, string, string>;

export interface OrganizationsTable {
  id: string;
  name: string;
  status: "active" | "suspended" | "deleted";
  created_at: DefaultedTimestamp;
  suspended_at: Date | null;
  deleted_at: Date | null;
  /** The operator's OIDC settings for the organization's administrators, as `OidcSettings`. */
  oidc: Json<unknown> | null;
  oidc_issuer: Generated<string | null>;
}

export interface ProjectsTable {
  id: string;
  organization_id: string;
  name: string;
  status: "active" | "archived";
  created_at: DefaultedTimestamp;
  archived_at: Date | null;
}

export interface ServiceAccountsTable {
  id: string;
  organization_id: string;
  project_id: string;
  name: string;
  role: "owner" | "member" | "none";
  created_at: DefaultedTimestamp;
  deleted_at: Date | null;
}

export interface ApiKeysTable {
  id: string;
  organization_id: string;
  project_id: string;
  service_account_id: string;
  name: string;
  redacted_value: string;
  created_at: DefaultedTimestamp;
  expires_at: Date | null;
  last_used_at: Date | null;
  deleted_at: Date | null;
  allowed_models: string[] | null;
}

export interface ApiKeySecretsTable {
  /** HMAC-SHA256 of the whole secret under the server key; the secret itself is never stored. */
  secret_hash: Buffer;
  key_id: string;
  created_at: DefaultedTimestamp;
  /** Set when a rotation replaces this secret: it keeps working until then. */
  expires_at: Date | null;
}

export interface AdminApiKeysTable {
  id: string;
  organization_id: string;
  name: string;
  redacted_value: string;
  secret_hash: Buffer;
  /** OpenAI's `owner` object of the key, fixed at creation. */
  owner: Json<unknown>;
  created_at: DefaultedTimestamp;
  expires_at: Date | null;
  last_used_at: Date | null;
  deleted_at: Date | null;
}

export interface AdministratorsTable {
  id: string;
  organization_id: string;
  issuer: string;
  subject: string;
  email: string | null;
  name: string | null;
  role: "owner" | "reader";
  created_at: DefaultedTimestamp;
  last_login_at: DefaultedTimestamp;
}

export interface AdminSessionsTable {
  /** HMAC of the ID token, so a stolen table holds no usable token. */
  token_hash: Buffer;
  organization_id: string;
  administrator_id: string;
  created_at: DefaultedTimestamp;
  expires_at: Date;
}

export interface AuditLogsTable {
  id: string;
  organization_id: string;
  type: string;
  effective_at: DefaultedTimestamp;
  project_id: string | null;
  project_name: string | null;
  actor: Json<unknown> | null;
  /** The object changed, for the `resource_ids[]` filter. */
  resource_id: string | null;
  /** The type-specific object OpenAI puts under a key named after the type. */
  details: Json<unknown> | null;
}

export interface UsageEventsTable {
  request_id: string;
  organization_id: string;
  project_id: string;
  key_id: string;
  end_user: string | null;
  model: string;
  operation: string;
  prompt_tokens: number;
  completion_tokens: number;
  status: string;
  served_by: string;
  started_at: Date | string;
  finished_at: Date | string;
  recorded_at: DefaultedTimestamp;
}

export interface UsageHourlyTable {
  hour: Date | string;
  organization_id: string;
  project_id: string;
  key_id: string;
  model: string;
  requests: Counter;
  prompt_tokens: Counter;
  completion_tokens: Counter;
}

export interface AuthDatabase {
  organizations: OrganizationsTable;
  projects: ProjectsTable;
  service_accounts: ServiceAccountsTable;
  api_keys: ApiKeysTable;
  api_key_secrets: ApiKeySecretsTable;
  admin_api_keys: AdminApiKeysTable;
  administrators: AdministratorsTable;
  admin_sessions: AdminSessionsTable;
  audit_logs: AuditLogsTable;
}

export interface MeteringDatabase {
  usage_events: UsageEventsTable;
  usage_hourly: UsageHourlyTable;
}

/** Every table: for migrations and tests, which set up and inspect the whole database. */
export type Database = AuthDatabase & MeteringDatabase;

export type UsageEventRow = Selectable<UsageEventsTable>;
