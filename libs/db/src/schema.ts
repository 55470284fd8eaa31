import type { ColumnType, Selectable } from "kysely";

/** Columns Postgres fills in itself on insert. */
type DefaultedTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;
/** bigint counters come back from `pg` as strings, so they cannot lose precision. */
type Counter = ColumnType<string, number | bigint | string, number | bigint | string>;

export interface ApiKeysTable {
  id: string;
  tenant_id: string;
  name: string;
  /** HMAC-SHA256 of the whole key under the server secret; the key itself is never stored. */
  secret_hash: Buffer;
  created_at: DefaultedTimestamp;
  revoked_at: Date | null;
}

export interface UsageEventsTable {
  request_id: string;
  tenant_id: string;
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
  tenant_id: string;
  key_id: string;
  model: string;
  requests: Counter;
  prompt_tokens: Counter;
  completion_tokens: Counter;
}

export interface Database {
  api_keys: ApiKeysTable;
  usage_events: UsageEventsTable;
  usage_hourly: UsageHourlyTable;
}

export type UsageEventRow = Selectable<UsageEventsTable>;
