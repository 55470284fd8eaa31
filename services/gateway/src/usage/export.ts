import type { FastifyInstance } from "fastify";
import { z } from "zod";
import {
  PlatformError,
  USAGE_EXPORT_FIELDS,
  USAGE_EXPORT_PAGE_ROWS,
  usageExportPage,
  type AdminPrincipal,
  type UsageExportCursor,
  type UsageExportPage,
  type UsageExportRow,
} from "@llmaas/contracts";
import { adminOf } from "../auth/index.js";
import type { AdminRoutesOptions } from "../admin/call.js";
import { streamFromFirstChunk } from "../admin/export.js";
import { parseQuery } from "../validation.js";

const UnixSeconds = z
  .string({ error: "required, in unix seconds" })
  .regex(/^\d{1,11}$/, "expected unix seconds (a non-negative integer)")
  .transform(Number);

const UsageExportQuery = z.object({
  start_time: UnixSeconds,
  end_time: UnixSeconds,
  format: z.enum(["csv", "jsonl"], { error: "expected `csv` or `jsonl`" }).default("jsonl"),
});
type UsageExportFormat = z.output<typeof UsageExportQuery>["format"];

/** Every parameter is checked: an unknown one is refused by name rather than silently ignored. */
function exportQuery(query: unknown): z.output<typeof UsageExportQuery> {
  for (const name of Object.keys(query ?? {})) {
    if (!Object.hasOwn(UsageExportQuery.shape, name)) {
      throw new PlatformError("invalid_request", `Unrecognized query parameter supplied: ${name}`, name);
    }
  }
  const parsed = parseQuery(UsageExportQuery, query);
  if (parsed.end_time <= parsed.start_time) {
    throw new PlatformError(
      "invalid_request",
      "Invalid query parameter 'end_time': it must be after start_time (the period is [start_time, end_time)).",
      "end_time",
    );
  }
  return parsed;
}

/** `"id":`, `"organization_id":`, …: each JSON line is written in the fields' order, without an object per event. */
const JSON_KEYS = USAGE_EXPORT_FIELDS.map(
  (field, index) => `${index === 0 ? "{" : ","}${JSON.stringify(field)}:`,
);

const FORMATS: Record<
  UsageExportFormat,
  { contentType: string; header: string; line: (event: UsageExportRow) => string }
> = {
  csv: {
    contentType: "text/csv; charset=utf-8",
    header: csvRecord(USAGE_EXPORT_FIELDS),
    line: csvRecord,
  },
  jsonl: {
    contentType: "application/x-ndjson",
    header: "",
    line: (event) => {
      let line = "";
      for (let index = 0; index < event.length; index++) {
        line += `${JSON_KEYS[index] ?? ""}${JSON.stringify(event[index])}`;
      }
      return `${line}}\n`;
    },
  },
};

/** RFC 4180: a field with a comma, a quote or a line break is quoted, its quotes doubled; records end in CRLF. */
function csvRecord(values: readonly (string | number | null)[]): string {
  let record = "";
  for (let index = 0; index < values.length; index++) {
    const value = values[index];
    const text = value === null || value === undefined ? "" : String(value);
    if (index > 0) record += ",";
    record += /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  }
  return `${record}\r\n`;
}

/**
 * The export's pages, each one bus request to `metering`. The next page is asked for as soon as its cursor is
 * known, while the current one is written: at most two pages are in memory, whatever the period holds.
 */
async function* exportPages(
  fetchPage: (after: UsageExportCursor | null) => Promise<UsageExportPage>,
): AsyncGenerator<UsageExportPage> {
  let pending = fetchPage(null);
  for (;;) {
    const page = await pending;
    if (page.next) {
      pending = fetchPage(page.next);
      // Awaited on the next turn; if the client leaves first, its failure must not go unhandled.
      pending.catch(() => undefined);
    }
    yield page;
    if (!page.next) return;
  }
}

/**
 * The body in chunks of about `CHUNK_CHARS`: small enough to stay out of V8's large-object space (see
 * `MAX_USAGE_EXPORT_REPLY_BYTES`), large enough to keep writes few. Nothing is yielded before the first page has
 * arrived, the CSV header included.
 */
const CHUNK_CHARS = 32 * 1024;

async function* exportBody(
  format: UsageExportFormat,
  pages: AsyncIterable<UsageExportPage>,
): AsyncGenerator<string> {
  const { header, line } = FORMATS[format];
  let chunk = header;
  for await (const page of pages) {
    for (const event of page.events) {
      chunk += line(event);
      if (chunk.length >= CHUNK_CHARS) {
        yield chunk;
        chunk = "";
      }
    }
    if (chunk !== "") yield chunk;
    chunk = "";
  }
}

function exportedPages(options: AdminRoutesOptions, principal: AdminPrincipal, start: number, end: number) {
  return exportPages((after) =>
    options.bus.request(
      usageExportPage,
      usageExportPage.subject,
      { principal, startTime: start, endTime: end, after, limit: USAGE_EXPORT_PAGE_ROWS },
      { timeoutMs: options.timeoutMs },
    ),
  );
}

/**
 * `GET /v1/organization/usage/export` (extension, docs/usage-export.md): every raw usage event of the caller's
 * organization that finished in [start_time, end_time), as CSV or JSON Lines, streamed page by page from `metering`
 * with backpressure, so no part of the platform holds the whole export. The first page is read before the status is
 * sent (an unreachable metering is an ordinary error answer); a failure later cuts the connection.
 */
export function registerUsageExport(app: FastifyInstance, options: AdminRoutesOptions): void {
  app.get("/v1/organization/usage/export", async (request, reply) => {
    const principal = adminOf(request);
    const query = exportQuery(request.query);
    const pages = exportedPages(options, principal, query.start_time, query.end_time);
    const body = await streamFromFirstChunk(exportBody(query.format, pages));
    const filename = `${principal.organizationId}-usage-${query.start_time}-${query.end_time}.${query.format}`;
    return reply
      .type(FORMATS[query.format].contentType)
      .header("content-disposition", `attachment; filename="${filename}"`)
      .send(body);
  });
}
