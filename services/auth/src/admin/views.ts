import type { Selectable } from "kysely";
import { AuditActor, type openaiAdmin } from "@llmaas/contracts";
import type {
  AdminApiKeysTable,
  AdministratorsTable,
  ApiKeysTable,
  AuditLogsTable,
  ProjectsTable,
  ServiceAccountsTable,
} from "@llmaas/db";
import { limitCount } from "./limits/settings.js";

/** Rows as the OpenAI objects the routes answer with. */

export function unixSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

function unixSecondsOrNull(date: Date | null): number | null {
  return date === null ? null : unixSeconds(date);
}

export function toProject(row: Selectable<ProjectsTable>): openaiAdmin.Project {
  return {
    id: row.id,
    object: "organization.project",
    name: row.name,
    created_at: unixSeconds(row.created_at),
    archived_at: unixSecondsOrNull(row.archived_at),
    status: row.status,
  };
}

export function toServiceAccount(row: Selectable<ServiceAccountsTable>): openaiAdmin.ServiceAccount {
  return {
    object: "organization.project.service_account",
    id: row.id,
    name: row.name,
    role: row.role,
    created_at: unixSeconds(row.created_at),
  };
}

export type ApiKeyRow = Selectable<ApiKeysTable> & {
  owner_name: string;
  owner_role: string;
  owner_created_at: Date;
};

export function toProjectApiKey(row: ApiKeyRow): openaiAdmin.ProjectApiKey {
  return {
    object: "organization.project.api_key",
    id: row.id,
    name: row.name,
    redacted_value: row.redacted_value,
    created_at: unixSeconds(row.created_at),
    last_used_at: unixSecondsOrNull(row.last_used_at),
    owner_project_access: "active",
    owner: {
      type: "service_account",
      service_account: {
        id: row.service_account_id,
        name: row.owner_name,
        created_at: unixSeconds(row.owner_created_at),
        role: row.owner_role,
      },
    },
    expires_at: unixSecondsOrNull(row.expires_at),
    allowed_models: row.allowed_models,
    rate_limits:
      row.max_requests_per_1_minute === null && row.max_tokens_per_1_minute === null
        ? null
        : {
            max_requests_per_1_minute: limitCount(row.max_requests_per_1_minute),
            max_tokens_per_1_minute: limitCount(row.max_tokens_per_1_minute),
          },
    token_budget:
      row.token_budget_limit !== null && row.token_budget_interval !== null
        ? { limit: limitCount(row.token_budget_limit), interval: row.token_budget_interval }
        : null,
    guardrail_mode: row.guardrail_mode,
  };
}

export function toAdminApiKey(
  row: Selectable<AdminApiKeysTable>,
  owner: openaiAdmin.AdminApiKeyOwner,
): openaiAdmin.AdminApiKey {
  return {
    object: "organization.admin_api_key",
    id: row.id,
    name: row.name,
    redacted_value: row.redacted_value,
    created_at: unixSeconds(row.created_at),
    expires_at: unixSecondsOrNull(row.expires_at),
    last_used_at: unixSecondsOrNull(row.last_used_at),
    owner,
  };
}

export function toUser(row: Selectable<AdministratorsTable>): openaiAdmin.User {
  return {
    object: "organization.user",
    id: row.id,
    name: row.name,
    email: row.email,
    role: row.role,
    added_at: unixSeconds(row.created_at),
  };
}

export function toAuditLog(row: Selectable<AuditLogsTable>): openaiAdmin.AuditLog {
  return {
    id: row.id,
    type: row.type,
    effective_at: unixSeconds(row.effective_at),
    ...(row.project_id !== null ? { project: { id: row.project_id, name: row.project_name ?? "" } } : {}),
    actor: row.actor === null ? null : AuditActor.parse(row.actor),
    ...(row.details !== null ? { [row.type]: row.details } : {}),
  };
}

/** OpenAI's cursor page from rows fetched with one extra, which tells whether there is more. */
export function toList<Row, Item extends { id: string }>(
  rows: Row[],
  limit: number,
  toItem: (row: Row) => Item,
): { object: "list"; data: Item[]; first_id: string | null; last_id: string | null; has_more: boolean } {
  const data = rows.slice(0, limit).map(toItem);
  return {
    object: "list",
    data,
    first_id: data[0]?.id ?? null,
    last_id: data[data.length - 1]?.id ?? null,
    has_more: rows.length > limit,
  };
}
