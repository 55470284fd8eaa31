import type { Kysely } from "kysely";
import type { Bus } from "@llmaas/bus";
import { adminSubjects, openaiAdmin, type RateLimitChange } from "@llmaas/contracts";
import type { AuthDatabase } from "@llmaas/db";
import { recordAudit } from "../../audit/record.js";
import type { AuthContext } from "../../context.js";
import { findProject, requireActive } from "../projects.js";
import { notFound, serveAdmin } from "../serve.js";
import {
  effectiveRateLimit,
  rateLimitedModels,
  rateLimitId,
  toProjectRateLimit,
  type RateLimitOverride,
} from "./settings.js";

/**
 * The columns a change names, under the API's names (so the audit log records it as asked), and nothing else: a
 * field left out keeps what the project set.
 */
function changedColumns(change: RateLimitChange) {
  const { maxRequestsPer1Minute, maxTokensPer1Minute, maxRequestsPer1Day, maxAudioMegabytesPer1Minute } =
    change;
  return {
    ...(maxRequestsPer1Minute !== undefined ? { max_requests_per_1_minute: maxRequestsPer1Minute } : {}),
    ...(maxTokensPer1Minute !== undefined ? { max_tokens_per_1_minute: maxTokensPer1Minute } : {}),
    ...(maxRequestsPer1Day !== undefined ? { max_requests_per_1_day: maxRequestsPer1Day } : {}),
    ...(maxAudioMegabytesPer1Minute !== undefined
      ? { max_audio_megabytes_per_1_minute: maxAudioMegabytesPer1Minute }
      : {}),
  };
}

/**
 * OpenAI's `changes_requested` holds the values set, integers only; the fields given back to their default (null,
 * an extension) are listed beside it, in `reset_to_default`.
 */
function auditedChange(columns: Record<string, number | null>): Record<string, unknown> {
  const entries = Object.entries(columns);
  const reset = entries.filter(([, value]) => value === null).map(([column]) => column);
  return {
    changes_requested: Object.fromEntries(entries.filter(([, value]) => value !== null)),
    ...(reset.length > 0 ? { reset_to_default: reset } : {}),
  };
}

const RATE_LIMIT_COLUMNS = [
  "model",
  "max_requests_per_1_minute",
  "max_tokens_per_1_minute",
  "max_requests_per_1_day",
  "max_audio_megabytes_per_1_minute",
] as const;

async function overridesOf(
  db: Kysely<AuthDatabase>,
  projectId: string,
): Promise<Map<string, RateLimitOverride>> {
  const rows = await db
    .selectFrom("project_rate_limits")
    .select(RATE_LIMIT_COLUMNS)
    .where("project_id", "=", projectId)
    .execute();
  return new Map(rows.map((row) => [row.model, row]));
}

/**
 * OpenAI's project rate limits: one per model of the catalogue, `rl-<model id>`, listed by id. What a project did
 * not set is the operator's default; null in a change gives a field back to it. Every change is broadcast as a
 * project revocation, so gateways drop the principals that carried the old limits.
 */
export function serveRateLimits(bus: Bus, ctx: AuthContext): void {
  const { db, limits } = ctx;
  const models = rateLimitedModels(limits.catalogue);

  /** The model a rate limit id names, or not found: only the catalogue's models have rate limits. */
  const modelOf = (id: string): string => {
    const model = id.slice(openaiAdmin.RATE_LIMIT_ID_PREFIX.length);
    if (!id.startsWith(openaiAdmin.RATE_LIMIT_ID_PREFIX) || !models.includes(model)) {
      throw notFound("rate limit", id);
    }
    return model;
  };

  serveAdmin(
    bus,
    ctx,
    adminSubjects.rateLimitsList,
    async ({ principal, projectId, limit, after, before }) => {
      await findProject(db, principal.organizationId, projectId);
      const overrides = await overridesOf(db, projectId);
      // `before` pages back: the `limit` ids just before it, still in ascending order.
      const candidates =
        before !== null
          ? models.filter((model) => rateLimitId(model) < before).reverse()
          : models.filter((model) => after === null || rateLimitId(model) > after);
      const page = candidates.slice(0, limit);
      if (before !== null) page.reverse();
      const data = page.map((model) =>
        toProjectRateLimit(model, effectiveRateLimit(limits.defaults, overrides.get(model))),
      );
      return {
        object: "list" as const,
        data,
        first_id: data[0]?.id ?? null,
        last_id: data[data.length - 1]?.id ?? null,
        has_more: candidates.length > limit,
      };
    },
  );

  serveAdmin(
    bus,
    ctx,
    adminSubjects.rateLimitsModify,
    async ({ principal, projectId, rateLimitId: id, change }) => {
      const { project, model, effective } = await db.transaction().execute(async (trx) => {
        const project = await findProject(trx, principal.organizationId, projectId, { forUpdate: true });
        requireActive(project);
        const model = modelOf(id);
        const columns = changedColumns(change);
        const row = await trx
          .insertInto("project_rate_limits")
          .values({ project_id: project.id, model, ...columns })
          .onConflict((conflict) =>
            conflict.columns(["project_id", "model"]).doUpdateSet({ ...columns, updated_at: new Date() }),
          )
          .returning(RATE_LIMIT_COLUMNS)
          .executeTakeFirstOrThrow();
        await recordAudit(trx, {
          organizationId: principal.organizationId,
          type: "rate_limit.updated",
          actor: principal.actor,
          project: { id: project.id, name: project.name },
          resourceId: id,
          details: { id, ...auditedChange(columns) },
        });
        return { project, model, effective: effectiveRateLimit(limits.defaults, row) };
      });
      await ctx.revoke([{ scope: "project", id: project.id }]);
      return toProjectRateLimit(model, effective);
    },
  );
}
