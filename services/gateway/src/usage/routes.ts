import type { FastifyInstance } from "fastify";
import { z } from "zod";
import {
  MAX_USAGE_FILTER_VALUES,
  openaiAdmin,
  PlatformError,
  USAGE_BUCKET_WIDTHS,
  usageApiSubjects,
  type AdminPrincipal,
  type UsageDimension,
  type UsageOperation,
  type UsageRow,
  type UsageRows,
  type UsageRowsQuery,
} from "@llmaas/contracts";
import { adminOf } from "../auth/index.js";
import { busCaller, type AdminRoutesOptions, type BusCall } from "../admin/call.js";
import { listParam } from "../admin/params.js";
import { parseQuery } from "../validation.js";

export interface UsageRoutesOptions extends AdminRoutesOptions {
  /** The platform's currency (ISO 4217), in which metering stored every cost; answered in lowercase. */
  currency: string;
}

type BucketWidth = keyof typeof USAGE_BUCKET_WIDTHS;
type CostGroup = "project_id" | "api_key_id" | "line_item";

interface Route {
  path: string;
  operations: UsageOperation[];
  widths: readonly BucketWidth[];
  /** OpenAI's default and largest `limit` (buckets per page) for each width. */
  limits: Partial<Record<BucketWidth, { default: number; max: number }>>;
  groupBy: readonly string[];
  filters: readonly ("project_ids" | "user_ids" | "api_key_ids" | "models")[];
  batch: boolean;
}

const USAGE_LIMITS = {
  "1m": { default: 60, max: 1440 },
  "1h": { default: 24, max: 168 },
  "1d": { default: 7, max: 31 },
};
const USAGE_FILTERS = ["project_ids", "user_ids", "api_key_ids", "models"] as const;
const USAGE_GROUPS = ["project_id", "user_id", "api_key_id", "model"] as const;

const ROUTES = {
  completions: {
    path: "/v1/organization/usage/completions",
    operations: ["chat.completions", "completions"],
    widths: ["1m", "1h", "1d"],
    limits: USAGE_LIMITS,
    groupBy: [...USAGE_GROUPS, "batch", "service_tier"],
    filters: USAGE_FILTERS,
    batch: true,
  },
  embeddings: {
    path: "/v1/organization/usage/embeddings",
    operations: ["embeddings"],
    widths: ["1m", "1h", "1d"],
    limits: USAGE_LIMITS,
    groupBy: USAGE_GROUPS,
    filters: USAGE_FILTERS,
    batch: false,
  },
  audio_transcriptions: {
    path: "/v1/organization/usage/audio_transcriptions",
    operations: ["audio.transcriptions"],
    widths: ["1m", "1h", "1d"],
    limits: USAGE_LIMITS,
    groupBy: USAGE_GROUPS,
    filters: USAGE_FILTERS,
    batch: false,
  },
  costs: {
    path: "/v1/organization/costs",
    operations: ["chat.completions", "completions", "embeddings", "audio.transcriptions"],
    widths: ["1d"],
    limits: { "1d": { default: 7, max: 180 } },
    groupBy: ["project_id", "line_item", "api_key_id"],
    filters: ["project_ids", "api_key_ids"],
    batch: false,
  },
} satisfies Record<string, Route>;

// ---- query parameters

/** 11 digits of Unix seconds: until the year 5138. */
const MAX_UNIX_TIME = 99_999_999_999;
const UnixTime = z
  .string({ error: "expected a Unix timestamp in seconds" })
  .regex(/^\d{1,11}$/, "expected a Unix timestamp in seconds")
  .transform(Number);
const Limit = z
  .string()
  .regex(/^\d{1,9}$/, "expected a positive integer")
  .transform(Number);
const FilterValues = z.array(z.string().min(1).max(256)).max(MAX_USAGE_FILTER_VALUES);

function querySchema(route: Route) {
  return z.object({
    start_time: UnixTime,
    end_time: UnixTime.optional(),
    bucket_width: z.enum(route.widths as [BucketWidth, ...BucketWidth[]]).default("1d"),
    limit: Limit.optional(),
    page: z.string().max(64).optional(),
    batch: openaiAdmin.QueryBoolean.optional(),
    group_by: z.array(z.enum(route.groupBy as [string, ...string[]])),
    project_ids: FilterValues,
    user_ids: FilterValues,
    api_key_ids: FilterValues,
    models: FilterValues,
  });
}

