import { jsonArrayFrom } from "kysely/helpers/postgres";
import {
  PlatformError,
  type ApiKeyPrincipal,
  type GuardrailPolicy,
  type RequestLimits,
} from "@llmaas/contracts";
import {
  effectiveRateLimit,
  limitCount,
  rateLimitedModels,
  type LimitSettings,
  type RateLimitOverride,
} from "../admin/limits/settings.js";
import type { AuthContext } from "../context.js";
import { policyOf } from "../admin/guardrail.js";

export function invalidApiKey(message = "Incorrect API key provided."): PlatformError {
  return new PlatformError("invalid_api_key", message);
}

function earliest(...dates: (Date | null)[]): Date | null {
  const times = dates.filter((date): date is Date => date !== null).map((date) => date.getTime());
  return times.length ? new Date(Math.min(...times)) : null;
}

interface LimitColumns {
  max_requests_per_1_minute: string | null;
  max_tokens_per_1_minute: string | null;
  token_budget_limit: string | null;
  token_budget_interval: "day" | "month" | null;
  permissions_mode: "allow_list" | "deny_list" | null;
  permissions_model_ids: string[] | null;
  project_spend_limit: string | null;
  organization_spend_limit: string | null;
  rate_limits: RateLimitOverride[];
}

/** The key's limits, and its project's for every model of the catalogue (what it set, else the defaults). */
function requestLimits(settings: LimitSettings, row: LimitColumns): RequestLimits {
  const overrides = new Map(row.rate_limits.map((override) => [override.model, override]));
  return {
    key: {
      maxRequestsPer1Minute: limitCount(row.max_requests_per_1_minute),
      maxTokensPer1Minute: limitCount(row.max_tokens_per_1_minute),
      tokenBudget:
        row.token_budget_limit !== null && row.token_budget_interval !== null
          ? { limit: limitCount(row.token_budget_limit), interval: row.token_budget_interval }
          : null,
    },
    projectModels: Object.fromEntries(
      rateLimitedModels(settings.catalogue).map((model) => [
        model,
        effectiveRateLimit(settings.defaults, overrides.get(model)),
      ]),
    ),
    projectSpendLimitCents: limitCount(row.project_spend_limit),
    organizationSpendLimitCents: limitCount(row.organization_spend_limit),
    projectModelPermissions:
      row.permissions_mode !== null && row.permissions_model_ids !== null
        ? { mode: row.permissions_mode, modelIds: row.permissions_model_ids }
        : null,
  };
}

/** The project's guardrail policy (or the default), with the key's own mode where it sets one. */
function guardrailOf(
  ctx: AuthContext,
  row: {
    guardrail_mode: GuardrailPolicy["mode"] | null;
    guardrail_project_mode: GuardrailPolicy["mode"] | null;
    guardrail_threshold: number | null;
    guardrail_on_timeout: GuardrailPolicy["onTimeout"] | null;
  },
): GuardrailPolicy {
  const project = policyOf(ctx, {
    mode: row.guardrail_project_mode ?? undefined,
    threshold: row.guardrail_threshold ?? undefined,
    on_timeout: row.guardrail_on_timeout ?? undefined,
  });
  return { ...project, mode: row.guardrail_mode ?? project.mode };
}

/**
 * A project API key's principal. Once the secret has matched, the refusal says why (expired, archived, suspended):
 * the caller holds the key, so this tells it nothing it could not learn, and it saves an application developer a
 * support ticket.
 */
export async function verifyApiKey(
  ctx: AuthContext,
  credential: string,
  now = new Date(),
): Promise<ApiKeyPrincipal> {
  // One round trip: the key, what it belongs to, and every limit its principal carries (each table holds at most
  // one row per project or organization, and the project's rate limits come as one JSON array).
  const row = await ctx.db
    .selectFrom("api_key_secrets as secret")
    .innerJoin("api_keys as key", "key.id", "secret.key_id")
    .innerJoin("projects as project", "project.id", "key.project_id")
    .innerJoin("organizations as organization", "organization.id", "key.organization_id")
    .leftJoin("project_model_permissions as permissions", "permissions.project_id", "key.project_id")
    .leftJoin("project_guardrail_policies as guardrail", "guardrail.project_id", "key.project_id")
    .leftJoin("project_spend_limits as project_spend", "project_spend.project_id", "key.project_id")
    .leftJoin(
      "organization_spend_limits as organization_spend",
      "organization_spend.organization_id",
      "key.organization_id",
    )
    .select((eb) => [
      "key.id",
      "key.organization_id",
      "key.project_id",
      "key.service_account_id",
      "key.allowed_models",
      "key.expires_at",
      "key.deleted_at",
      "key.max_requests_per_1_minute",
      "key.max_tokens_per_1_minute",
      "key.token_budget_limit",
      "key.token_budget_interval",
      "key.guardrail_mode",
      "guardrail.mode as guardrail_project_mode",
      "guardrail.threshold as guardrail_threshold",
      "guardrail.on_timeout as guardrail_on_timeout",
      "secret.expires_at as secret_expires_at",
      "project.status as project_status",
      "organization.status as organization_status",
      "permissions.mode as permissions_mode",
      "permissions.model_ids as permissions_model_ids",
      "project_spend.threshold_amount as project_spend_limit",
      "organization_spend.threshold_amount as organization_spend_limit",
      jsonArrayFrom(
        eb
          .selectFrom("project_rate_limits as rate_limit")
          .select([
            "rate_limit.model",
            "rate_limit.max_requests_per_1_minute",
            "rate_limit.max_tokens_per_1_minute",
            "rate_limit.max_requests_per_1_day",
            "rate_limit.max_audio_megabytes_per_1_minute",
          ])
          .whereRef("rate_limit.project_id", "=", "key.project_id"),
      ).as("rate_limits"),
    ])
    .where("secret.secret_hash", "=", ctx.hasher.hash(credential))
    .executeTakeFirst();
  if (!row || row.deleted_at !== null || row.organization_status === "deleted") throw invalidApiKey();
  if (row.secret_expires_at !== null && row.secret_expires_at <= now) {
    throw invalidApiKey(
      "This API key's secret was rotated and its grace period is over; use the new secret.",
    );
  }
  if (row.expires_at !== null && row.expires_at <= now) throw invalidApiKey("This API key has expired.");
  if (row.project_status === "archived") throw invalidApiKey("This API key's project is archived.");
  if (row.organization_status === "suspended") {
    throw invalidApiKey("This API key's organization is suspended; contact the platform operator.");
  }
  return {
    kind: "api_key",
    organizationId: row.organization_id,
    projectId: row.project_id,
    keyId: row.id,
    serviceAccountId: row.service_account_id,
    allowedModels: row.allowed_models,
    validUntil: earliest(row.expires_at, row.secret_expires_at)?.getTime() ?? null,
    limits: requestLimits(ctx.limits, row),
    guardrail: guardrailOf(ctx, row),
  };
}
