import { sql, type Kysely, type RawBuilder } from "kysely";
import {
  MAX_USAGE_REPLY_BYTES,
  MAX_USAGE_ROWS,
  PlatformError,
  USAGE_DIMENSIONS,
  type UsageDimension,
  type UsageRow,
  type UsageRows,
  type UsageRowsQuery,
} from "@llmaas/contracts";
import type { MeteringDatabase } from "@llmaas/db";

/** The aggregate tables, coarsest first, with the width of their buckets in seconds. */
const AGGREGATES = [
  { table: "usage_daily", unitSeconds: 86_400 },
  { table: "usage_hourly", unitSeconds: 3_600 },
  { table: "usage_minute", unitSeconds: 60 },
] as const;

export type AggregateTable = (typeof AGGREGATES)[number]["table"];

/** A time range read from one aggregate table: rows whose `bucket_start` is in [start, end), unix seconds. */
export interface Segment {
  table: AggregateTable;
  start: number;
  end: number;
}

/**
 * Which table serves which part of [start, end): the coarsest table whose unit divides the bucket width for every
 * whole unit inside the range, finer ones for the ends. A day table row is then never split between two buckets,
 * and the result is the same as summing the minute table alone. At the minute, the finest unit, a row counts where
 * its minute starts: a range holds the minutes that start inside it.
 */
export function segmentsOf(start: number, end: number, bucketSeconds: number): Segment[] {
  const tables = AGGREGATES.filter(({ unitSeconds }) => bucketSeconds % unitSeconds === 0);
  const segments: Segment[] = [];
  const cover = (from: number, to: number, level: number): void => {
    const aggregate = tables[level];
    if (from >= to || !aggregate) return;
    const { table, unitSeconds } = aggregate;
    if (level === tables.length - 1) {
      segments.push({ table, start: from, end: to });
      return;
    }
    const first = Math.ceil(from / unitSeconds) * unitSeconds;
    const last = Math.floor(to / unitSeconds) * unitSeconds;
    if (first >= last) {
      cover(from, to, level + 1);
      return;
    }
    cover(from, first, level + 1);
    segments.push({ table, start: first, end: last });
    cover(last, to, level + 1);
  };
  cover(start, end, 0);
  return segments;
}

const COLUMN: Record<UsageDimension, "project_id" | "key_id" | "model" | "end_user"> = {
  project_id: "project_id",
  api_key_id: "key_id",
  model: "model",
  user_id: "end_user",
};

export interface UsageRowsLimits {
  maxRows?: number;
  maxBytes?: number;
}

/**
 * The organization's usage summed per bucket and group, in sort order from `query.after`, at most `maxRows` rows and
 * `maxBytes` of them as JSON (always at least one row, so that a continuation moves on).
 */