interface UsageQuery {
  startTime: number;
  endTime: number;
  width: BucketWidth;
  limit: number;
  /** Where this page starts: start_time, or the bucket boundary a `page` cursor names. */
  pageStart: number;
  batch: boolean | undefined;
  groupBy: Set<string>;
  filters: Pick<UsageRowsQuery, "projectIds" | "userIds" | "apiKeyIds" | "models">;
}

const LIST_PARAMS = ["group_by", ...USAGE_FILTERS] as const;

/**
 * OpenAI's parameters, as its SDKs send them (`group_by[]=model&project_ids[]=proj_a`). Anything the route does not
 * take, or a value it cannot use, is a 400 that names the parameter: a silently ignored filter would answer wrong sums.
 */
function parseUsageQuery(route: Route, raw: Record<string, unknown>, nowSeconds: number): UsageQuery {
  const lists: readonly string[] = ["group_by", ...route.filters];
  const scalars = [
    "start_time",
    "end_time",
    "bucket_width",
    "limit",
    "page",
    ...(route.batch ? ["batch"] : []),
  ];
  for (const [name, value] of Object.entries(raw)) {
    const list = name.endsWith("[]") ? name.slice(0, -2) : name;
    if (lists.includes(list)) {
      if (name !== list && raw[list] !== undefined) {
        throw new PlatformError("invalid_request", `Give '${list}' as ${list}[]=… only.`, list);
      }
      continue;
    }
    if (!scalars.includes(name)) {
      throw new PlatformError("invalid_request", `Unrecognized query parameter supplied: ${name}`, name);
    }
    if (Array.isArray(value)) {
      throw new PlatformError("invalid_request", `Query parameter '${name}' was given more than once.`, name);
    }
  }
  const normalized: Record<string, unknown> = {};
  for (const name of scalars) if (raw[name] !== undefined) normalized[name] = raw[name];
  for (const name of LIST_PARAMS) normalized[name] = lists.includes(name) ? listParam(raw, name) : [];
  const query = parseQuery(querySchema(route), normalized);

  const limits = route.limits[query.bucket_width] ?? USAGE_LIMITS[query.bucket_width];
  const limit = query.limit ?? limits.default;
  if (limit < 1 || limit > limits.max) {
    throw new PlatformError(
      "invalid_request",
      `Invalid query parameter 'limit': between 1 and ${limits.max} for bucket_width=${query.bucket_width}.`,
      "limit",
    );
  }
  const width = USAGE_BUCKET_WIDTHS[query.bucket_width];
  let endTime = query.end_time ?? nowSeconds;
  let pageStart = query.start_time;
  if (query.page !== undefined) {
    const cursor = decodePage(query.page);
    if (query.end_time !== undefined && query.end_time !== cursor.endTime) {
      throw new PlatformError("invalid_request", "This page belongs to another end_time.", "page");
    }
    endTime = cursor.endTime;
    if (cursor.next <= query.start_time || cursor.next >= endTime || cursor.next % width !== 0) {
      throw new PlatformError("invalid_request", "This page belongs to another query.", "page");
    }
    pageStart = cursor.next;
  }
  if (endTime <= query.start_time) {
    const param = query.end_time === undefined ? "start_time" : "end_time";
    throw new PlatformError(
      "invalid_request",
      query.end_time === undefined ? "start_time is in the future." : "end_time must be after start_time.",
      param,
    );
  }
  return {
    startTime: query.start_time,
    endTime,
    width: query.bucket_width,
    limit,
    pageStart,
    batch: query.batch,
    groupBy: new Set(query.group_by),
    filters: {
      projectIds: query.project_ids,
      userIds: query.user_ids,
      apiKeyIds: query.api_key_ids,
      models: query.models,
    },
  };
}

/** `next_page`: the next bucket's start and the pinned end of the range, so that "now" does not move between pages. */
function encodePage(next: number, endTime: number): string {
  const bytes = Buffer.alloc(16);
  bytes.writeBigInt64BE(BigInt(next), 0);
  bytes.writeBigInt64BE(BigInt(endTime), 8);
  return `page_${bytes.toString("base64url")}`;
}

