import { PlatformError, type ApiKeyPrincipal } from "@llmaas/contracts";
import type { AuthContext } from "../context.js";

export function invalidApiKey(message = "Incorrect API key provided."): PlatformError {
  return new PlatformError("invalid_api_key", message);
}

function earliest(...dates: (Date | null)[]): Date | null {
  const times = dates.filter((date): date is Date => date !== null).map((date) => date.getTime());
  return times.length ? new Date(Math.min(...times)) : null;
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
  const row = await ctx.db
    .selectFrom("api_key_secrets as secret")
    .innerJoin("api_keys as key", "key.id", "secret.key_id")
    .innerJoin("projects as project", "project.id", "key.project_id")
    .innerJoin("organizations as organization", "organization.id", "key.organization_id")
    .select([
      "key.id",
      "key.organization_id",
      "key.project_id",
      "key.service_account_id",
      "key.allowed_models",
      "key.expires_at",
      "key.deleted_at",
      "secret.expires_at as secret_expires_at",
      "project.status as project_status",
      "organization.status as organization_status",
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
  };
}
