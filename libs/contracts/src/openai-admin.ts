import { z } from "zod";
import { AdministratorRole, AuditActor } from "./auth.js";
import { GuardrailMode, GuardrailOnTimeout, GuardrailThreshold } from "./guardrail-policy.js";
import { TokenBudgetInterval } from "./limits.js";

/**
 * OpenAI's Administration API on the wire (`/v1/organization/...`), plus the platform's documented extensions
 * (marked as such): the objects the routes answer and the bodies they accept. Bodies are strict, like the inference
 * API's: a field the platform does not understand is a 400 naming it, never silently ignored.
 */

const UnixSeconds = z.number().int().nonnegative();
const Name = z.string().trim().min(1).max(256);
/** A limit: a positive integer, at most 2^53 - 1 (zod's `int`), which the database's bigint holds exactly. */
const LimitCount = z.number().int().positive();

/** OpenAI's cursor page: `after` is the last id of the previous page. */
export function listOf<Item extends z.ZodType>(item: Item) {
  return z.object({
    object: z.literal("list"),
    data: z.array(item),
    first_id: z.string().nullable(),
    last_id: z.string().nullable(),
    has_more: z.boolean(),
  });
}

export function deletedObject<Name extends string>(object: Name) {
  return z.object({ object: z.literal(object), id: z.string(), deleted: z.literal(true) });
}

// ---------------------------------------------------------------------------------------------------------------
// objects

export const Project = z.object({
  id: z.string(),
  object: z.literal("organization.project"),
  name: z.string(),
  created_at: UnixSeconds,
  archived_at: UnixSeconds.nullable(),
  status: z.enum(["active", "archived"]),
});
export type Project = z.infer<typeof Project>;

const ServiceAccountRole = z.enum(["owner", "member", "none"]);

export const ServiceAccount = z.object({
  object: z.literal("organization.project.service_account"),
  id: z.string(),
  name: z.string(),
  role: ServiceAccountRole,
  created_at: UnixSeconds,
});
export type ServiceAccount = z.infer<typeof ServiceAccount>;

/** A new API key's secret, in the only answer that ever shows it. */
export const ServiceAccountApiKey = z.object({
  object: z.literal("organization.project.service_account.api_key"),
  value: z.string(),
  name: z.string(),
  created_at: UnixSeconds,
  id: z.string(),
});
export type ServiceAccountApiKey = z.infer<typeof ServiceAccountApiKey>;

export const ServiceAccountCreated = ServiceAccount.extend({ api_key: ServiceAccountApiKey.nullable() });
export type ServiceAccountCreated = z.infer<typeof ServiceAccountCreated>;

export const ProjectApiKey = z.object({
  object: z.literal("organization.project.api_key"),
  id: z.string(),
  name: z.string(),
  redacted_value: z.string(),
  created_at: UnixSeconds,
  last_used_at: UnixSeconds.nullable(),
  owner_project_access: z.enum(["active", "inactive"]),
  owner: z.object({
    type: z.literal("service_account"),
    service_account: z.object({
      id: z.string(),
      name: z.string(),
      created_at: UnixSeconds,
      role: z.string(),
    }),
  }),
  /** Extension: when the key stops working by itself; null for never. */
  expires_at: UnixSeconds.nullable(),
  /** Extension: model ids or aliases the key may use; null for every model. */
  allowed_models: z.array(z.string()).nullable(),
  /** Extension: the key's own rate limits, each null for none beyond the project's; null when it has neither. */
  rate_limits: z
    .object({
      max_requests_per_1_minute: LimitCount.nullable(),
      max_tokens_per_1_minute: LimitCount.nullable(),
    })
    .nullable(),
  /** Extension: input plus output tokens the key may use per calendar day or month (UTC); null for none. */
  token_budget: z.object({ limit: LimitCount, interval: TokenBudgetInterval }).nullable(),
  /** Extension: the key's guardrail mode, overriding its project's; null follows the project. */
  guardrail_mode: GuardrailMode.nullable(),
});
export type ProjectApiKey = z.infer<typeof ProjectApiKey>;

/** Extension: the answer to a rotation, the only time the new secret is shown. */
export const ProjectApiKeyRotated = ProjectApiKey.extend({
  value: z.string(),
  /** When the secrets the key had before this rotation stop working (now, with no grace period). */
  previous_secret_expires_at: UnixSeconds,
});
export type ProjectApiKeyRotated = z.infer<typeof ProjectApiKeyRotated>;

