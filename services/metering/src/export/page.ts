import { sql, type Kysely } from "kysely";
import {
  MAX_USAGE_EXPORT_REPLY_BYTES,
  type AdminPrincipal,
  type UsageExportCursor,
  type UsageExportPage,
  type UsageExportPageQuery,
  type UsageExportRow,
} from "@llmaas/contracts";
import type { MeteringDatabase } from "@llmaas/db";

/** Postgres keeps microseconds; a JavaScript Date would drop three digits, and the cursor must be exact. */
const ISO_MICROSECONDS = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"';
const PICO_PER_UNIT = 1_000_000_000_000;

export interface ExportPageOptions {
  /** The largest reply, in bytes of JSON events; at least one event is always sent. */
  maxBytes?: number;
}

interface PageRow {
  /** Events read (one more than the limit when more are left) and events that fit in the page. */
  fetched: string;
  included: string;
  /** The page's events as JSON arrays, comma-separated. */
  events: string;
  last_finished: string | null;
  last_request_id: string | null;
}

/**
 * One page of an organization's raw usage events that finished in [startTime, endTime), in (finished_at,
 * request_id) order, after the cursor: keyset pagination on `usage_events_organization_finished_id_idx`, so every
 * page costs the same however deep into the export it is, and nothing is kept between pages. The page stops at
 * `limit` events or at `maxBytes` of JSON, whichever comes first; `next` is null only when nothing is left.
 *
 * Postgres writes each event as a JSON array (`USAGE_EXPORT_FIELDS` order: amounts as decimal strings, so a bigint
 * never becomes a float; timestamps to the microsecond; the cost's decimal in exact numeric arithmetic) and the whole
 * page as one text value: one string to let go of (below) instead of thousands of row objects.
 */
export async function readUsageExportPage(
  db: Kysely<MeteringDatabase>,
  request: UsageExportPageQuery & { principal: AdminPrincipal },
  options: ExportPageOptions = {},
): Promise<UsageExportPage> {
  const maxBytes = options.maxBytes ?? MAX_USAGE_EXPORT_REPLY_BYTES;
  const { after, limit } = request;
  const afterCursor = after
    ? sql`and (e.finished_at, e.request_id) > (${after.finishedAt}::timestamptz, ${after.requestId})`
    : sql``;
  const { rows } = await sql<PageRow>`
    with candidates as (
      -- One more than asked for: whether anything is left is known without a last, empty page.
      select e.request_id, e.finished_at, t.finished,
        json_build_array(e.request_id, e.organization_id, e.project_id, e.key_id, e.model, e.end_user, e.operation,
          e.status, e.prompt_tokens, e.completion_tokens, e.audio_seconds, t.started, t.finished, e.served_by,
          e.currency, e.input_price_pico::text, e.output_price_pico::text, e.audio_price_pico::text,
          e.input_cost_pico::text, e.output_cost_pico::text, e.audio_cost_pico::text,
          div(c.pico, ${PICO_PER_UNIT})::text || '.' || lpad(mod(c.pico, ${PICO_PER_UNIT})::text, 12, '0'),
          e.screened_inputs
        )::text as event
      from usage_events e,
        lateral (select to_char(e.started_at at time zone 'UTC', ${ISO_MICROSECONDS}) as started,
                        to_char(e.finished_at at time zone 'UTC', ${ISO_MICROSECONDS}) as finished) t,
        lateral (select e.input_cost_pico::numeric + e.output_cost_pico + e.audio_cost_pico as pico) c
      where e.organization_id = ${request.principal.organizationId}
        and e.finished_at >= to_timestamp(${request.startTime}) and e.finished_at < to_timestamp(${request.endTime})
        ${afterCursor}
      order by e.finished_at, e.request_id
      limit ${limit + 1}
    ), numbered as (
      -- The bytes of each event with those before it (and a comma each): Postgres puts a space after each comma,
      -- so the JSON sent is a little smaller than counted.
      select request_id, finished, event, row_number() over w as n, sum(octet_length(event) + 1) over w as bytes
      from candidates window w as (order by finished_at, request_id)
    ), page as (
      -- The first event always, so that an export moves forward whatever one event weighs.
      select * from numbered where n <= ${limit} and (n = 1 or bytes <= ${maxBytes})
    )
    select (select count(*) from candidates) as fetched, count(*) as included,
      coalesce(string_agg(event, ',' order by n), '') as events,
      (array_agg(finished order by n desc))[1] as last_finished,
      (array_agg(request_id order by n desc))[1] as last_request_id
    from page`.execute(db);
  const page = rows[0];
  if (!page) throw new Error("the export page query returned no row");
  // Checked against UsageExportRow by the bus before it is sent.
  const events = JSON.parse(`[${page.events}]`) as UsageExportRow[];
  // The driver's result objects (query, row, callbacks) are reached from older objects for a while after the query,
  // so young collections keep what they hold: without letting go of the page's text here, every page's text was
  // promoted to the old generation and metering grew by the bytes exported until a full collection.
  page.events = "";
  rows.length = 0;
  const more = Number(page.included) < Number(page.fetched);
  const next: UsageExportCursor | null =
    more && page.last_finished !== null && page.last_request_id !== null
      ? { finishedAt: page.last_finished, requestId: page.last_request_id }
      : null;
  return { events, next };
}
