import type { Bus } from "@llmaas/bus";
import { adminSubjects } from "@llmaas/contracts";
import type { AuthContext } from "../../context.js";
import { findProject } from "../projects.js";
import { serveAdmin } from "../serve.js";
import { changeOrganizationLimit, changeProjectLimit, requireDeleted } from "./changes.js";
import { limitCount } from "./settings.js";

interface SpendLimitRow {
  /** A bigint column, read back as a string. */
  threshold_amount: string | number;
  currency: string;
}

/**
 * OpenAI's fields of a hard spend limit. Every limit stored is enforced, so its enforcement status is always
 * `enforcing`: there is no way to keep a limit and switch it off.
 */
function spendLimitFields(row: SpendLimitRow) {
  return {
    threshold_amount: limitCount(row.threshold_amount),
    currency: row.currency,
    interval: "month" as const,
    enforcement: { status: "enforcing" as const },
  };
}

/** What the audit log records of a change: OpenAI's body, or null when the limit is deleted. */
function spendLimitChange(setting: { thresholdAmount: number; currency: string } | null) {
  return {
    spend_limit: setting && {
      threshold_amount: setting.thresholdAmount,
      currency: setting.currency,
      interval: "month",
    },
  };
}

/**
 * OpenAI's hard spend limits, per calendar month in cents of the platform's currency: one for the organization
 * (audited as `organization.updated`, broadcast as an organization revocation) and one per project (audited as
 * `project.updated`, broadcast as a project revocation), so every gateway drops the principals that carried the old
 * limit. OpenAI has no audit event of its own for them; `changes_requested.spend_limit` says what changed.
 */
export function serveSpendLimits(bus: Bus, ctx: AuthContext): void {
  const { db } = ctx;

  // ---- the organization's
  serveAdmin(bus, ctx, adminSubjects.organizationSpendLimitRetrieve, async ({ principal }) => {
    const row = await db
      .selectFrom("organization_spend_limits")
      .select(["threshold_amount", "currency"])
      .where("organization_id", "=", principal.organizationId)
      .executeTakeFirst();
    return row ? { object: "organization.spend_limit" as const, ...spendLimitFields(row) } : null;
  });

  serveAdmin(
    bus,
    ctx,
    adminSubjects.organizationSpendLimitUpdate,
    async ({ principal, thresholdAmount, currency }) => {
      const row = { threshold_amount: thresholdAmount, currency };
      await changeOrganizationLimit(ctx, principal, {
        changesRequested: spendLimitChange({ thresholdAmount, currency }),
        apply: async (trx) => {
          await trx
            .insertInto("organization_spend_limits")
            .values({ organization_id: principal.organizationId, ...row })
            .onConflict((conflict) =>
              conflict.column("organization_id").doUpdateSet({ ...row, updated_at: new Date() }),
            )
            .execute();
        },
      });
      return { object: "organization.spend_limit" as const, ...spendLimitFields(row) };
    },
  );

  serveAdmin(bus, ctx, adminSubjects.organizationSpendLimitDelete, async ({ principal }) => {
    await changeOrganizationLimit(ctx, principal, {
      changesRequested: spendLimitChange(null),
      apply: async (trx) => {
        const deleted = await trx
          .deleteFrom("organization_spend_limits")
          .where("organization_id", "=", principal.organizationId)
          .executeTakeFirst();
        requireDeleted(deleted, "The organization has no spend limit");
      },
    });
    return { object: "organization.spend_limit.deleted", deleted: true } as const;
  });

  // ---- a project's
  serveAdmin(bus, ctx, adminSubjects.projectSpendLimitRetrieve, async ({ principal, projectId }) => {
    const project = await findProject(db, principal.organizationId, projectId);
    const row = await db
      .selectFrom("project_spend_limits")
      .select(["threshold_amount", "currency"])
      .where("project_id", "=", project.id)
      .executeTakeFirst();
    return row ? { object: "project.spend_limit" as const, ...spendLimitFields(row) } : null;
  });

  serveAdmin(
    bus,
    ctx,
    adminSubjects.projectSpendLimitUpdate,
    async ({ principal, projectId, thresholdAmount, currency }) => {
      const row = { threshold_amount: thresholdAmount, currency };
      await changeProjectLimit(ctx, principal, projectId, {
        kind: "set",
        changesRequested: spendLimitChange({ thresholdAmount, currency }),
        apply: async (trx, project) => {
          await trx
            .insertInto("project_spend_limits")
            .values({ project_id: project.id, ...row })
            .onConflict((conflict) =>
              conflict.column("project_id").doUpdateSet({ ...row, updated_at: new Date() }),
            )
            .execute();
        },
      });
      return { object: "project.spend_limit" as const, ...spendLimitFields(row) };
    },
  );

  serveAdmin(bus, ctx, adminSubjects.projectSpendLimitDelete, async ({ principal, projectId }) => {
    await changeProjectLimit(ctx, principal, projectId, {
      kind: "delete",
      changesRequested: spendLimitChange(null),
      apply: async (trx, project) => {
        const deleted = await trx
          .deleteFrom("project_spend_limits")
          .where("project_id", "=", project.id)
          .executeTakeFirst();
        requireDeleted(deleted, `Project '${project.id}' has no spend limit`);
      },
    });
    return { object: "project.spend_limit.deleted", deleted: true } as const;
  });
}
