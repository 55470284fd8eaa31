import type { Kysely, Selectable } from "kysely";
import type { Bus } from "@llmaas/bus";
import { adminSubjects } from "@llmaas/contracts";
import type { AuthDatabase, ServiceAccountsTable } from "@llmaas/db";
import { recordAudit } from "../audit/record.js";
import type { AuthContext } from "../context.js";
import { ID_PREFIX, newId } from "../ids.js";
import { createApiKey, deleteApiKeys } from "./api-keys.js";
import { findProject, requireActive } from "./projects.js";
import { notFound, serveAdmin } from "./serve.js";
import { toList, toServiceAccount } from "./views.js";

async function findServiceAccount(
  db: Kysely<AuthDatabase>,
  organizationId: string,
  projectId: string,
  serviceAccountId: string,
): Promise<Selectable<ServiceAccountsTable>> {
  const account = await db
    .selectFrom("service_accounts")
    .selectAll()
    .where("organization_id", "=", organizationId)
    .where("project_id", "=", projectId)
    .where("id", "=", serviceAccountId)
    .where("deleted_at", "is", null)
    .executeTakeFirst();
  if (!account) throw notFound("service account", serviceAccountId);
  return account;
}

export function serveServiceAccounts(bus: Bus, ctx: AuthContext): void {
  const { db } = ctx;

  serveAdmin(bus, ctx, adminSubjects.serviceAccountsList, async ({ principal, projectId, limit, after }) => {
    await findProject(db, principal.organizationId, projectId);
    let query = db
      .selectFrom("service_accounts")
      .selectAll()
      .where("organization_id", "=", principal.organizationId)
      .where("project_id", "=", projectId)
      .where("deleted_at", "is", null);
    if (after !== null) query = query.where("id", ">", after);
    const rows = await query
      .orderBy("id")
      .limit(limit + 1)
      .execute();
    return toList(rows, limit, toServiceAccount);
  });

  serveAdmin(bus, ctx, adminSubjects.serviceAccountsCreate, ({ principal, projectId, name, withApiKey }) =>
    db.transaction().execute(async (trx) => {
      const project = await findProject(trx, principal.organizationId, projectId, { forUpdate: true });
      requireActive(project);
      const account = await trx
        .insertInto("service_accounts")
        .values({
          id: newId(ID_PREFIX.serviceAccount),
          organization_id: principal.organizationId,
          project_id: project.id,
          name,
          // OpenAI's accounts made without a key get no project role either.
          role: withApiKey ? "member" : "none",
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await recordAudit(trx, {
        organizationId: principal.organizationId,
        type: "service_account.created",
        actor: principal.actor,
        project: { id: project.id, name: project.name },
        resourceId: account.id,
        details: { id: account.id, data: { role: account.role, name } },
      });
      const apiKey = withApiKey
        ? await createApiKey(trx, ctx.hasher, {
            organizationId: principal.organizationId,
            project,
            serviceAccountId: account.id,
            name,
            settings: {},
            actor: principal.actor,
          })
        : null;
      return { ...toServiceAccount(account), api_key: apiKey };
    }),
  );

  serveAdmin(
    bus,
    ctx,
    adminSubjects.serviceAccountsRetrieve,
    async ({ principal, projectId, serviceAccountId }) =>
      toServiceAccount(await findServiceAccount(db, principal.organizationId, projectId, serviceAccountId)),
  );

  serveAdmin(
    bus,
    ctx,
    adminSubjects.serviceAccountsModify,
    ({ principal, projectId, serviceAccountId, name, role }) =>
      db.transaction().execute(async (trx) => {
        const project = await findProject(trx, principal.organizationId, projectId, { forUpdate: true });
        requireActive(project);
        const account = await findServiceAccount(trx, principal.organizationId, projectId, serviceAccountId);
        const updated = await trx
          .updateTable("service_accounts")
          .set({ ...(name !== undefined ? { name } : {}), ...(role !== undefined ? { role } : {}) })
          .where("id", "=", account.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        await recordAudit(trx, {
          organizationId: principal.organizationId,
          type: "service_account.updated",
          actor: principal.actor,
          project: { id: project.id, name: project.name },
          resourceId: account.id,
          details: {
            id: account.id,
            changes_requested: {
              ...(name !== undefined ? { name } : {}),
              ...(role !== undefined ? { role } : {}),
            },
          },
        });
        return toServiceAccount(updated);
      }),
  );

  serveAdmin(
    bus,
    ctx,
    adminSubjects.serviceAccountsDelete,
    async ({ principal, projectId, serviceAccountId }) => {
      const keyIds = await db.transaction().execute(async (trx) => {
        const project = await findProject(trx, principal.organizationId, projectId, { forUpdate: true });
        const account = await findServiceAccount(trx, principal.organizationId, projectId, serviceAccountId);
        const keys = await trx
          .selectFrom("api_keys")
          .select("id")
          .where("service_account_id", "=", account.id)
          .where("deleted_at", "is", null)
          .execute();
        const ids = keys.map((key) => key.id);
        await deleteApiKeys(trx, ids);
        await trx
          .updateTable("service_accounts")
          .set({ deleted_at: new Date() })
          .where("id", "=", account.id)
          .execute();
        // One change, one event: the keys that went with the account are listed in it.
        await recordAudit(trx, {
          organizationId: principal.organizationId,
          type: "service_account.deleted",
          actor: principal.actor,
          project: { id: project.id, name: project.name },
          resourceId: account.id,
          details: { id: account.id, data: { deleted_api_key_ids: ids } },
        });
        return ids;
      });
      await ctx.revoke(keyIds.map((id) => ({ scope: "key" as const, id })));
      return {
        object: "organization.project.service_account.deleted",
        id: serviceAccountId,
        deleted: true,
      } as const;
    },
  );

  serveAdmin(
    bus,
    ctx,
    adminSubjects.serviceAccountKeysCreate,
    ({ principal, projectId, serviceAccountId, name, settings }) =>
      db.transaction().execute(async (trx) => {
        const project = await findProject(trx, principal.organizationId, projectId, { forUpdate: true });
        requireActive(project);
        const account = await findServiceAccount(trx, principal.organizationId, projectId, serviceAccountId);
        return createApiKey(trx, ctx.hasher, {
          organizationId: principal.organizationId,
          project,
          serviceAccountId: account.id,
          name: name ?? account.name,
          settings,
          actor: principal.actor,
        });
      }),
  );
}
