import { z } from "zod";
import { AdminPrincipal } from "./auth.js";
import { requestSubject, type RequestSubject } from "./definitions.js";
import { GuardrailMode, GuardrailOnTimeout, GuardrailThreshold } from "./guardrail-policy.js";
import { KeyLimits, ModelPermissions } from "./limits.js";
import {
  AdminApiKey,
  AdminApiKeyCreated,
  AuditLog,
  deletedObject,
  listOf,
  OrganizationSpendLimit,
  OrganizationSpendLimitDeleted,
  Project,
  ProjectApiKey,
  ProjectApiKeyRotated,
  ProjectGuardrail,
  ProjectModelPermissions,
  ProjectModelPermissionsDeleted,
  ProjectRateLimit,
  ProjectSpendLimit,
  ProjectSpendLimitDeleted,
  ServiceAccount,
  ServiceAccountApiKey,
  ServiceAccountCreated,
  User,
} from "./openai-admin.js";
import { Organization } from "./operator.js";

/**
 * The Administration API on the bus: the gateway turns each `/v1/organization/...` route into one request on one
 * of these subjects, carrying the principal it authenticated; `auth`, which owns identities and keys, answers with
 * the OpenAI object the route returns. Every request is scoped to the principal's organization: an id of another
 * organization is not found.
 */
export interface AdminSubject<Req extends z.ZodType, Rep extends z.ZodType> extends RequestSubject<Req, Rep> {
  /** `write` subjects change something: refused to readers and to suspended organizations, and audited. */
  readonly access: "read" | "write";
}

export function adminSubject<Shape extends z.ZodRawShape, Rep extends z.ZodType>(
  name: string,
  access: "read" | "write",
  shape: Shape,
  reply: Rep,
): AdminSubject<z.ZodObject<{ principal: typeof AdminPrincipal } & Shape>, Rep> {
  return {
    ...requestSubject(`admin.v1.${name}`, z.object({ principal: AdminPrincipal, ...shape }), reply),
    access,
  };
}

const Id = z.string().min(1).max(128);
/** Larger pages than OpenAI's 100 are for the gateway's own export, which pages through everything. */
export const MAX_BUS_PAGE = 500;
const Page = { limit: z.number().int().min(1).max(MAX_BUS_PAGE), after: Id.nullable() };
const ProjectRef = { projectId: Id };
const ServiceAccountRef = { ...ProjectRef, serviceAccountId: Id };
const ApiKeyRef = { ...ProjectRef, keyId: Id };

/** undefined leaves a setting as it is; null removes it. */
export const KeySettingsChange = z.object({
  expiresAt: z.number().int().nonnegative().nullable().optional(),
  allowedModels: z.array(z.string()).nullable().optional(),
  /** Both of the key's rate limits at once; null removes both. */
  rateLimits: KeyLimits.pick({ maxRequestsPer1Minute: true, maxTokensPer1Minute: true })
    .nullable()
    .optional(),
  tokenBudget: KeyLimits.shape.tokenBudget.optional(),
  /** null follows the project's mode again. */
  guardrailMode: GuardrailMode.nullable().optional(),
});
export type KeySettingsChange = z.infer<typeof KeySettingsChange>;

/** A project rate limit's fields to change: undefined leaves one as it is, null gives it back to the default. */
const LimitChange = z.number().int().positive().nullable().optional();
export const RateLimitChange = z.object({
  maxRequestsPer1Minute: LimitChange,
  maxTokensPer1Minute: LimitChange,
  maxRequestsPer1Day: LimitChange,
  maxAudioMegabytesPer1Minute: LimitChange,
});
export type RateLimitChange = z.infer<typeof RateLimitChange>;

/** `rl-` and a model id, which may be up to 128 characters. */
const RateLimitId = z.string().min(1).max(160);
const SpendLimitSetting = {
  thresholdAmount: z.number().int().positive(),
  /** The platform's currency, which the gateway checked the request against. */
  currency: z.string().regex(/^[A-Z]{3}$/),
};

export const AuditLogFilter = z.object({
  effectiveAt: z.object({
    gt: z.number().int().optional(),
    gte: z.number().int().optional(),
    lt: z.number().int().optional(),
    lte: z.number().int().optional(),
  }),
  projectIds: z.array(Id).max(100),
  /** Any of OpenAI's event types may be asked for; those the platform never records match nothing. */
  eventTypes: z.array(z.string().max(100)).max(100),
  actorIds: z.array(Id).max(100),
  actorEmails: z.array(z.string().max(320)).max(100),
  resourceIds: z.array(Id).max(100),
});
export type AuditLogFilter = z.infer<typeof AuditLogFilter>;

