import type { Kysely, Selectable } from "kysely";
import type { Bus } from "@llmaas/bus";
import { adminSubjects, PlatformError } from "@llmaas/contracts";
import type { AuthDatabase, ProjectsTable } from "@llmaas/db";
import { recordAudit } from "../audit/record.js";
import type { AuthContext } from "../context.js";
import { ID_PREFIX, newId } from "../ids.js";
import { notFound, serveAdmin } from "./serve.js";
import { toList, toProject } from "./views.js";

export type ProjectRow = Selectable<ProjectsTable>;

/** The organization's project, or not found: another organization's id is indistinguishable from a wrong one. */
export async function findProject(
  db: Kysely<AuthDatabase>,
  organizationId: string,
  projectId: string,
  options: { forUpdate?: boolean } = {},
): Promise<ProjectRow> {
  let query = db
    .selectFrom("projects")
    .selectAll()
    .where("organization_id", "=", organizationId)
    .where("id", "=", projectId);
  if (options.forUpdate) query = query.forUpdate();
  const project = await query.executeTakeFirst();
  if (!project) throw notFound("project", projectId);
  return project;
}

/** Archived projects are kept for their history, but nothing in them changes any more. */
export function requireActive(project: ProjectRow): void {
  if (project.status === "archived") {
    throw new PlatformError("invalid_request", `Project '${project.id}' is archived: it cannot be changed.`);
  }
}

export function serveProjects(bus: Bus, ctx: AuthContext): void {
  const { db } = ctx;

  serveAdmin(bus, ctx, adminSubjects.projectsList, async ({ principal, limit, after, includeArchived }) => {
    let query = db.selectFrom("projects").selectAll().where("organization_id", "=", principal.organizationId);
    if (!includeArchived) query = query.where("status", "=", "active");
    if (after !== null) query = query.where("id", ">", after);
    const rows = await query
      .orderBy("id")
      .limit(limit + 1)
      .execute();
    return toList(rows, limit, toProject);
  });

  serveAdmin(bus, ctx, adminSubjects.projectsCreate, ({ principal, name }) =>
    db.transaction().execute(async (trx) => {
      const project = await trx
        .insertInto("projects")
        .values({
          id: newId(ID_PREFIX.project),
          organization_id: principal.organizationId,
          name,
          status: "active",
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await recordAudit(trx, {
        organizationId: principal.organizationId,
        type: "project.created",
        actor: principal.actor,
        project: { id: project.id, name: project.name },
        resourceId: project.id,
        details: { id: project.id, data: { name, title: name } },
      });
      return toProject(project);
    }),
  );

  serveAdmin(bus, ctx, adminSubjects.projectsRetrieve, async ({ principal, projectId }) =>
    toProject(await findProject(db, principal.organizationId, projectId)),
  );

  serveAdmin(bus, ctx, adminSubjects.projectsModify, ({ principal, projectId, name }) =>
    db.transaction().execute(async (trx) => {
      const project = await findProject(trx, principal.organizationId, projectId, { forUpdate: true });
      requireActive(project);
      const updated = await trx
        .updateTable("projects")
        .set({ name })
        .where("id", "=", project.id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await recordAudit(trx, {
        organizationId: principal.organizationId,
        type: "project.updated",
        actor: principal.actor,
        project: { id: updated.id, name: updated.name },
        resourceId: updated.id,
        details: { id: updated.id, changes_requested: { name, title: name } },
      });
      return toProject(updated);
    }),
  );

  serveAdmin(bus, ctx, adminSubjects.projectsArchive, async ({ principal, projectId }) => {
    const { project, archivedNow } = await db.transaction().execute(async (trx) => {
      const found = await findProject(trx, principal.organizationId, projectId, { forUpdate: true });
      // Archiving twice changes nothing the second time, so it is answered, not audited again.
      if (found.status === "archived") return { project: found, archivedNow: false };
      const archived = await trx
        .updateTable("projects")
        .set({ status: "archived", archived_at: new Date() })
        .where("id", "=", found.id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await recordAudit(trx, {
        organizationId: principal.organizationId,
        type: "project.archived",
        actor: principal.actor,
        project: { id: archived.id, name: archived.name },
        resourceId: archived.id,
        details: { id: archived.id },
      });
      return { project: archived, archivedNow: true };
    });
    if (archivedNow) await ctx.revoke([{ scope: "project", id: project.id }]);
    return toProject(project);
  });
}