function decodePage(page: string): { next: number; endTime: number } {
  const match = /^page_([A-Za-z0-9_-]{22})$/.exec(page);
  const bytes = match?.[1] ? Buffer.from(match[1], "base64url") : undefined;
  const next = bytes?.length === 16 ? Number(bytes.readBigInt64BE(0)) : -1;
  const endTime = bytes?.length === 16 ? Number(bytes.readBigInt64BE(8)) : -1;
  if (next < 0 || endTime <= next || endTime > MAX_UNIX_TIME) {
    throw new PlatformError(
      "invalid_request",
      "Invalid page: pass the next_page of a previous answer.",
      "page",
    );
  }
  return { next, endTime };
}

// ---- buckets

interface Bucket {
  object: "bucket";
  start_time: number;
  end_time: number;
  results: object[];
}

interface Page {
  buckets: Bucket[];
  /** Keyed by the aligned start of each bucket (the first and last may be clipped). */
  byAlignedStart: Map<number, Bucket>;
  end: number;
}

/** Up to `limit` buckets from `pageStart`, aligned to UTC multiples of the width, clipped to [start, end). */
function pageOf(query: UsageQuery): Page {
  const width = USAGE_BUCKET_WIDTHS[query.width];
  const buckets: Bucket[] = [];
  const byAlignedStart = new Map<number, Bucket>();
  let start = query.pageStart;
  while (start < query.endTime && buckets.length < query.limit) {
    const aligned = Math.floor(start / width) * width;
    const end = Math.min(aligned + width, query.endTime);
    const bucket: Bucket = { object: "bucket", start_time: start, end_time: end, results: [] };
    buckets.push(bucket);
    byAlignedStart.set(aligned, bucket);
    start = end;
  }
  return { buckets, byAlignedStart, end: start };
}

function answer(query: UsageQuery, page: Page) {
  const hasMore = page.end < query.endTime;
  return {
    object: "page" as const,
    data: page.buckets,
    has_more: hasMore,
    next_page: hasMore ? encodePage(page.end, query.endTime) : null,
  };
}

/** Every row of the page's range from `metering`, reply after reply, each handed to `add` as it comes. */
async function readRows(
  call: BusCall,
  principal: AdminPrincipal,
  request: Omit<UsageRowsQuery, "after">,
  add: (row: UsageRow) => void,
): Promise<void> {
  let after: UsageRowsQuery["after"] = null;
  do {
    const reply: UsageRows = await call(usageApiSubjects.rows, { principal, ...request, after });
    for (const row of reply.rows) add(row);
    after = reply.next;
  } while (after);
}

function bucketOf(page: Page, row: UsageRow): Bucket {
  const bucket = page.byAlignedStart.get(row.bucket);
  if (!bucket) throw new Error(`metering answered a row outside the page (bucket ${row.bucket})`);
  return bucket;
}

// ---- results

const PICO_PER_UNIT = 10n ** 12n;

/** An exact sum of pico-units as a number of currency units, through its decimal string. */
function picoToAmount(pico: bigint): number {
  const whole = pico / PICO_PER_UNIT;
  const fraction = (pico % PICO_PER_UNIT).toString().padStart(12, "0").replace(/0+$/, "");
  return Number(fraction ? `${whole}.${fraction}` : `${whole}`);
}

function groupFields(row: UsageRow) {
  return { project_id: row.projectId, user_id: row.userId, api_key_id: row.apiKeyId, model: row.model };
}

function completionsResult(row: UsageRow, groupBy: Set<string>) {
  const input = Number(row.inputTokens);
  return {
    object: "organization.usage.completions.result",
    input_tokens: input,
    // No prompt caching is billed and no audio is generated: these are exact.
    input_cached_tokens: 0,
    input_cache_write_tokens: 0,
    input_uncached_tokens: input,
    output_tokens: Number(row.outputTokens),
    input_audio_tokens: 0,
    output_audio_tokens: 0,
    num_model_requests: Number(row.requests),
    ...groupFields(row),
    // The platform has no batch jobs and one service tier.
    batch: groupBy.has("batch") ? false : null,
    service_tier: groupBy.has("service_tier") ? "default" : null,
  };
}

function embeddingsResult(row: UsageRow) {
  return {
    object: "organization.usage.embeddings.result",
    input_tokens: Number(row.inputTokens),
    num_model_requests: Number(row.requests),
    ...groupFields(row),
  };
}

