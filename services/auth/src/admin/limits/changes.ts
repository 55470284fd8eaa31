import type { Transaction } from "kysely";
import { PlatformError, type AdminPrincipal } from "@llmaas/contracts";
import type { AuthDatabase } from "@llmaas/db";
import { recordAudit } from "../../audit/record.js";
import type { AuthContext } from "../../context.js";
import { findProject, requireActive, type ProjectRow } from "../projects.js";

/**
 * One change to a limit of a project: in one transaction with its audit event (`project.updated`, OpenAI having no
 * event of its own for these, `changes_requested` saying what changed), then broadcast as a revocation of the
 * project, so that the next request through any gateway carries the new limit. An archived project can lose a limit
 * but not gain one.
 */
export async function changeProjectLimit(
  ctx: AuthContext,
  principal: AdminPrincipal,
  projectId: string,
  change: {
    changesRequested: Record<string, unknown>;
    /** Deleting is allowed on an archived project; setting is not. */
    kind: "set" | "delete";
    apply: (trx: Transaction<AuthDatabase>, project: ProjectRow) => Promise<void>;
  },
): Promise<void> {
  await ctx.db.transaction().execute(async (trx) => {
    const project = await findProject(trx, principal.organizationId, projectId, { forUpdate: true });
    if (change.kind === "set") requireActive(project);
    await change.apply(trx, project);
    await recordAudit(trx, {
      organizationId: principal.organizationId,
      type: "project.updated",
      actor: principal.actor,
      project: { id: project.id, name: project.name },
      resourceId: project.id,
      details: { id: project.id, changes_requested: change.changesRequested },
    });
  });
  await ctx.revoke([{ scope: "project", id: projectId }]);
}

/** The same for a limit of the whole organization: `organization.updated`, and an organization revocation. */
export async function changeOrganizationLimit(
  ctx: AuthContext,
  principal: AdminPrincipal,
  change: {
    changesRequested: Record<string, unknown>;
    apply: (trx: Transaction<AuthDatabase>) => Promise<void>;
  },
): Promise<void> {
  const organizationId = principal.organizationId;
  await ctx.db.transaction().execute(async (trx) => {
    await change.apply(trx);
    await recordAudit(trx, {
      organizationId,
      type: "organization.updated",
      actor: principal.actor,
      resourceId: organizationId,
      details: { id: organizationId, changes_requested: change.changesRequested },
    });
  });
  await ctx.revoke([{ scope: "organization", id: organizationId }]);
}

/** A delete of a limit that was never set is a 404, as a retrieve of it is. */
export function requireDeleted(deleted: { numDeletedRows: bigint }, what: string): void {
  if (deleted.numDeletedRows === 0n) throw new PlatformError("not_found", `${what} to delete.`);
}
