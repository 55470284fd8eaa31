import { sql, type Kysely } from "kysely";
import type { Bus } from "@llmaas/bus";
import {
  adminSubjects,
  PlatformError,
  type AdminPrincipal,
  type AuditActor,
  type KeySettingsChange,
  type openaiAdmin,
} from "@llmaas/contracts";
import type { AuthDatabase } from "@llmaas/db";
import { recordAudit } from "../audit/record.js";
import type { AuthContext } from "../context.js";
import { ID_PREFIX, newId } from "../ids.js";
import { API_KEY_PREFIX, newSecret, type SecretHasher } from "../secrets.js";
import { findProject, requireActive, type ProjectRow } from "./projects.js";
import { notFound, serveAdmin } from "./serve.js";
import { toList, toProjectApiKey, unixSeconds, type ApiKeyRow } from "./views.js";

/** Live keys of one project, with the service account that owns each. */
function apiKeysOf(db: Kysely<AuthDatabase>, organizationId: string, projectId: string) {
  return db
    .selectFrom("api_keys as key")
    .innerJoin("service_accounts as owner", "owner.id", "key.service_account_id")
    .selectAll("key")
    .select(["owner.name as owner_name", "owner.role as owner_role", "owner.created_at as owner_created_at"])
    .where("key.organization_id", "=", organizationId)
    .where("key.project_id", "=", projectId)
    .where("key.deleted_at", "is", null);
}

async function findApiKey(
  db: Kysely<AuthDatabase>,
  organizationId: string,
  projectId: string,
  keyId: string,
): Promise<ApiKeyRow> {
  const key = await apiKeysOf(db, organizationId, projectId).where("key.id", "=", keyId).executeTakeFirst();
  if (!key) throw notFound("API key", keyId);
  return key;
}

function expiryOf(expiresAt: number | null | undefined, now: Date): Date | null | undefined {
  if (expiresAt === undefined || expiresAt === null) return expiresAt;
  const date = new Date(expiresAt * 1000);
  if (date <= now)
    throw new PlatformError("invalid_request", "`expires_at` must be in the future.", "expires_at");
  return date;
}

/** The settings as the audit log records them: the API's snake_case names, only those given. */
function settingsChanges(settings: KeySettingsChange): Record<string, unknown> {
  const { rateLimits, tokenBudget } = settings;
  return {
    ...(settings.expiresAt !== undefined ? { expires_at: settings.expiresAt } : {}),
    ...(settings.allowedModels !== undefined ? { allowed_models: settings.allowedModels } : {}),
    ...(rateLimits !== undefined
      ? {
          rate_limits: rateLimits && {
            max_requests_per_1_minute: rateLimits.maxRequestsPer1Minute,
            max_tokens_per_1_minute: rateLimits.maxTokensPer1Minute,
          },
        }
      : {}),
    ...(tokenBudget !== undefined ? { token_budget: tokenBudget } : {}),
    ...(settings.guardrailMode !== undefined ? { guardrail_mode: settings.guardrailMode } : {}),
  };
}

/** The columns of the limits a change sets (both rate limits at once, the budget's two together). */
function limitColumns(settings: KeySettingsChange) {
  const { rateLimits, tokenBudget } = settings;
  return {
    ...(settings.guardrailMode !== undefined ? { guardrail_mode: settings.guardrailMode } : {}),
    ...(rateLimits !== undefined
      ? {
          max_requests_per_1_minute: rateLimits?.maxRequestsPer1Minute ?? null,
          max_tokens_per_1_minute: rateLimits?.maxTokensPer1Minute ?? null,
        }
      : {}),
    ...(tokenBudget !== undefined
      ? {
          token_budget_limit: tokenBudget?.limit ?? null,
          token_budget_interval: tokenBudget?.interval ?? null,
        }
      : {}),
  };
}

async function auditKeyUpdated(
  trx: Kysely<AuthDatabase>,
  principal: AdminPrincipal,
  project: ProjectRow,
  keyId: string,
  changes: Record<string, unknown>,
): Promise<void> {
  await recordAudit(trx, {
    organizationId: principal.organizationId,
    type: "api_key.updated",
    actor: principal.actor,
    project: { id: project.id, name: project.name },
    resourceId: keyId,
    details: { id: keyId, changes_requested: changes },
  });
}

export interface NewApiKey {
  organizationId: string;
  project: ProjectRow;
  serviceAccountId: string;
  name: string;
  settings: KeySettingsChange;
  actor: AuditActor;
}

/** Creates a key and its first secret, audited in the caller's transaction; the secret is in the answer only. */
export async function createApiKey(
  trx: Kysely<AuthDatabase>,
  hasher: SecretHasher,
  key: NewApiKey,
): Promise<openaiAdmin.ServiceAccountApiKey> {
  const now = new Date();
  const secret = newSecret(API_KEY_PREFIX);
  const row = await trx
    .insertInto("api_keys")
    .values({
      id: newId(ID_PREFIX.apiKey),
      organization_id: key.organizationId,
      project_id: key.project.id,
      service_account_id: key.serviceAccountId,
      name: key.name,
      redacted_value: secret.redacted,
      expires_at: expiryOf(key.settings.expiresAt, now) ?? null,
      allowed_models: key.settings.allowedModels ?? null,
      ...limitColumns(key.settings),
    })
    .returning(["id", "created_at"])
    .executeTakeFirstOrThrow();
  await trx
    .insertInto("api_key_secrets")
    .values({ secret_hash: hasher.hash(secret.value), key_id: row.id })
    .execute();
  await recordAudit(trx, {
    organizationId: key.organizationId,
    type: "api_key.created",
    actor: key.actor,
    project: { id: key.project.id, name: key.project.name },
    resourceId: row.id,
    details: {
      id: row.id,
      data: {
        scopes: [],
        name: key.name,
        service_account_id: key.serviceAccountId,
        ...settingsChanges(key.settings),
      },
    },
  });
  return {
    object: "organization.project.service_account.api_key",
    value: secret.value,
    name: key.name,
    created_at: unixSeconds(row.created_at),
    id: row.id,
  };
}

