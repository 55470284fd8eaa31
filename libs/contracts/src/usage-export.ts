import { z } from "zod";
import { adminSubject } from "./admin.js";
import { UsageOperation, UsageStatus } from "./subjects.js";

/**
 * The usage export on the bus (docs/usage-export.md): every raw usage event of an organization in a period, for
 * billing and for customers who leave. The gateway pages through them with a keyset cursor, one request per page, and
 * streams each page to the client as it arrives; `metering`, which owns the events, answers each page from Postgres
 * without keeping anything between pages, so any instance can serve any page.
 *
 * Pages are small on purpose. A reply is capped far below NATS's 1 MB, and below V8's large-object size (128 KiB) as
 * well: the buffers and strings of a page then die young, where the garbage collector reclaims them cheaply, instead
 * of piling up in the old generation until a full collection. That is what keeps every process's memory flat over an
 * export of millions of events. Events travel as arrays in `USAGE_EXPORT_FIELDS` order, half the bytes of objects.
 */

/** What the gateway asks for per page: about 80 KiB of typical events. */
export const USAGE_EXPORT_PAGE_ROWS = 250;
/** At most this many events per reply. */
export const MAX_USAGE_EXPORT_ROWS = 1_000;
/** At most this many bytes of events per reply (at least one event is always sent, however large). */
export const MAX_USAGE_EXPORT_REPLY_BYTES = 96 * 1024;

/**
 * A timestamp exactly as stored (Postgres keeps microseconds, which the cursor needs): ISO 8601, UTC, always six
 * fractional digits, so that the values also sort as text.
 */
const Timestamp = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/, "an ISO 8601 UTC timestamp");
/** An integer amount in pico-units (1e-12) of the currency, as a decimal string: never a float. */
const Pico = z.string().regex(/^\d{1,20}$/, "an integer amount in pico-units");
const Count = z.number().int().nonnegative();
const UnixSeconds = z.number().int().nonnegative();

/**
 * The export's fields, in order: the CSV header and the JSON Lines keys. A stable, documented format
 * (docs/usage-export.md, docs/openapi.yaml): renaming or reordering is a breaking change.
 */
export const USAGE_EXPORT_FIELDS = [
  "id",
  "organization_id",
  "project_id",
  "api_key_id",
  "model",
  "user",
  "operation",
  "status",
  "input_tokens",
  "output_tokens",
  "audio_seconds",
  "started_at",
  "finished_at",
  "served_by",
  "currency",
  "input_price_pico_per_token",
  "output_price_pico_per_token",
  "audio_price_pico_per_minute",
  "input_cost_pico",
  "output_cost_pico",
  "audio_cost_pico",
  "cost",
  /** Added with the guardrail, at the end so that existing readers keep their columns. */
  "screened_inputs",
] as const;
export type UsageExportField = (typeof USAGE_EXPORT_FIELDS)[number];

/** One raw usage event, its values in `USAGE_EXPORT_FIELDS` order. Counts and prices, never content. */
export const UsageExportRow = z.tuple([
  /** id: the request id. */
  z.string().min(1),
  /** organization_id, project_id, api_key_id, model */
  z.string(),
  z.string(),
  z.string(),
  z.string(),
  /** user: the request's `user`, or null. */
  z.string().nullable(),
  UsageOperation,
  UsageStatus,
  /** input_tokens, output_tokens, audio_seconds */
  Count,
  Count,
  Count,
  /** started_at, finished_at */
  Timestamp,
  Timestamp,
  /** served_by: the worker instance. */
  z.string(),
  /** currency: ISO 4217; null for events recorded before prices existed (their costs are 0). */
  z
    .string()
    .regex(/^[A-Z]{3}$/)
    .nullable(),
  /** The prices in force when the event was recorded: per input token, per output token, per audio minute. */
  Pico,
  Pico,
  Pico,
  /** input_cost_pico, output_cost_pico, audio_cost_pico */
  Pico,
  Pico,
  Pico,
  /** cost: the three costs' sum in currency units, exact, twelve decimals: "0.000001500000". */
  z.string().regex(/^\d{1,12}\.\d{12}$/, "a decimal amount with twelve decimals"),
  /** screened_inputs: texts screened by `POST /v1/guardrail/screen`. */
  Count,
]);
export type UsageExportRow = z.infer<typeof UsageExportRow>;
// A field added to one list and not the other does not compile.
const sameLength: UsageExportRow["length"] extends (typeof USAGE_EXPORT_FIELDS)["length"] ? true : never =
  true;
void sameLength;

/** Where the next page starts: the sort key of the last event sent. Opaque to the gateway. */
export const UsageExportCursor = z.object({
  finishedAt: Timestamp,
  requestId: z.string().min(1),
});
export type UsageExportCursor = z.infer<typeof UsageExportCursor>;

export const UsageExportPageQuery = z.object({
  /** Unix seconds: events that finished at or after `startTime` and before `endTime`. */
  startTime: UnixSeconds,
  endTime: UnixSeconds,
  /** null for the first page, then the previous reply's `next`. */
  after: UsageExportCursor.nullable(),
  limit: z.number().int().min(1).max(MAX_USAGE_EXPORT_ROWS),
});
export type UsageExportPageQuery = z.infer<typeof UsageExportPageQuery>;

export const UsageExportPage = z.object({
  /** Ordered by finished_at, then id. */
  events: z.array(UsageExportRow).max(MAX_USAGE_EXPORT_ROWS),
  /** Pass as `after` for the rest; null when this was the last page. */
  next: UsageExportCursor.nullable(),
});
export type UsageExportPage = z.infer<typeof UsageExportPage>;

/** Served by `metering` (queue `metering`), always scoped to the principal's organization; readers may export. */
export const usageExportPage = adminSubject(
  "usage.export_page",
  "read",
  UsageExportPageQuery.shape,
  UsageExportPage,
);
