import type { Selectable } from "kysely";
import type { Bus } from "@llmaas/bus";
import { adminSubjects, type openaiAdmin } from "@llmaas/contracts";
import type { ProjectModelPermissionsTable } from "@llmaas/db";
import type { AuthContext } from "../../context.js";
import { findProject } from "../projects.js";
import { serveAdmin } from "../serve.js";
import { changeProjectLimit, requireDeleted } from "./changes.js";

function toModelPermissions(
  row: Pick<Selectable<ProjectModelPermissionsTable>, "mode" | "model_ids">,
): openaiAdmin.ProjectModelPermissions {
  return { object: "project.model_permissions", mode: row.mode, model_ids: row.model_ids };
}

/**
 * OpenAI's project model permissions: an allow list or a deny list of model ids or aliases (the gateway checked them
 * against the catalogue), or none. OpenAI has no audit event of its own for them: a change is a `project.updated`
 * whose `changes_requested` holds `model_permissions` (null when deleted). Every change is broadcast as a project
 * revocation, so the next request through any gateway is judged by the new permissions.
 */
export function serveModelPermissions(bus: Bus, ctx: AuthContext): void {
  const { db } = ctx;

  serveAdmin(bus, ctx, adminSubjects.modelPermissionsRetrieve, async ({ principal, projectId }) => {
    const project = await findProject(db, principal.organizationId, projectId);
    const row = await db
      .selectFrom("project_model_permissions")
      .select(["mode", "model_ids"])
      .where("project_id", "=", project.id)
      .executeTakeFirst();
    return row ? toModelPermissions(row) : null;
  });

  serveAdmin(
    bus,
    ctx,
    adminSubjects.modelPermissionsUpdate,
    async ({ principal, projectId, permissions }) => {
      const row = { mode: permissions.mode, model_ids: permissions.modelIds };
      await changeProjectLimit(ctx, principal, projectId, {
        kind: "set",
        changesRequested: { model_permissions: row },
        apply: async (trx, project) => {
          await trx
            .insertInto("project_model_permissions")
            .values({ project_id: project.id, ...row })
            .onConflict((conflict) =>
              conflict.column("project_id").doUpdateSet({ ...row, updated_at: new Date() }),
            )
            .execute();
        },
      });
      return toModelPermissions(row);
    },
  );

  serveAdmin(bus, ctx, adminSubjects.modelPermissionsDelete, async ({ principal, projectId }) => {
    await changeProjectLimit(ctx, principal, projectId, {
      kind: "delete",
      changesRequested: { model_permissions: null },
      apply: async (trx, project) => {
        const deleted = await trx
          .deleteFrom("project_model_permissions")
          .where("project_id", "=", project.id)
          .executeTakeFirst();
        requireDeleted(deleted, `Project '${project.id}' has no model permissions`);
      },
    });
    return { object: "project.model_permissions.deleted", deleted: true } as const;
  });
}