function audioTranscriptionsResult(row: UsageRow) {
  return {
    object: "organization.usage.audio_transcriptions.result",
    seconds: Number(row.audioSeconds),
    num_model_requests: Number(row.requests),
    ...groupFields(row),
  };
}

/**
 * One result per group, or with `line_item` one per model and direction (`"<model>, input"`, `", output"`,
 * `", audio"`), leaving out directions with neither quantity nor cost.
 */
function costResults(row: UsageRow, groupBy: Set<string>, currency: string) {
  const result = (pico: bigint, lineItem: string | null, quantity: number | null, unit: string | null) => ({
    object: "organization.costs.result",
    amount: { value: picoToAmount(pico), currency },
    line_item: lineItem,
    project_id: row.projectId,
    api_key_id: row.apiKeyId,
    quantity,
    quantity_unit: unit,
  });
  const input = BigInt(row.inputCostPico);
  const output = BigInt(row.outputCostPico);
  const audio = BigInt(row.audioCostPico);
  if (!groupBy.has("line_item")) return [result(input + output + audio, null, null, null)];
  const items = [
    { direction: "input", pico: input, quantity: row.inputTokens, unit: "tokens" },
    { direction: "output", pico: output, quantity: row.outputTokens, unit: "tokens" },
    { direction: "audio", pico: audio, quantity: row.audioSeconds, unit: "duration_seconds" },
  ];
  return items
    .filter((item) => item.pico > 0n || item.quantity !== "0")
    .map((item) => result(item.pico, `${row.model}, ${item.direction}`, Number(item.quantity), item.unit));
}

/**
 * OpenAI's Usage and Costs API (docs/usage-and-costs.md), scoped to the caller's organization: the gateway computes
 * the buckets and assembles OpenAI's pages from the rows `metering` sums from its aggregates.
 */
export function registerUsageRoutes(app: FastifyInstance, options: UsageRoutesOptions): void {
  const call = busCaller(options);
  const currency = options.currency.toLowerCase();

  const rowsRequest = (
    route: Route,
    query: UsageQuery,
    page: Page,
    groupBy: UsageDimension[],
  ): Omit<UsageRowsQuery, "after"> => ({
    operations: route.operations,
    startTime: query.pageStart,
    endTime: page.end,
    bucketSeconds: USAGE_BUCKET_WIDTHS[query.width],
    groupBy,
    ...query.filters,
    // Usage is metered under model ids; an alias stands for the model it names.
    models: [...new Set(query.filters.models.map((model) => options.catalogue.find(model)?.id ?? model))],
  });

  const usageRoute = (route: Route, toResult: (row: UsageRow, groupBy: Set<string>) => object) => {
    app.get(route.path, async (request) => {
      const principal = adminOf(request);
      const query = parseUsageQuery(
        route,
        request.query as Record<string, unknown>,
        Math.ceil(Date.now() / 1000),
      );
      const page = pageOf(query);
      // batch=true asks for batch jobs only, and the platform runs none.
      if (query.batch !== true && page.buckets.length > 0) {
        const groupBy = USAGE_GROUPS.filter((group) => query.groupBy.has(group));
        await readRows(call, principal, rowsRequest(route, query, page, groupBy), (row) =>
          bucketOf(page, row).results.push(toResult(row, query.groupBy)),
        );
      }
      return answer(query, page);
    });
  };
  usageRoute(ROUTES.completions, completionsResult);
  usageRoute(ROUTES.embeddings, embeddingsResult);
  usageRoute(ROUTES.audio_transcriptions, audioTranscriptionsResult);

  app.get(ROUTES.costs.path, async (request) => {
    const principal = adminOf(request);
    const route = ROUTES.costs;
    const query = parseUsageQuery(
      route,
      request.query as Record<string, unknown>,
      Math.ceil(Date.now() / 1000),
    );
    const page = pageOf(query);
    if (page.buckets.length > 0) {
      const groups = query.groupBy as Set<CostGroup>;
      const groupBy: UsageDimension[] = [];
      if (groups.has("project_id")) groupBy.push("project_id");
      if (groups.has("api_key_id")) groupBy.push("api_key_id");
      // Line items are per model.
      if (groups.has("line_item")) groupBy.push("model");
      await readRows(call, principal, rowsRequest(route, query, page, groupBy), (row) =>
        bucketOf(page, row).results.push(...costResults(row, query.groupBy, currency)),
      );
    }
    return answer(query, page);
  });
}
