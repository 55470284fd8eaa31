import { defineCommand, type Command } from "../command.js";
import { cell, formatTime } from "../output.js";
import { listOptions, listSynopsis, showList } from "./listing.js";

interface AuditActor {
  type: "session" | "api_key";
  session?: { user?: { id?: string; email?: string | null }; ip_address?: string };
  api_key?: { id?: string; type?: string };
}

interface AuditLog {
  id: string;
  type: string;
  effective_at: number;
  project?: { id: string; name?: string | null } | null;
  actor?: AuditActor;
}

/** Who acted: the user of a session (email when known), or the API key. */
function actorOf(log: AuditLog): string {
  const actor = log.actor;
  if (actor?.type === "session") return cell(actor.session?.user?.email ?? actor.session?.user?.id);
  if (actor?.type === "api_key") return cell(actor.api_key?.id);
  return "-";
}

const listAuditLogs = defineCommand({
  path: ["audit"],
  synopsis: `[--type T]... [--project P]... ${listSynopsis}`,
  summary: "list the organization's audit log; --type and --project filter and may repeat",
  credential: "admin",
  operands: [],
  options: ["type", "project", ...listOptions],
  async execute(invocation) {
    const filters = new URLSearchParams();
    // The bracketed array format the OpenAI SDK sends, which URLSearchParams encodes as event_types%5B%5D=.
    for (const type of invocation.options.strings("type")) filters.append("event_types[]", type);
    for (const project of invocation.options.strings("project")) filters.append("project_ids[]", project);
    await showList<AuditLog>(invocation, "/v1/organization/audit_logs", filters, {
      header: ["TIME", "TYPE", "ACTOR", "PROJECT", "ID"],
      row: (log) => [
        formatTime(log.effective_at),
        cell(log.type),
        actorOf(log),
        cell(log.project?.id),
        cell(log.id),
      ],
    });
  },
});

export const auditCommands: readonly Command[] = [listAuditLogs];
