import { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import {
  PlatformError,
  USAGE_EXPORT_FIELDS,
  USAGE_EXPORT_PAGE_ROWS,
  usageExportPage,
  type UsageExportCursor,
  type UsageExportPage,
  type UsageExportRow,
} from "@llmaas/contracts";
import { adminOf } from "../auth/index.js";
import type { AdminRoutesOptions } from "../admin/call.js";
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

/** Chunks of about this many characters: out of V8's large-object space, yet few writes. */
const CHUNK_CHARS = 32 * 1024;

type FetchPage = (after: UsageExportCursor | null) => Promise<UsageExportPage>;

/** A page as it goes out: its rows already rendered, in chunks of about `CHUNK_CHARS`. */
interface RenderedPage {
  chunks: Buffer[];
  next: UsageExportCursor | null;
}

/**
 * Renders a page as soon as it arrives, in the same turn of the event loop: its parsed rows die young, so the
 * garbage collector's cheap young-generation pass reclaims them. Rows kept until the socket drained would survive
 * into the old generation, which V8 collects rarely, and the gateway's memory would grow with the export's length
 * until it did.
 */
function renderPage(page: UsageExportPage, line: (event: UsageExportRow) => string): RenderedPage {
  const chunks: Buffer[] = [];
  let text = "";
  for (const event of page.events) {
    text += line(event);
    if (text.length >= CHUNK_CHARS) {
      chunks.push(Buffer.from(text));
      text = "";
    }
  }
  if (text !== "") chunks.push(Buffer.from(text));
  return { chunks, next: page.next };
}

/**
 * The body, produced only as fast as the client reads. `_read` pushes rendered chunks until the reader has enough
 * (`push` returns false); the next page is asked for as soon as the previous one's cursor is known, while that one is
 * written, so at most two pages are held whatever the period holds. A failure to get a page destroys the stream,
 * which cuts the connection: the client sees an incomplete body, never a short one that looks whole.
 *
 * Pushing is synchronous; the only wait is for a page that has not arrived, and it ends in a `push`, which is what
 * Node waits for before it calls `_read` again.
 */
class UsageExportStream extends Readable {
  private queue: Buffer[];
  private next: Promise<RenderedPage> | null = null;
  private waitingForPage = false;

  constructor(
    private readonly fetchPage: (after: UsageExportCursor) => Promise<RenderedPage>,
    header: string,
    first: RenderedPage,
  ) {
    super();
    this.queue = header === "" ? first.chunks : [Buffer.from(header), ...first.chunks];
    this.prefetch(first.next);
  }

  private prefetch(after: UsageExportCursor | null): void {
    this.next = after ? this.fetchPage(after) : null;
    // Awaited when its turn comes; if the client leaves first, its failure must not go unhandled.
    this.next?.catch(() => undefined);
  }

  override _read(): void {
    if (!this.waitingForPage) this.fill();
  }

  private fill(): void {
    for (;;) {
      const chunk = this.queue.shift();
      if (chunk) {
        if (!this.push(chunk)) return;
        continue;
      }
      if (!this.next) {
        this.push(null);
        return;
      }
      this.waitForPage(this.next);
      return;
    }
  }

  private waitForPage(page: Promise<RenderedPage>): void {
    this.waitingForPage = true;
    page.then(
      ({ chunks, next }) => {
        this.waitingForPage = false;
        if (this.destroyed) return;
        this.queue = chunks;
        this.prefetch(next);
        this.fill();
      },
      (error: unknown) => this.destroy(error instanceof Error ? error : new Error(String(error))),
    );
  }
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
    const fetchPage: FetchPage = (after) =>
      options.bus.request(
        usageExportPage,
        usageExportPage.subject,
        {
          principal,
          startTime: query.start_time,
          endTime: query.end_time,
          after,
          limit: USAGE_EXPORT_PAGE_ROWS,
        },
        { timeoutMs: options.timeoutMs },
      );
    const format = FORMATS[query.format];
    const rendered = (after: UsageExportCursor | null) =>
      fetchPage(after).then((page) => renderPage(page, format.line));
    const first = await rendered(null);
    const filename = `${principal.organizationId}-usage-${query.start_time}-${query.end_time}.${query.format}`;
    return reply
      .type(format.contentType)
      .header("content-disposition", `attachment; filename="${filename}"`)
      .send(new UsageExportStream(rendered, format.header, first));
  });
}
