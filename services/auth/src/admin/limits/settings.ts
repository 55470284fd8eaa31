import type { Catalogue } from "@llmaas/catalogue";
import { openaiAdmin, type ModelRateLimit } from "@llmaas/contracts";

/** What `auth` needs to know of the platform to answer about limits: its models, and the operator's defaults. */
export interface LimitSettings {
  catalogue: Catalogue;
  /** A project's limits for a model it set nothing for (`DEFAULT_MAX_…`). */
  defaults: ModelRateLimit;
}

/** A `project_rate_limits` row's settings; bigint columns arrive as strings, or as numbers inside JSON. */
export interface RateLimitOverride {
  model: string;
  max_requests_per_1_minute: string | number | null;
  max_tokens_per_1_minute: string | number | null;
  max_requests_per_1_day: string | number | null;
  max_audio_megabytes_per_1_minute: string | number | null;
}

/** A bigint limit column as a number; the API never stores one past 2^53. */
export function limitCount(value: string | number): number;
export function limitCount(value: string | number | null): number | null;
export function limitCount(value: string | number | null): number | null {
  return value === null ? null : Number(value);
}

/** What applies to a project for one model: each field it set, else the default. */
export function effectiveRateLimit(
  defaults: ModelRateLimit,
  override: RateLimitOverride | undefined,
): ModelRateLimit {
  return {
    maxRequestsPer1Minute:
      limitCount(override?.max_requests_per_1_minute ?? null) ?? defaults.maxRequestsPer1Minute,
    maxTokensPer1Minute:
      limitCount(override?.max_tokens_per_1_minute ?? null) ?? defaults.maxTokensPer1Minute,
    maxRequestsPer1Day: limitCount(override?.max_requests_per_1_day ?? null) ?? defaults.maxRequestsPer1Day,
    maxAudioMegabytesPer1Minute:
      limitCount(override?.max_audio_megabytes_per_1_minute ?? null) ?? defaults.maxAudioMegabytesPer1Minute,
  };
}

/** The catalogue's model ids in the order rate limits are listed: by id, so `after` and `before` are comparisons. */
export function rateLimitedModels(catalogue: Catalogue): string[] {
  return catalogue.models.map((model) => model.id).sort();
}

export function rateLimitId(model: string): string {
  return `${openaiAdmin.RATE_LIMIT_ID_PREFIX}${model}`;
}

/** OpenAI's object; the limits that are none are left out, as OpenAI leaves out those that do not apply. */
export function toProjectRateLimit(model: string, limit: ModelRateLimit): openaiAdmin.ProjectRateLimit {
  return {
    object: "project.rate_limit",
    id: rateLimitId(model),
    model,
    max_requests_per_1_minute: limit.maxRequestsPer1Minute,
    max_tokens_per_1_minute: limit.maxTokensPer1Minute,
    ...(limit.maxRequestsPer1Day !== null ? { max_requests_per_1_day: limit.maxRequestsPer1Day } : {}),
    ...(limit.maxAudioMegabytesPer1Minute !== null
      ? { max_audio_megabytes_per_1_minute: limit.maxAudioMegabytesPer1Minute }
      : {}),
  };
}