/** Deletes keys: their secrets go at once (nothing can verify against them), their metadata stays for usage reports. */
export async function deleteApiKeys(trx: Kysely<AuthDatabase>, keyIds: string[]): Promise<void> {
  if (keyIds.length === 0) return;
  await trx.updateTable("api_keys").set({ deleted_at: new Date() }).where("id", "in", keyIds).execute();
  await trx.deleteFrom("api_key_secrets").where("key_id", "in", keyIds).execute();
}

export function serveApiKeys(bus: Bus, ctx: AuthContext): void {
  const { db } = ctx;

  serveAdmin(bus, ctx, adminSubjects.apiKeysList, async ({ principal, projectId, limit, after }) => {
    await findProject(db, principal.organizationId, projectId);
    let query = apiKeysOf(db, principal.organizationId, projectId);
    if (after !== null) query = query.where("key.id", ">", after);
    const rows = await query
      .orderBy("key.id")
      .limit(limit + 1)
      .execute();
    return toList(rows, limit, toProjectApiKey);
  });

  serveAdmin(bus, ctx, adminSubjects.apiKeysRetrieve, async ({ principal, projectId, keyId }) =>
    toProjectApiKey(await findApiKey(db, principal.organizationId, projectId, keyId)),
  );

  serveAdmin(
    bus,
    ctx,
    adminSubjects.apiKeysModify,
    async ({ principal, projectId, keyId, name, settings }) => {
      const updated = await db.transaction().execute(async (trx) => {
        const project = await findProject(trx, principal.organizationId, projectId, { forUpdate: true });
        requireActive(project);
        const key = await findApiKey(trx, principal.organizationId, projectId, keyId);
        const expiresAt = expiryOf(settings.expiresAt, new Date());
        await trx
          .updateTable("api_keys")
          .set({
            ...(name !== undefined ? { name } : {}),
            ...(expiresAt !== undefined ? { expires_at: expiresAt } : {}),
            ...(settings.allowedModels !== undefined ? { allowed_models: settings.allowedModels } : {}),
            ...limitColumns(settings),
          })
          .where("id", "=", key.id)
          .execute();
        await auditKeyUpdated(trx, principal, project, key.id, {
          ...(name !== undefined ? { name } : {}),
          ...settingsChanges(settings),
        });
        return findApiKey(trx, principal.organizationId, projectId, keyId);
      });
      // The gateways cached this key's old settings (its allowed models, its expiry, its limits).
      await ctx.revoke([{ scope: "key", id: updated.id }]);
      return toProjectApiKey(updated);
    },
  );

  serveAdmin(
    bus,
    ctx,
    adminSubjects.apiKeysRotate,
    async ({ principal, projectId, keyId, gracePeriodSeconds }) => {
      const now = new Date();
      const previousExpireAt = new Date(now.getTime() + gracePeriodSeconds * 1000);
      const rotated = await db.transaction().execute(async (trx) => {
        const project = await findProject(trx, principal.organizationId, projectId, { forUpdate: true });
        requireActive(project);
        const key = await findApiKey(trx, principal.organizationId, projectId, keyId);
        // A secret already on its way out keeps the earlier of its end and this rotation's.
        await trx
          .updateTable("api_key_secrets")
          .set({
            expires_at: sql<Date>`least(coalesce(expires_at, 'infinity'::timestamptz), ${previousExpireAt})`,
          })
          .where("key_id", "=", key.id)
          .execute();
        const secret = newSecret(API_KEY_PREFIX);
        await trx
          .insertInto("api_key_secrets")
          .values({ secret_hash: ctx.hasher.hash(secret.value), key_id: key.id })
          .execute();
        await trx
          .updateTable("api_keys")
          .set({ redacted_value: secret.redacted })
          .where("id", "=", key.id)
          .execute();
        await auditKeyUpdated(trx, principal, project, key.id, {
          rotated: true,
          grace_period_seconds: gracePeriodSeconds,
        });
        return { key: { ...key, redacted_value: secret.redacted }, value: secret.value };
      });
      // Gateways cached the old secret with no end; they ask again and learn when its grace period ends.
      await ctx.revoke([{ scope: "key", id: rotated.key.id }]);
      return {
        ...toProjectApiKey(rotated.key),
        value: rotated.value,
        previous_secret_expires_at: unixSeconds(previousExpireAt),
      };
    },
  );

  serveAdmin(bus, ctx, adminSubjects.apiKeysDelete, async ({ principal, projectId, keyId }) => {
    await db.transaction().execute(async (trx) => {
      const project = await findProject(trx, principal.organizationId, projectId, { forUpdate: true });
      const key = await findApiKey(trx, principal.organizationId, projectId, keyId);
      await deleteApiKeys(trx, [key.id]);
      await recordAudit(trx, {
        organizationId: principal.organizationId,
        type: "api_key.deleted",
        actor: principal.actor,
        project: { id: project.id, name: project.name },
        resourceId: key.id,
        details: { id: key.id },
      });
    });
    await ctx.revoke([{ scope: "key", id: keyId }]);
    return { object: "organization.project.api_key.deleted", id: keyId, deleted: true } as const;
  });
}