/**
 * Who an admin key belongs to: the administrator who created it, or, for keys the operator issued, the organization
 * itself (`type: "organization"`, an extension: OpenAI's keys always belong to a user).
 */
export const AdminApiKeyOwner = z.object({
  type: z.enum(["user", "organization"]),
  object: z.enum(["organization.user", "organization"]),
  id: z.string(),
  name: z.string(),
  created_at: UnixSeconds,
  role: z.literal("owner"),
});
export type AdminApiKeyOwner = z.infer<typeof AdminApiKeyOwner>;

export const AdminApiKey = z.object({
  object: z.literal("organization.admin_api_key"),
  id: z.string(),
  name: z.string(),
  redacted_value: z.string(),
  created_at: UnixSeconds,
  expires_at: UnixSeconds.nullable(),
  last_used_at: UnixSeconds.nullable(),
  owner: AdminApiKeyOwner,
});
export type AdminApiKey = z.infer<typeof AdminApiKey>;

export const AdminApiKeyCreated = AdminApiKey.extend({ value: z.string() });
export type AdminApiKeyCreated = z.infer<typeof AdminApiKeyCreated>;

/** An administrator who has signed in through the organization's OIDC provider at least once. */
export const User = z.object({
  object: z.literal("organization.user"),
  id: z.string(),
  name: z.string().nullable(),
  email: z.string().nullable(),
  role: AdministratorRole,
  added_at: UnixSeconds,
});
export type User = z.infer<typeof User>;

/**
 * A project's rate limits for one model (`id` is `rl-<model id>`): what the project set, else the platform's
 * defaults. OpenAI leaves out the fields that do not apply, so an unset per-day or audio limit is omitted.
 */
export const ProjectRateLimit = z.object({
  object: z.literal("project.rate_limit"),
  id: z.string(),
  model: z.string(),
  max_requests_per_1_minute: LimitCount,
  max_tokens_per_1_minute: LimitCount,
  max_requests_per_1_day: LimitCount.optional(),
  max_audio_megabytes_per_1_minute: LimitCount.optional(),
});
export type ProjectRateLimit = z.infer<typeof ProjectRateLimit>;

/** The ids of project rate limits: `rl-` and the model's id. */
export const RATE_LIMIT_ID_PREFIX = "rl-";

const ModelPermissionsMode = z.enum(["allow_list", "deny_list"]);

export const ProjectModelPermissions = z.object({
  object: z.literal("project.model_permissions"),
  mode: ModelPermissionsMode,
  /** Model ids or aliases, as they were set. */
  model_ids: z.array(z.string()),
});
export type ProjectModelPermissions = z.infer<typeof ProjectModelPermissions>;

export const ProjectModelPermissionsDeleted = z.object({
  object: z.literal("project.model_permissions.deleted"),
  deleted: z.literal(true),
});

/**
 * A hard spend limit per calendar month, in cents of the platform's currency (OpenAI allows only USD; the platform
 * bills in its own `CURRENCY`, upper case as OpenAI writes it). Every stored limit is enforced.
 */
function spendLimit<Name extends string>(object: Name) {
  return z.object({
    object: z.literal(object),
    threshold_amount: LimitCount,
    currency: z.string(),
    interval: z.literal("month"),
    enforcement: z.object({ status: z.enum(["enforcing", "inactive"]) }),
  });
}
export const OrganizationSpendLimit = spendLimit("organization.spend_limit");
export type OrganizationSpendLimit = z.infer<typeof OrganizationSpendLimit>;
export const ProjectSpendLimit = spendLimit("project.spend_limit");
export type ProjectSpendLimit = z.infer<typeof ProjectSpendLimit>;

export const OrganizationSpendLimitDeleted = z.object({
  object: z.literal("organization.spend_limit.deleted"),
  deleted: z.literal(true),
});
export const ProjectSpendLimitDeleted = z.object({
  object: z.literal("project.spend_limit.deleted"),
  deleted: z.literal(true),
});

/** Extension: how a project's prompts are screened (docs/guardrail.md); OpenAI has no such object. */
export const ProjectGuardrail = z.object({
  object: z.literal("project.guardrail"),
  project_id: z.string(),
  mode: GuardrailMode,
  threshold: GuardrailThreshold,
  on_timeout: GuardrailOnTimeout,
  /** True while the project has never set a policy and follows the platform's default. */
  is_default: z.boolean(),
});
export type ProjectGuardrail = z.infer<typeof ProjectGuardrail>;