export const adminSubjects = {
  organizationRetrieve: adminSubject("organization.retrieve", "read", {}, Organization),

  projectsList: adminSubject(
    "projects.list",
    "read",
    { ...Page, includeArchived: z.boolean() },
    listOf(Project),
  ),
  projectsCreate: adminSubject("projects.create", "write", { name: z.string() }, Project),
  projectsRetrieve: adminSubject("projects.retrieve", "read", ProjectRef, Project),
  projectsModify: adminSubject("projects.modify", "write", { ...ProjectRef, name: z.string() }, Project),
  projectsArchive: adminSubject("projects.archive", "write", ProjectRef, Project),

  serviceAccountsList: adminSubject(
    "service_accounts.list",
    "read",
    { ...ProjectRef, ...Page },
    listOf(ServiceAccount),
  ),
  serviceAccountsCreate: adminSubject(
    "service_accounts.create",
    "write",
    { ...ProjectRef, name: z.string(), withApiKey: z.boolean() },
    ServiceAccountCreated,
  ),
  serviceAccountsRetrieve: adminSubject(
    "service_accounts.retrieve",
    "read",
    ServiceAccountRef,
    ServiceAccount,
  ),
  serviceAccountsModify: adminSubject(
    "service_accounts.modify",
    "write",
    { ...ServiceAccountRef, name: z.string().optional(), role: z.enum(["owner", "member"]).optional() },
    ServiceAccount,
  ),
  serviceAccountsDelete: adminSubject(
    "service_accounts.delete",
    "write",
    ServiceAccountRef,
    deletedObject("organization.project.service_account.deleted"),
  ),
  serviceAccountKeysCreate: adminSubject(
    "service_accounts.api_keys.create",
    "write",
    { ...ServiceAccountRef, name: z.string().nullable(), settings: KeySettingsChange },
    ServiceAccountApiKey,
  ),

  apiKeysList: adminSubject("api_keys.list", "read", { ...ProjectRef, ...Page }, listOf(ProjectApiKey)),
  apiKeysRetrieve: adminSubject("api_keys.retrieve", "read", ApiKeyRef, ProjectApiKey),
  apiKeysModify: adminSubject(
    "api_keys.modify",
    "write",
    { ...ApiKeyRef, name: z.string().optional(), settings: KeySettingsChange },
    ProjectApiKey,
  ),
  apiKeysDelete: adminSubject(
    "api_keys.delete",
    "write",
    ApiKeyRef,
    deletedObject("organization.project.api_key.deleted"),
  ),
  apiKeysRotate: adminSubject(
    "api_keys.rotate",
    "write",
    { ...ApiKeyRef, gracePeriodSeconds: z.number().int().nonnegative() },
    ProjectApiKeyRotated,
  ),

  adminKeysList: adminSubject(
    "admin_api_keys.list",
    "read",
    { ...Page, order: z.enum(["asc", "desc"]) },
    listOf(AdminApiKey),
  ),
  adminKeysCreate: adminSubject(
    "admin_api_keys.create",
    "write",
    { name: z.string(), expiresInSeconds: z.number().int().positive().nullable() },
    AdminApiKeyCreated,
  ),
  adminKeysRetrieve: adminSubject("admin_api_keys.retrieve", "read", { keyId: Id }, AdminApiKey),
  adminKeysDelete: adminSubject(
    "admin_api_keys.delete",
    "write",
    { keyId: Id },
    deletedObject("organization.admin_api_key.deleted"),
  ),

  auditLogsList: adminSubject(
    "audit_logs.list",
    "read",
    { filter: AuditLogFilter, limit: Page.limit, after: Id.nullable(), before: Id.nullable() },
    listOf(AuditLog),
  ),

  usersList: adminSubject(
    "users.list",
    "read",
    { ...Page, emails: z.array(z.string()).nullable() },
    listOf(User),
  ),
  usersRetrieve: adminSubject("users.retrieve", "read", { userId: Id }, User),

  rateLimitsList: adminSubject(
    "rate_limits.list",
    "read",
    { ...ProjectRef, limit: Page.limit, after: RateLimitId.nullable(), before: RateLimitId.nullable() },
    listOf(ProjectRateLimit),
  ),
  rateLimitsModify: adminSubject(
    "rate_limits.modify",
    "write",
    { ...ProjectRef, rateLimitId: RateLimitId, change: RateLimitChange },
    ProjectRateLimit,
  ),

  /** null when the project has none: the gateway answers 404, the export writes null. */
  modelPermissionsRetrieve: adminSubject(
    "model_permissions.retrieve",
    "read",
    ProjectRef,
    ProjectModelPermissions.nullable(),
  ),
  modelPermissionsUpdate: adminSubject(
    "model_permissions.update",
    "write",
    { ...ProjectRef, permissions: ModelPermissions },
    ProjectModelPermissions,
  ),
  modelPermissionsDelete: adminSubject(
    "model_permissions.delete",
    "write",
    ProjectRef,
    ProjectModelPermissionsDeleted,
  ),

  organizationSpendLimitRetrieve: adminSubject(
    "spend_limit.retrieve",
    "read",
    {},
    OrganizationSpendLimit.nullable(),
  ),
  organizationSpendLimitUpdate: adminSubject(
    "spend_limit.update",
    "write",
    SpendLimitSetting,
    OrganizationSpendLimit,
  ),
  organizationSpendLimitDelete: adminSubject(
    "spend_limit.delete",
    "write",
    {},
    OrganizationSpendLimitDeleted,
  ),
  projectSpendLimitRetrieve: adminSubject(
    "projects.spend_limit.retrieve",
    "read",
    ProjectRef,
    ProjectSpendLimit.nullable(),
  ),
  projectSpendLimitUpdate: adminSubject(
    "projects.spend_limit.update",
    "write",
    { ...ProjectRef, ...SpendLimitSetting },
    ProjectSpendLimit,
  ),
  projectSpendLimitDelete: adminSubject(
    "projects.spend_limit.delete",
    "write",
    ProjectRef,
    ProjectSpendLimitDeleted,
  ),

  projectGuardrailRetrieve: adminSubject("projects.guardrail.retrieve", "read", ProjectRef, ProjectGuardrail),
  /** Fields left undefined keep their value. */
  projectGuardrailUpdate: adminSubject(
    "projects.guardrail.update",
    "write",
    {
      ...ProjectRef,
      mode: GuardrailMode.optional(),
      threshold: GuardrailThreshold.optional(),
      onTimeout: GuardrailOnTimeout.optional(),
    },
    ProjectGuardrail,
  ),
};
