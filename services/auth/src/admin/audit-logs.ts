import { sql, type Expression, type ExpressionBuilder, type SqlBool } from "kysely";
import type { Bus } from "@llmaas/bus";
import { adminSubjects, type AuditLogFilter } from "@llmaas/contracts";
import type { AuthDatabase } from "@llmaas/db";
import type { AuthContext } from "../context.js";
import { serveAdmin } from "./serve.js";
import { toAuditLog, toList } from "./views.js";

type AuditExpressions = ExpressionBuilder<AuthDatabase, "audit_logs">;

/** Where an actor's ids and emails sit in OpenAI's actor object, for sessions and for keys. */
const ACTOR_ID_PATHS = [
  "{session,user,id}",
  "{api_key,id}",
  "{api_key,user,id}",
  "{api_key,service_account,id}",
];
const ACTOR_EMAIL_PATHS = ["{session,user,email}", "{api_key,user,email}"];

function actorIn(eb: AuditExpressions, paths: string[], values: string[]): Expression<SqlBool> {
  return eb.or(paths.map((path) => eb(sql<string>`actor #>> ${path}`, "in", values)));
}

function matching(eb: AuditExpressions, filter: AuditLogFilter): Expression<SqlBool> {
  const conditions: Expression<SqlBool>[] = [];
  const at = (seconds: number) => new Date(seconds * 1000);
  const { gt, gte, lt, lte } = filter.effectiveAt;
  if (gt !== undefined) conditions.push(eb("effective_at", ">", at(gt + 1)));
  if (gte !== undefined) conditions.push(eb("effective_at", ">=", at(gte)));
  if (lt !== undefined) conditions.push(eb("effective_at", "<", at(lt)));
  if (lte !== undefined) conditions.push(eb("effective_at", "<", at(lte + 1)));
  if (filter.projectIds.length) conditions.push(eb("project_id", "in", filter.projectIds));
  if (filter.eventTypes.length) conditions.push(eb("type", "in", filter.eventTypes));
  if (filter.resourceIds.length) conditions.push(eb("resource_id", "in", filter.resourceIds));
  if (filter.actorIds.length) conditions.push(actorIn(eb, ACTOR_ID_PATHS, filter.actorIds));
  if (filter.actorEmails.length) conditions.push(actorIn(eb, ACTOR_EMAIL_PATHS, filter.actorEmails));
  return eb.and(conditions);
}

/**
 * Newest first, as OpenAI lists them. `effective_at` is compared at whole seconds, the resolution the API gives it:
 * `gt: t` means from second t + 1 on. `before` pages towards newer events.
 */
export function serveAuditLogs(bus: Bus, ctx: AuthContext): void {
  serveAdmin(bus, ctx, adminSubjects.auditLogsList, async ({ principal, filter, limit, after, before }) => {
    let query = ctx.db
      .selectFrom("audit_logs")
      .selectAll()
      .where("organization_id", "=", principal.organizationId)
      .where((eb) => matching(eb, filter));
    if (before !== null) {
      const newer = await query
        .where("id", ">", before)
        .orderBy("id", "asc")
        .limit(limit + 1)
        .execute();
      return toList(newer.slice(0, limit).reverse().concat(newer.slice(limit)), limit, toAuditLog);
    }
    if (after !== null) query = query.where("id", "<", after);
    const rows = await query
      .orderBy("id", "desc")
      .limit(limit + 1)
      .execute();
    return toList(rows, limit, toAuditLog);
  });
}
