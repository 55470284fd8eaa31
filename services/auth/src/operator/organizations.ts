import type { Kysely, Selectable } from "kysely";
import type { Bus } from "@llmaas/bus";
import {
  OidcSettings,
  operatorSubjects,
  PlatformError,
  type AuditActor,
  type Organization,
  type openaiAdmin,
} from "@llmaas/contracts";
import type { AuthDatabase, OrganizationsTable } from "@llmaas/db";
import { createAdminKey } from "../admin/admin-keys.js";
import { deleteApiKeys } from "../admin/api-keys.js";
import { notFound, serveInQueue } from "../admin/serve.js";
import { toList, unixSeconds } from "../admin/views.js";
import { recordAudit } from "../audit/record.js";
import type { AuthContext } from "../context.js";
import { ID_PREFIX, newId } from "../ids.js";

type OrganizationRow = Selectable<OrganizationsTable>;

export function toOrganization(row: OrganizationRow): Organization {
  return {
    id: row.id,
    object: "organization",
    name: row.name,
    status: row.status,
    created_at: unixSeconds(row.created_at),
    suspended_at: row.suspended_at === null ? null : unixSeconds(row.suspended_at),
    deleted_at: row.deleted_at === null ? null : unixSeconds(row.deleted_at),
    oidc: row.oidc === null ? null : OidcSettings.parse(row.oidc),
  };
}

/** Keys the operator issues belong to the organization itself, not to a person. */
function organizationOwner(row: OrganizationRow): openaiAdmin.AdminApiKeyOwner {
  return {
    type: "organization",
    object: "organization",
    id: row.id,
    name: row.name,
    created_at: unixSeconds(row.created_at),
    role: "owner",
  };
}

/** A deleted organization is kept for billing, but no route acts on it any more. */
async function findLiveOrganization(
  db: Kysely<AuthDatabase>,
  organizationId: string,
): Promise<OrganizationRow> {
  const row = await db
    .selectFrom("organizations")
    .selectAll()
    .where("id", "=", organizationId)
    .where("status", "!=", "deleted")
    .forUpdate()
    .executeTakeFirst();
  if (!row) throw notFound("organization", organizationId);
  return row;
}

/**
 * OpenAI's audit log has no event for what happens to an organization as a whole; `organization.updated`, with what
 * changed in `changes_requested`, records its creation, suspension, resumption, deletion and SSO settings.
 */
async function auditOrganization(
  trx: Kysely<AuthDatabase>,
  organizationId: string,
  actor: AuditActor,
  changes: Record<string, unknown>,
): Promise<void> {
  await recordAudit(trx, {
    organizationId,
    type: "organization.updated",
    actor,
    resourceId: organizationId,
    details: { id: organizationId, changes_requested: changes },
  });
}

