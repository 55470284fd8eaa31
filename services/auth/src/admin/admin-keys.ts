import type { Kysely } from "kysely";
import type { Bus } from "@llmaas/bus";
import { adminSubjects, openaiAdmin, type AdminPrincipal, type AuditActor } from "@llmaas/contracts";
import type { AuthDatabase } from "@llmaas/db";
import { recordAudit } from "../audit/record.js";
import type { AuthContext } from "../context.js";
import { ID_PREFIX, newId } from "../ids.js";
import { ADMIN_KEY_PREFIX, newSecret, type SecretHasher } from "../secrets.js";
import { notFound, serveAdmin } from "./serve.js";
import { toAdminApiKey, toList, unixSeconds } from "./views.js";

export interface NewAdminKey {
  organizationId: string;
  name: string;
  expiresInSeconds: number | null;
  owner: openaiAdmin.AdminApiKeyOwner;
  actor: AuditActor | null;
}

/** Creates an admin key, audited in the caller's transaction; its secret is in the answer only. */
export async function createAdminKey(
  trx: Kysely<AuthDatabase>,
  hasher: SecretHasher,
  key: NewAdminKey,
): Promise<openaiAdmin.AdminApiKeyCreated> {
  const secret = newSecret(ADMIN_KEY_PREFIX);
  const row = await trx
    .insertInto("admin_api_keys")
    .values({
      id: newId(ID_PREFIX.adminKey),
      organization_id: key.organizationId,
      name: key.name,
      redacted_value: secret.redacted,
      secret_hash: hasher.hash(secret.value),
      owner: JSON.stringify(key.owner),
      expires_at: key.expiresInSeconds === null ? null : new Date(Date.now() + key.expiresInSeconds * 1000),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  await recordAudit(trx, {
    organizationId: key.organizationId,
    type: "api_key.created",
    actor: key.actor,
    resourceId: row.id,
    details: { id: row.id, data: { scopes: [], name: key.name, kind: "admin" } },
  });
  return { ...toAdminApiKey(row, key.owner), value: secret.value };
}

/**
 * A new admin key belongs to whoever made it: the administrator signed in, or, when an admin key makes another,
 * that key's own owner (keys do not own keys).
 */
async function ownerFor(
  db: Kysely<AuthDatabase>,
  principal: AdminPrincipal,
): Promise<openaiAdmin.AdminApiKeyOwner> {
  if (principal.kind === "administrator") {
    const user = await db
      .selectFrom("administrators")
      .select(["id", "name", "email", "created_at"])
      .where("id", "=", principal.id)
      .executeTakeFirstOrThrow();
    return {
      type: "user",
      object: "organization.user",
      id: user.id,
      name: user.name ?? user.email ?? user.id,
      created_at: unixSeconds(user.created_at),
      role: "owner",
    };
  }
  const key = await db
    .selectFrom("admin_api_keys")
    .select("owner")
    .where("id", "=", principal.id)
    .executeTakeFirstOrThrow();
  return openaiAdmin.AdminApiKeyOwner.parse(key.owner);
}

export function serveAdminKeys(bus: Bus, ctx: AuthContext): void {
  const { db } = ctx;
  const liveKeys = (organizationId: string) =>
    db
      .selectFrom("admin_api_keys")
      .selectAll()
      .where("organization_id", "=", organizationId)
      .where("deleted_at", "is", null);
  const toObject = (row: Parameters<typeof toAdminApiKey>[0]) =>
    toAdminApiKey(row, openaiAdmin.AdminApiKeyOwner.parse(row.owner));

  serveAdmin(bus, ctx, adminSubjects.adminKeysList, async ({ principal, limit, after, order }) => {
    let query = liveKeys(principal.organizationId);
    if (after !== null) query = query.where("id", order === "asc" ? ">" : "<", after);
    const rows = await query
      .orderBy("id", order)
      .limit(limit + 1)
      .execute();
    return toList(rows, limit, toObject);
  });

  serveAdmin(bus, ctx, adminSubjects.adminKeysCreate, ({ principal, name, expiresInSeconds }) =>
    db.transaction().execute(async (trx) =>
      createAdminKey(trx, ctx.hasher, {
        organizationId: principal.organizationId,
        name,
        expiresInSeconds,
        owner: await ownerFor(trx, principal),
        actor: principal.actor,
      }),
    ),
  );

  serveAdmin(bus, ctx, adminSubjects.adminKeysRetrieve, async ({ principal, keyId }) => {
    const row = await liveKeys(principal.organizationId).where("id", "=", keyId).executeTakeFirst();
    if (!row) throw notFound("admin API key", keyId);
    return toObject(row);
  });

  // Admin keys are never cached by a gateway (every admin request is authenticated anew), so nothing is revoked.
  serveAdmin(bus, ctx, adminSubjects.adminKeysDelete, ({ principal, keyId }) =>
    db.transaction().execute(async (trx) => {
      const deleted = await trx
        .updateTable("admin_api_keys")
        .set({ deleted_at: new Date() })
        .where("organization_id", "=", principal.organizationId)
        .where("id", "=", keyId)
        .where("deleted_at", "is", null)
        .returning("id")
        .executeTakeFirst();
      if (!deleted) throw notFound("admin API key", keyId);
      await recordAudit(trx, {
        organizationId: principal.organizationId,
        type: "api_key.deleted",
        actor: principal.actor,
        resourceId: keyId,
        details: { id: keyId },
      });
      return { object: "organization.admin_api_key.deleted", id: keyId, deleted: true } as const;
    }),
  );
}