/**
 * OpenAI's audit log entry: the type-specific details sit under a key named after the type
 * (`"project.created": {...}`), so the object is open beyond its common fields.
 */
export const AuditLog = z.looseObject({
  id: z.string(),
  type: z.string(),
  effective_at: UnixSeconds,
  project: z.object({ id: z.string(), name: z.string() }).optional(),
  actor: AuditActor.nullable(),
});
export type AuditLog = z.infer<typeof AuditLog>;

const AUDIT_EVENT_TYPES = [
  "api_key.created",
  "api_key.updated",
  "api_key.deleted",
  "login.succeeded",
  "login.failed",
  "organization.updated",
  "project.created",
  "project.updated",
  "project.archived",
  "rate_limit.updated",
  "service_account.created",
  "service_account.updated",
  "service_account.deleted",
] as const;
export const AuditEventType = z.enum(AUDIT_EVENT_TYPES);
export type AuditEventType = z.infer<typeof AuditEventType>;

/** The platform keeps no prompts or answers, for any organization: the only retention it can report. */
export const ORGANIZATION_DATA_RETENTION = {
  object: "organization.data_retention",
  type: "zero_data_retention",
} as const;
export const PROJECT_DATA_RETENTION = {
  object: "project.data_retention",
  type: "zero_data_retention",
} as const;

// ---------------------------------------------------------------------------------------------------------------
// bodies

export const ProjectCreateBody = z.strictObject({ name: Name });
export const ProjectUpdateBody = z.strictObject({ name: Name });

export const ServiceAccountCreateBody = z.strictObject({
  name: Name,
  create_service_account_only: z.boolean().nullable().optional(),
});
export const ServiceAccountUpdateBody = z
  .strictObject({ name: Name.optional(), role: z.enum(["owner", "member"]).optional() })
  .refine((body) => body.name !== undefined || body.role !== undefined, "Give `name`, `role` or both.");

/** What every route that creates or changes a project API key accepts about its lifetime and reach. */
const keySettings = {
  /** Extension: unix seconds; null for a key that never expires. */
  expires_at: UnixSeconds.nullable().optional(),
  /** OpenAI's way to say the same, relative to now. */
  expires_in_seconds: z
    .number()
    .int()
    .min(1)
    .max(10 * 365 * 24 * 60 * 60)
    .optional(),
  /** Extension: model ids or aliases; null for every model. */
  allowed_models: z.array(z.string().min(1).max(256)).min(1).max(256).nullable().optional(),
  /** Extension: replaces the key's rate limits (a field left out is none); null removes both. */
  rate_limits: z
    .strictObject({
      max_requests_per_1_minute: LimitCount.nullable().optional(),
      max_tokens_per_1_minute: LimitCount.nullable().optional(),
    })
    .refine(
      (limits) => limits.max_requests_per_1_minute != null || limits.max_tokens_per_1_minute != null,
      "Give `max_requests_per_1_minute`, `max_tokens_per_1_minute` or both; `rate_limits: null` removes them.",
    )
    .nullable()
    .optional(),
  /** Extension: input plus output tokens per calendar day or month (UTC); null removes it. */
  token_budget: z.strictObject({ limit: LimitCount, interval: TokenBudgetInterval }).nullable().optional(),
  /** Extension: overrides the project's guardrail mode for this key; null follows the project again. */
  guardrail_mode: GuardrailMode.nullable().optional(),
  /**
   * OpenAI's permission scopes: the platform has none to restrict (a key calls models, and only those its
   * allowed_models name), so only the empty list, "no restriction", is accepted.
   */
  scopes: z
    .array(z.string())
    .max(
      0,
      "API key scopes are not supported: a project key calls models only; restrict it with allowed_models.",
    )
    .optional(),
};

const oneExpiry = (body: { expires_at?: unknown; expires_in_seconds?: unknown }) =>
  body.expires_at === undefined || body.expires_in_seconds === undefined;
const ONE_EXPIRY = {
  message: "Give `expires_at` or `expires_in_seconds`, not both.",
  path: ["expires_in_seconds"],
};

export const ServiceAccountKeyCreateBody = z
  .strictObject({ name: Name.optional(), ...keySettings })
  .refine(oneExpiry, ONE_EXPIRY);