export function serveOrganizations(bus: Bus, ctx: AuthContext): void {
  const { db } = ctx;

  serveInQueue(bus, operatorSubjects.organizationsCreate, ({ principal, name }) =>
    db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto("organizations")
        .values({ id: newId(ID_PREFIX.organization), name, status: "active" })
        .returningAll()
        .executeTakeFirstOrThrow();
      await auditOrganization(trx, row.id, principal.actor, { name, status: "active" });
      const adminKey = await createAdminKey(trx, ctx.hasher, {
        organizationId: row.id,
        name: "Initial admin key",
        expiresInSeconds: null,
        owner: organizationOwner(row),
        actor: principal.actor,
      });
      return { ...toOrganization(row), admin_api_key: adminKey };
    }),
  );

  serveInQueue(bus, operatorSubjects.organizationsList, async ({ limit, after, includeDeleted }) => {
    let query = db.selectFrom("organizations").selectAll();
    if (!includeDeleted) query = query.where("status", "!=", "deleted");
    if (after !== null) query = query.where("id", ">", after);
    const rows = await query
      .orderBy("id")
      .limit(limit + 1)
      .execute();
    return toList(rows, limit, toOrganization);
  });

  serveInQueue(bus, operatorSubjects.organizationsRetrieve, async ({ organizationId }) => {
    const row = await db
      .selectFrom("organizations")
      .selectAll()
      .where("id", "=", organizationId)
      .executeTakeFirst();
    if (!row) throw notFound("organization", organizationId);
    return toOrganization(row);
  });

  serveInQueue(bus, operatorSubjects.organizationsSuspend, async ({ principal, organizationId }) => {
    const { row, changed } = await db.transaction().execute(async (trx) => {
      const found = await findLiveOrganization(trx, organizationId);
      if (found.status === "suspended") return { row: found, changed: false };
      const suspended = await trx
        .updateTable("organizations")
        .set({ status: "suspended", suspended_at: new Date() })
        .where("id", "=", organizationId)
        .returningAll()
        .executeTakeFirstOrThrow();
      await auditOrganization(trx, organizationId, principal.actor, { status: "suspended" });
      return { row: suspended, changed: true };
    });
    if (changed) await ctx.revoke([{ scope: "organization", id: organizationId }]);
    return toOrganization(row);
  });

  serveInQueue(bus, operatorSubjects.organizationsResume, ({ principal, organizationId }) =>
    db.transaction().execute(async (trx) => {
      const found = await findLiveOrganization(trx, organizationId);
      if (found.status === "active") return toOrganization(found);
      const resumed = await trx
        .updateTable("organizations")
        .set({ status: "active", suspended_at: null })
        .where("id", "=", organizationId)
        .returningAll()
        .executeTakeFirstOrThrow();
      await auditOrganization(trx, organizationId, principal.actor, { status: "active" });
      return toOrganization(resumed);
    }),
  );

  // Its keys go at once; its projects, audit log and usage stay, for billing and for the record.
  serveInQueue(bus, operatorSubjects.organizationsDelete, async ({ principal, organizationId }) => {
    await db.transaction().execute(async (trx) => {
      await findLiveOrganization(trx, organizationId);
      const now = new Date();
      await trx
        .updateTable("organizations")
        .set({ status: "deleted", deleted_at: now })
        .where("id", "=", organizationId)
        .execute();
      const keys = await trx
        .selectFrom("api_keys")
        .select("id")
        .where("organization_id", "=", organizationId)
        .where("deleted_at", "is", null)
        .execute();
      await deleteApiKeys(
        trx,
        keys.map((key) => key.id),
      );
      await trx
        .updateTable("admin_api_keys")
        .set({ deleted_at: now })
        .where("organization_id", "=", organizationId)
        .where("deleted_at", "is", null)
        .execute();
      await auditOrganization(trx, organizationId, principal.actor, { status: "deleted" });
    });
    await ctx.revoke([{ scope: "organization", id: organizationId }]);
    return { object: "organization.deleted", id: organizationId, deleted: true } as const;
  });

  serveInQueue(bus, operatorSubjects.organizationsSetOidc, ({ principal, organizationId, oidc }) =>
    db.transaction().execute(async (trx) => {
      await findLiveOrganization(trx, organizationId);
      const updated = await trx
        .updateTable("organizations")
        .set({ oidc: oidc === null ? null : JSON.stringify(oidc) })
        .where("id", "=", organizationId)
        .returningAll()
        .executeTakeFirstOrThrow();
      await auditOrganization(trx, organizationId, principal.actor, { oidc });
      return toOrganization(updated);
    }),
  );

  serveInQueue(
    bus,
    operatorSubjects.organizationsCreateAdminKey,
    ({ principal, organizationId, name, expiresInSeconds }) =>
      db.transaction().execute(async (trx) => {
        const row = await findLiveOrganization(trx, organizationId);
        if (row.status !== "active") {
          throw new PlatformError("invalid_request", `Organization '${organizationId}' is suspended.`);
        }
        return createAdminKey(trx, ctx.hasher, {
          organizationId,
          name,
          expiresInSeconds,
          owner: organizationOwner(row),
          actor: principal.actor,
        });
      }),
  );
}
