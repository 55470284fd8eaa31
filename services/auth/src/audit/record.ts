import type { Kysely } from "kysely";
import type { AuditActor, openaiAdmin } from "@llmaas/contracts";
import type { AuthDatabase } from "@llmaas/db";
import { ID_PREFIX, newId } from "../ids.js";

export interface AuditEvent {
  organizationId: string;
  type: openaiAdmin.AuditEventType;
  actor: AuditActor | null;
  /** The project the change was scoped to, as OpenAI shows it. */
  project?: { id: string; name: string } | undefined;
  /** The object changed: what `resource_ids[]` filters on. */
  resourceId: string | null;
  /**
   * What OpenAI puts under the key named after the type (`{ id, data }`, `{ id, changes_requested }` …). Never a
   * secret: only ids, names and settings.
   */
  details: Record<string, unknown> | null;
}

/**
 * Appends one audit event. Called with the transaction that makes the change, so the change and its record commit
 * or roll back together.
 */
export async function recordAudit(trx: Kysely<AuthDatabase>, event: AuditEvent): Promise<void> {
  await trx
    .insertInto("audit_logs")
    .values({
      id: newId(ID_PREFIX.auditLog),
      organization_id: event.organizationId,
      type: event.type,
      project_id: event.project?.id ?? null,
      project_name: event.project?.name ?? null,
      actor: event.actor === null ? null : JSON.stringify(event.actor),
      resource_id: event.resourceId,
      details: event.details === null ? null : JSON.stringify(event.details),
    })
    .execute();
}