export const ApiKeyUpdateBody = z
  .strictObject({ name: Name.optional(), ...keySettings })
  .refine(oneExpiry, ONE_EXPIRY)
  .refine(
    (body) => Object.values(body).some((value) => value !== undefined),
    "Give at least one of `name`, `expires_at`, `expires_in_seconds`, `allowed_models`, `rate_limits`, " +
      "`token_budget`, `guardrail_mode`.",
  );

/** Fields left out keep their value: the first change of a project starts from the platform's default. */
export const ProjectGuardrailBody = z
  .strictObject({
    mode: GuardrailMode.optional(),
    threshold: GuardrailThreshold.optional(),
    on_timeout: GuardrailOnTimeout.optional(),
  })
  .refine(
    (body) => Object.values(body).some((value) => value !== undefined),
    "Give at least one of `mode`, `threshold`, `on_timeout`.",
  );

const MAX_GRACE_PERIOD_SECONDS = 30 * 24 * 60 * 60;
export const ApiKeyRotateBody = z.strictObject({
  grace_period_seconds: z.number().int().min(0).max(MAX_GRACE_PERIOD_SECONDS).optional(),
});

export const AdminApiKeyCreateBody = z.strictObject({
  name: Name,
  expires_in_seconds: z.number().int().min(1).max(31_536_000).optional(),
});

/**
 * OpenAI's fields the platform enforces; a field left out keeps its value. null (an extension) gives a field back
 * to the platform's default. OpenAI's `max_images_per_1_minute` and `batch_1_day_max_input_tokens` are refused as
 * unknown: the platform serves no images and no batches.
 */
export const ProjectRateLimitUpdateBody = z
  .strictObject({
    max_requests_per_1_minute: LimitCount.nullable().optional(),
    max_tokens_per_1_minute: LimitCount.nullable().optional(),
    max_requests_per_1_day: LimitCount.nullable().optional(),
    max_audio_megabytes_per_1_minute: LimitCount.nullable().optional(),
  })
  .refine(
    (body) => Object.values(body).some((value) => value !== undefined),
    "Give at least one of `max_requests_per_1_minute`, `max_tokens_per_1_minute`, `max_requests_per_1_day`, " +
      "`max_audio_megabytes_per_1_minute`.",
  );

export const ProjectModelPermissionsUpdateBody = z.strictObject({
  mode: ModelPermissionsMode,
  /** Ids or aliases of the catalogue; an empty allow list allows no model, an empty deny list every model. */
  model_ids: z.array(z.string().min(1).max(256)).max(256),
});

/** The currency is checked against the platform's where the platform's currency is known (the gateway). */
export const SpendLimitUpdateBody = z.strictObject({
  threshold_amount: LimitCount,
  currency: z.string().min(1).max(16),
  interval: z.literal("month"),
});

export const OrganizationDataRetentionBody = z.strictObject({
  retention_type: z.enum([
    "zero_data_retention",
    "modified_abuse_monitoring",
    "enhanced_zero_data_retention",
    "enhanced_modified_abuse_monitoring",
  ]),
});
export const ProjectDataRetentionBody = z.strictObject({
  retention_type: z.enum([
    "organization_default",
    "none",
    "zero_data_retention",
    "modified_abuse_monitoring",
    "enhanced_zero_data_retention",
    "enhanced_modified_abuse_monitoring",
  ]),
});

// ---------------------------------------------------------------------------------------------------------------
// query strings

/** `limit` 1-100 (default 20) and the `after` cursor, as every OpenAI list takes them. */
export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  after: z.string().min(1).max(128).optional(),
});

/** `true` or `false` in a query string, as OpenAI's SDKs send booleans. */
export const QueryBoolean = z.enum(["true", "false"]).transform((value) => value === "true");

export const ProjectListQuery = PageQuery.extend({ include_archived: QueryBoolean.default(false) });
export const OwnerProjectAccess = z.enum(["active", "inactive", "any"]);
export const AuditLogPageQuery = PageQuery.extend({ before: z.string().min(1).max(128).optional() });
/** OpenAI's rate limit list pages by 100 unless told otherwise, both ways. */
export const RateLimitPageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(100),
  after: z.string().min(1).max(160).optional(),
  before: z.string().min(1).max(160).optional(),
});
export const AdminApiKeyListQuery = PageQuery.extend({
  order: z.enum(["asc", "desc"]).default("asc"),
});