export async function queryUsageRows(
  db: Kysely<MeteringDatabase>,
  organizationId: string,
  query: UsageRowsQuery,
  limits: UsageRowsLimits = {},
): Promise<UsageRows> {
  const maxRows = Math.min(limits.maxRows ?? MAX_USAGE_ROWS, MAX_USAGE_ROWS);
  const maxBytes = Math.min(limits.maxBytes ?? MAX_USAGE_REPLY_BYTES, MAX_USAGE_REPLY_BYTES);
  if (query.endTime <= query.startTime) {
    throw new PlatformError("invalid_request", "end_time must be after start_time.", "end_time");
  }
  const groupBy = USAGE_DIMENSIONS.filter((dimension) => query.groupBy.includes(dimension));
  const after = query.after;
  if (after && after.key.length !== groupBy.length) {
    throw new PlatformError("invalid_request", "The continuation does not match the grouping.", "page");
  }
  // Nothing before the continuation's bucket can come after it.
  const startTime = after ? Math.max(query.startTime, after.bucket) : query.startTime;
  const segments = segmentsOf(startTime, query.endTime, query.bucketSeconds);
  if (segments.length === 0) return { rows: [], next: null };

  const width = query.bucketSeconds;
  const parts = segments.map((segment) => {
    let part = db
      .selectFrom(segment.table)
      .select([
        sql<string>`(floor(extract(epoch from bucket_start) / ${width}) * ${width})::bigint`.as("bucket"),
        "project_id",
        "key_id",
        "model",
        "end_user",
        "requests",
        "input_tokens",
        "output_tokens",
        "audio_seconds",
        "input_cost_pico",
        "output_cost_pico",
        "audio_cost_pico",
      ])
      .where("organization_id", "=", organizationId)
      .where("bucket_start", ">=", new Date(segment.start * 1000))
      .where("bucket_start", "<", new Date(segment.end * 1000))
      .where("operation", "in", query.operations);
    if (query.projectIds.length > 0) part = part.where("project_id", "in", query.projectIds);
    if (query.apiKeyIds.length > 0) part = part.where("key_id", "in", query.apiKeyIds);
    if (query.models.length > 0) part = part.where("model", "in", query.models);
    if (query.userIds.length > 0) part = part.where("end_user", "in", query.userIds);
    return part;
  });
  const [first, ...rest] = parts;
  if (!first) return { rows: [], next: null };
  const union = rest.reduce((all, part) => all.unionAll(part), first);

  const keyRefs: RawBuilder<unknown>[] = [
    sql.ref("u.bucket"),
    ...groupBy.map((dimension) => sql.ref(`u.${COLUMN[dimension]}`)),
  ];
  const dimension = (name: UsageDimension) =>
    groupBy.includes(name) ? sql<string>`${sql.ref(`u.${COLUMN[name]}`)}` : sql<string | null>`null::text`;
  let grouped = db
    .selectFrom(union.as("u"))
    .select([
      sql<string>`u.bucket`.as("bucket"),
      dimension("project_id").as("project_id"),
      dimension("api_key_id").as("key_id"),
      dimension("model").as("model"),
      dimension("user_id").as("end_user"),
      sql<string>`sum(u.requests)::text`.as("requests"),
      sql<string>`sum(u.input_tokens)::text`.as("input_tokens"),
      sql<string>`sum(u.output_tokens)::text`.as("output_tokens"),
      sql<string>`sum(u.audio_seconds)::text`.as("audio_seconds"),
      sql<string>`sum(u.input_cost_pico)::text`.as("input_cost_pico"),
      sql<string>`sum(u.output_cost_pico)::text`.as("output_cost_pico"),
      sql<string>`sum(u.audio_cost_pico)::text`.as("audio_cost_pico"),
    ])
    .groupBy(keyRefs)
    .limit(maxRows + 1);
  for (const ref of keyRefs) grouped = grouped.orderBy(ref);
  if (after) {
    const values = [sql`${after.bucket}::bigint`, ...after.key.map((value) => sql`${value}::text`)];
    grouped = grouped.having(sql<boolean>`(${sql.join(keyRefs)}) > (${sql.join(values)})`);
  }
  const found = await grouped.execute();

  const rows: UsageRow[] = [];
  let bytes = 64;
  let truncated = found.length > maxRows;
  for (const record of found.slice(0, maxRows)) {
    const row: UsageRow = {
      bucket: Number(record.bucket),
      projectId: record.project_id,
      apiKeyId: record.key_id,
      model: record.model,
      // '' stands for "no end user" in the table's key; OpenAI's user_id is null then.
      userId: record.end_user === null || record.end_user === "" ? null : record.end_user,
      requests: record.requests,
      inputTokens: record.input_tokens,
      outputTokens: record.output_tokens,
      audioSeconds: record.audio_seconds,
      inputCostPico: record.input_cost_pico,
      outputCostPico: record.output_cost_pico,
      audioCostPico: record.audio_cost_pico,
    };
    const size = Buffer.byteLength(JSON.stringify(row)) + 1;
    if (rows.length > 0 && bytes + size > maxBytes) {
      truncated = true;
      break;
    }
    rows.push(row);
    bytes += size;
  }
  const last = rows.at(-1);
  const lastRecord = found[rows.length - 1];
  const next =
    truncated && last && lastRecord
      ? {
          bucket: last.bucket,
          key: groupBy.map((name) => {
            const column = COLUMN[name];
            return lastRecord[column] ?? "";
          }),
        }
      : null;
  return { rows, next };
}
