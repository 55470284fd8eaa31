import { z } from "zod";
import { adminSubject } from "./admin.js";
import { UsageOperation } from "./subjects.js";

/**
 * The Usage and Costs API on the bus (docs/usage-and-costs.md). The gateway asks `metering`, which owns the usage
 * aggregates, for flat rows: one per time bucket and group, with the sums as decimal strings. The gateway computes the
 * buckets and assembles OpenAI's pages; metering knows nothing of OpenAI's shapes. A reply is capped by rows and by
 * bytes, far below NATS's 1 MB message limit, and ends with a `next` continuation when more rows remain: the gateway
 * asks again with it as `after` until `next` is null.
 */

/** The bucket widths OpenAI offers (`1m`, `1h`, `1d`), in seconds. */
export const USAGE_BUCKET_WIDTHS = { "1m": 60, "1h": 3_600, "1d": 86_400 } as const;
export const UsageBucketSeconds = z.union([z.literal(60), z.literal(3_600), z.literal(86_400)]);

/** What rows can be grouped by, named as OpenAI names the fields (`user_id` is the requests' `user`). */
export const UsageDimension = z.enum(["project_id", "api_key_id", "model", "user_id"]);
export type UsageDimension = z.infer<typeof UsageDimension>;
/** The order of the dimensions in every row's sort key and in a continuation. */
export const USAGE_DIMENSIONS = UsageDimension.options;

/** At most this many rows per reply, and at most this many bytes of rows (NATS refuses messages above 1 MB). */
export const MAX_USAGE_ROWS = 2_000;
export const MAX_USAGE_REPLY_BYTES = 512 * 1024;
/** At most this many values per filter. */
export const MAX_USAGE_FILTER_VALUES = 100;

const Id = z.string().min(1).max(256);
const Filter = z.array(Id).max(MAX_USAGE_FILTER_VALUES);
/** A non-negative integer sum as a decimal string: token counts and pico-unit amounts may exceed 2^53. */
const Sum = z.string().regex(/^\d{1,60}$/, "a non-negative integer as a decimal string");
const UnixSeconds = z.number().int().nonnegative();

/**
 * Where the next reply starts: the sort key of the last row sent, the aligned bucket start followed by the value (as
 * stored: `''` for "no end user") of each grouped dimension, in `USAGE_DIMENSIONS` order. Opaque to the gateway.
 */
export const UsageRowsCursor = z.object({
  bucket: UnixSeconds,
  key: z.array(z.string().max(256)).max(USAGE_DIMENSIONS.length),
});
export type UsageRowsCursor = z.infer<typeof UsageRowsCursor>;

export const UsageRowsQuery = z.object({
  /** Which operations to sum: e.g. chat.completions and completions for OpenAI's completions usage. */
  operations: z.array(UsageOperation).min(1).max(UsageOperation.options.length),
  /** Unix seconds, inclusive and exclusive. Usage is stamped with the minute its request ended in. */
  startTime: UnixSeconds,
  endTime: UnixSeconds,
  /** Rows are summed per bucket of this width, aligned to UTC multiples of it. */
  bucketSeconds: UsageBucketSeconds,
  groupBy: z.array(UsageDimension).max(USAGE_DIMENSIONS.length),
  /** Empty: no filter. */
  projectIds: Filter,
  apiKeyIds: Filter,
  models: Filter,
  userIds: Filter,
  after: UsageRowsCursor.nullable(),
});
export type UsageRowsQuery = z.infer<typeof UsageRowsQuery>;

export const UsageRow = z.object({
  /** The start of the row's bucket, aligned to the width (the gateway clips the first and last buckets). */
  bucket: UnixSeconds,
  /** Each dimension is null when not grouped by; `userId` is also null for requests that named no `user`. */
  projectId: z.string().nullable(),
  apiKeyId: z.string().nullable(),
  model: z.string().nullable(),
  userId: z.string().nullable(),
  requests: Sum,
  inputTokens: Sum,
  outputTokens: Sum,
  audioSeconds: Sum,
  /** Integer pico-units (1e-12) of the platform's currency. */
  inputCostPico: Sum,
  outputCostPico: Sum,
  audioCostPico: Sum,
});
export type UsageRow = z.infer<typeof UsageRow>;

export const UsageRows = z.object({
  /** Sorted by bucket, then by the grouped dimensions. */
  rows: z.array(UsageRow).max(MAX_USAGE_ROWS),
  /** Pass as `after` for the rest; null when this was the last of them. */
  next: UsageRowsCursor.nullable(),
});
export type UsageRows = z.infer<typeof UsageRows>;

export const usageApiSubjects = {
  /** Served by `metering` (queue `metering`), always scoped to the principal's organization; readers may read. */
  rows: adminSubject("usage.rows", "read", UsageRowsQuery.shape, UsageRows),
};
