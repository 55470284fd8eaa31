import { z } from "zod";

/**
 * The limits that apply to an API key's inference requests, as `auth` configured them, carried in the key's
 * principal so that a gateway admits requests without asking anyone per request (docs/quotas.md). A change to any of
 * them is followed by a revocation broadcast for its scope, so gateways drop the principals they cached.
 */

const Count = z.number().int().positive();

/** A project's limits for one model: its own setting (`/projects/{p}/rate_limits/rl-{model}`) or the defaults. */
export const ModelRateLimit = z.object({
  maxRequestsPer1Minute: Count,
  maxTokensPer1Minute: Count,
  maxRequestsPer1Day: Count.nullable(),
  maxAudioMegabytesPer1Minute: Count.nullable(),
});
export type ModelRateLimit = z.infer<typeof ModelRateLimit>;

export const TokenBudgetInterval = z.enum(["day", "month"]);
export type TokenBudgetInterval = z.infer<typeof TokenBudgetInterval>;

/** Extension: a key's own limits; null is "none beyond the project's". */
export const KeyLimits = z.object({
  maxRequestsPer1Minute: Count.nullable(),
  maxTokensPer1Minute: Count.nullable(),
  /** Input plus output tokens per calendar day or month (UTC). */
  tokenBudget: z.object({ limit: Count, interval: TokenBudgetInterval }).nullable(),
});
export type KeyLimits = z.infer<typeof KeyLimits>;

export const ModelPermissions = z.object({
  mode: z.enum(["allow_list", "deny_list"]),
  /** Model ids or aliases; an alias stands for the model it resolves to. */
  modelIds: z.array(z.string()),
});
export type ModelPermissions = z.infer<typeof ModelPermissions>;

export const RequestLimits = z.object({
  key: KeyLimits,
  /** The project's effective limits for every model of the catalogue, by model id. */
  projectModels: z.record(z.string(), ModelRateLimit),
  /** Hard spend limits per calendar month (UTC), in cents of the platform currency. */
  projectSpendLimitCents: Count.nullable(),
  organizationSpendLimitCents: Count.nullable(),
  /** The project's model permissions; null allows every model. */
  projectModelPermissions: ModelPermissions.nullable(),
});
export type RequestLimits = z.infer<typeof RequestLimits>;
