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
  /** Extension: the key's own rate limits; null is none beyond the project's. */
  max_requests_per_1_minute: LimitCount | null;
  max_tokens_per_1_minute: LimitCount | null;
  /** Extension: input plus output tokens per calendar day or month (UTC); both set or both null. */
  token_budget_limit: LimitCount | null;
  token_budget_interval: "day" | "month" | null;
  /** Extension: overrides the project's guardrail mode; null follows it. */
  guardrail_mode: "off" | "flag" | "block" | null;
}

/** A limit set by a customer: bigint, read back from `pg` as a string (the API keeps them below 2^53). */
type LimitCount = ColumnType<string, number, number>;

/** What a project set for one model; a null column (or no row) is the operator's default (`DEFAULT_MAX_…`). */
export interface ProjectRateLimitsTable {
  project_id: string;
  /** A model id of the catalogue. */
  model: string;
  max_requests_per_1_minute: LimitCount | null;
  max_tokens_per_1_minute: LimitCount | null;
  max_requests_per_1_day: LimitCount | null;
  max_audio_megabytes_per_1_minute: LimitCount | null;
  updated_at: DefaultedTimestamp;
}

export interface ProjectModelPermissionsTable {
  project_id: string;
  mode: "allow_list" | "deny_list";
  /** Model ids or aliases, as the customer wrote them. */
  model_ids: string[];
  updated_at: DefaultedTimestamp;
}

/** A hard spend limit per calendar month (UTC), in cents of `currency`. */
export interface ProjectSpendLimitsTable {
  project_id: string;
  threshold_amount: LimitCount;
  currency: string;
  updated_at: DefaultedTimestamp;
}

export interface OrganizationSpendLimitsTable {
  organization_id: string;
  threshold_amount: LimitCount;
  currency: string;
  updated_at: DefaultedTimestamp;
}

/** A project's guardrail policy; no row is the platform's default (`GUARDRAIL_DEFAULT_*` of `auth`). */
export interface ProjectGuardrailPoliciesTable {
  project_id: string;
  mode: "off" | "flag" | "block";
  threshold: number;
  on_timeout: "allow" | "block";
  updated_at: DefaultedTimestamp;
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

/** bigint columns too; a cost in pico-units of the currency may exceed 2^53. */
type Amount = ColumnType<string, bigint | string | number, bigint | string | number>;

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
  audio_seconds: ColumnType<number, number | undefined, number>;
  screened_inputs: ColumnType<number, number | undefined, number>;
  status: string;
  served_by: string;
  started_at: Date | string;
  finished_at: Date | string;
  recorded_at: DefaultedTimestamp;
  /** Null for events recorded before prices existed (their costs are 0). */
  currency: string | null;
  /** The prices in force when the event was recorded: pico-units per token, per token, per audio minute. */
  input_price_pico: Amount;
  output_price_pico: Amount;
  audio_price_pico: Amount;
  input_cost_pico: Amount;
  output_cost_pico: Amount;
  audio_cost_pico: Amount;
}

/** `usage_minute`, `usage_hourly` and `usage_daily`: the same sums over buckets of one minute, hour and day. */
export interface UsageAggregateTable {
  organization_id: string;
  bucket_start: Date | string;
  project_id: string;
  key_id: string;
  model: string;
  /** '' when the requests named no end user. */
  end_user: string;
  operation: string;
  requests: Counter;
  input_tokens: Counter;
  output_tokens: Counter;
  audio_seconds: Counter;
  /** Defaults to 0: rows written before the guardrail had none. */
  screened_inputs: ColumnType<string, number | bigint | string | undefined, number | bigint | string>;
  input_cost_pico: Amount;
  output_cost_pico: Amount;
  audio_cost_pico: Amount;
}

export interface MeteringOutboxTable {
  id: Generated<string>;
  created_at: DefaultedTimestamp;
  /** What one committed batch added to the aggregates, as published to billing consumers. */
  changes: Json<unknown>;
}

/** numeric columns: `pg` returns them as strings, so no amount loses precision. */
type Numeric = ColumnType<string, bigint | string, bigint | string>;

export interface QuotaWindowsTable {
  counter: string;
  /** Unix seconds (bigint, so read back as a string). */
  window_start: ColumnType<string | number, number, number>;
  window_end: ColumnType<string | number, number, number>;
  limit_amount: Numeric;
  /** Handed out to gateways and not given back. */
  outstanding: ColumnType<string, bigint | string | undefined, bigint | string>;
}

export interface QuotaLeasesTable {
  counter: string;
  window_start: ColumnType<string | number, number, number>;
  gateway_id: string;
  granted: ColumnType<string, bigint | string | undefined, bigint | string>;
  /** Totals the gateway last reported. */
  consumed: ColumnType<string, bigint | string | undefined, bigint | string>;
  returned: ColumnType<string, bigint | string | undefined, bigint | string>;
  updated_at: DefaultedTimestamp;
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
  project_rate_limits: ProjectRateLimitsTable;
  project_model_permissions: ProjectModelPermissionsTable;
  project_spend_limits: ProjectSpendLimitsTable;
  organization_spend_limits: OrganizationSpendLimitsTable;
  project_guardrail_policies: ProjectGuardrailPoliciesTable;
  quota_windows: QuotaWindowsTable;
  quota_leases: QuotaLeasesTable;
}

export interface MeteringDatabase {
  usage_events: UsageEventsTable;
  usage_minute: UsageAggregateTable;
  usage_hourly: UsageAggregateTable;
  usage_daily: UsageAggregateTable;
  metering_outbox: MeteringOutboxTable;
}

/** Every table: for migrations and tests, which set up and inspect the whole database. */
export type Database = AuthDatabase & MeteringDatabase;

export type UsageEventRow = Selectable<UsageEventsTable>;
