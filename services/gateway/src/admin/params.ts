import type { Catalogue } from "@llmaas/catalogue";
import { AuditLogFilter, PlatformError } from "@llmaas/contracts";
import { parseQuery } from "../validation.js";

const ID = /^[A-Za-z0-9_-]{1,128}$/;

/** An id from the path; one no object can have is not found, like any other unknown id. */
export function pathId(value: string, kind: string): string {
  if (!ID.test(value))
    throw new PlatformError("not_found", `No ${kind} found with id '${value.slice(0, 128)}'.`);
  return value;
}

/** Node's query parser leaves OpenAI's bracketed names as they are: `project_ids[]=a&project_ids[]=b`. */
export function listParam(query: Record<string, unknown>, name: string): string[] {
  const value = query[`${name}[]`] ?? query[name];
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

function integerParam(query: Record<string, unknown>, name: string): number | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !/^-?\d{1,12}$/.test(value)) {
    throw new PlatformError(
      "invalid_request",
      `Invalid query parameter '${name}': expected an integer.`,
      name,
    );
  }
  return Number(value);
}

/** `GET /v1/organization/audit_logs`'s filters, as OpenAI's SDKs encode them (`effective_at[gt]=…`, `x_ids[]=…`). */
export function auditLogFilter(query: Record<string, unknown>): AuditLogFilter {
  const effectiveAt: AuditLogFilter["effectiveAt"] = {};
  for (const bound of ["gt", "gte", "lt", "lte"] as const) {
    const value = integerParam(query, `effective_at[${bound}]`);
    if (value !== undefined) effectiveAt[bound] = value;
  }
  const filter = {
    effectiveAt,
    projectIds: listParam(query, "project_ids"),
    eventTypes: listParam(query, "event_types"),
    actorIds: listParam(query, "actor_ids"),
    actorEmails: listParam(query, "actor_emails"),
    resourceIds: listParam(query, "resource_ids"),
  };
  return parseQuery(AuditLogFilter, filter);
}

/**
 * Model ids or aliases an administrator lists (a key's `allowed_models`, a project's `model_ids`) must name models
 * of the catalogue: a typo would otherwise lock a key or a project out of a model, or let it through, silently.
 */
export function checkCatalogueModels(
  catalogue: Catalogue,
  models: string[] | null | undefined,
  param: string,
): void {
  models?.forEach((entry, index) => {
    if (!catalogue.find(entry)) {
      throw new PlatformError(
        "invalid_request",
        `The model \`${entry}\` is not in the catalogue (GET /v1/models lists ids and aliases).`,
        `${param}[${index}]`,
      );
    }
  });
}
