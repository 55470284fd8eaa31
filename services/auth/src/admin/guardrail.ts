import type { Kysely } from "kysely";
import type { Bus } from "@llmaas/bus";
import { adminSubjects, type GuardrailPolicy, type openaiAdmin } from "@llmaas/contracts";
import type { AuthDatabase } from "@llmaas/db";
import type { AuthContext } from "../context.js";
import { changeProjectLimit } from "./limits/changes.js";
import { findProject } from "./projects.js";
import { serveAdmin } from "./serve.js";

interface PolicyRow {
  mode: GuardrailPolicy["mode"];
  threshold: number;
  on_timeout: GuardrailPolicy["onTimeout"];
}

/** A project's policy: the row it set, else the platform's default. */
export function policyOf(ctx: AuthContext, row: Partial<PolicyRow> | undefined): GuardrailPolicy {
  return row?.mode !== undefined && row.threshold !== undefined && row.on_timeout !== undefined
    ? { mode: row.mode, threshold: row.threshold, onTimeout: row.on_timeout }
    : ctx.guardrailDefault;
}

function toProjectGuardrail(
  projectId: string,
  policy: GuardrailPolicy,
  isDefault: boolean,
): openaiAdmin.ProjectGuardrail {
  return {
    object: "project.guardrail",
    project_id: projectId,
    mode: policy.mode,
    threshold: policy.threshold,
    on_timeout: policy.onTimeout,
    is_default: isDefault,
  };
}

function findPolicy(db: Kysely<AuthDatabase>, projectId: string): Promise<PolicyRow | undefined> {
  return db
    .selectFrom("project_guardrail_policies")
    .select(["mode", "threshold", "on_timeout"])
    .where("project_id", "=", projectId)
    .executeTakeFirst();
}

/**
 * Extension: a project's guardrail policy (docs/guardrail.md). A change is audited as `project.updated` with
 * `changes_requested.guardrail`, and broadcast as a revocation of the project, so the next request through any
 * gateway carries the new policy in its principal.
 */
export function serveGuardrailPolicies(bus: Bus, ctx: AuthContext): void {
  const { db } = ctx;

  serveAdmin(bus, ctx, adminSubjects.projectGuardrailRetrieve, async ({ principal, projectId }) => {
    const project = await findProject(db, principal.organizationId, projectId);
    const row = await findPolicy(db, project.id);
    return toProjectGuardrail(project.id, policyOf(ctx, row), row === undefined);
  });

  serveAdmin(
    bus,
    ctx,
    adminSubjects.projectGuardrailUpdate,
    async ({ principal, projectId, mode, threshold, onTimeout }) => {
      let policy: GuardrailPolicy = ctx.guardrailDefault;
      await changeProjectLimit(ctx, principal, projectId, {
        changesRequested: {
          guardrail: {
            ...(mode !== undefined ? { mode } : {}),
            ...(threshold !== undefined ? { threshold } : {}),
            ...(onTimeout !== undefined ? { on_timeout: onTimeout } : {}),
          },
        },
        kind: "set",
        apply: async (trx, project) => {
          // The project row is locked: two changes of different fields cannot lose one another.
          const current = policyOf(ctx, await findPolicy(trx, project.id));
          policy = {
            mode: mode ?? current.mode,
            threshold: threshold ?? current.threshold,
            onTimeout: onTimeout ?? current.onTimeout,
          };
          const row = { mode: policy.mode, threshold: policy.threshold, on_timeout: policy.onTimeout };
          await trx
            .insertInto("project_guardrail_policies")
            .values({ project_id: project.id, ...row })
            .onConflict((conflict) =>
              conflict.column("project_id").doUpdateSet({ ...row, updated_at: new Date() }),
            )
            .execute();
        },
      });
      return toProjectGuardrail(projectId, policy, false);
    },
  );
}
