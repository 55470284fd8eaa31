import type { FastifyInstance } from "fastify";
import { adminSubjects, openaiAdmin, PlatformError } from "@llmaas/contracts";
import { adminOf } from "../auth/index.js";
import { parseBody, parseQuery } from "../validation.js";
import { busCaller, type AdminRoutesOptions } from "./call.js";
import { checkCatalogueModels, pathId } from "./params.js";

export interface LimitRoutesOptions extends AdminRoutesOptions {
  /** The platform's currency (`CURRENCY`): spend limits are set and answered in it. */
  currency: string;
}

interface ProjectParams {
  project_id: string;
}
interface RateLimitParams extends ProjectParams {
  rate_limit_id: string;
}

/** `rl-` and a model id as the catalogue writes them; anything else names no rate limit. */
const RATE_LIMIT_ID = /^rl-[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function rateLimitIdOf(params: RateLimitParams): string {
  if (!RATE_LIMIT_ID.test(params.rate_limit_id)) {
    throw new PlatformError(
      "not_found",
      `No rate limit found with id '${params.rate_limit_id.slice(0, 160)}'.`,
    );
  }
  return params.rate_limit_id;
}

/**
 * OpenAI's limits administration: a project's rate limits per model and its model permissions, and the hard spend
 * limits of the organization and of a project. `auth` owns and audits them and tells every gateway to drop the
 * principals that carried the old ones. GET of a spend limit or of model permissions that are not set is a 404
 * (there is no object to show), as is DELETE of one.
 */
export function registerLimitRoutes(app: FastifyInstance, options: LimitRoutesOptions): void {
  const call = busCaller(options);
  const project = (params: ProjectParams) => pathId(params.project_id, "project");

  /**
   * OpenAI accepts only USD; the platform bills in its own currency, so a spend limit is set in it (in any case) and
   * refused in another: converting at some rate would make a hard limit soft.
   */
  const spendLimitSetting = (body: unknown) => {
    const { threshold_amount, currency } = parseBody(openaiAdmin.SpendLimitUpdateBody, body);
    if (currency.toUpperCase() !== options.currency) {
      throw new PlatformError(
        "invalid_request",
        `Spend limits are in the platform's currency: \`currency\` must be \`${options.currency}\`, not ` +
          `\`${currency}\`.`,
        "currency",
      );
    }
    return { thresholdAmount: threshold_amount, currency: options.currency };
  };

  // ---- project rate limits
  app.get<{ Params: ProjectParams }>("/v1/organization/projects/:project_id/rate_limits", async (request) => {
    const query = parseQuery(openaiAdmin.RateLimitPageQuery, request.query);
    if (query.after !== undefined && query.before !== undefined) {
      throw new PlatformError("invalid_request", "Give `after` or `before`, not both.", "before");
    }
    return call(adminSubjects.rateLimitsList, {
      principal: adminOf(request),
      projectId: project(request.params),
      limit: query.limit,
      after: query.after ?? null,
      before: query.before ?? null,
    });
  });
  app.post<{ Params: RateLimitParams }>(
    "/v1/organization/projects/:project_id/rate_limits/:rate_limit_id",
    async (request) => {
      const body = parseBody(openaiAdmin.ProjectRateLimitUpdateBody, request.body);
      return call(adminSubjects.rateLimitsModify, {
        principal: adminOf(request),
        projectId: project(request.params),
        rateLimitId: rateLimitIdOf(request.params),
        change: {
          maxRequestsPer1Minute: body.max_requests_per_1_minute,
          maxTokensPer1Minute: body.max_tokens_per_1_minute,
          maxRequestsPer1Day: body.max_requests_per_1_day,
          maxAudioMegabytesPer1Minute: body.max_audio_megabytes_per_1_minute,
        },
      });
    },
  );

  // ---- project model permissions
  const modelPermissionsPath = "/v1/organization/projects/:project_id/model_permissions";
  app.get<{ Params: ProjectParams }>(modelPermissionsPath, async (request) => {
    const projectId = project(request.params);
    const permissions = await call(adminSubjects.modelPermissionsRetrieve, {
      principal: adminOf(request),
      projectId,
    });
    if (!permissions) {
      throw new PlatformError(
        "not_found",
        `Project '${projectId}' has no model permissions: it may use every model.`,
      );
    }
    return permissions;
  });
  app.post<{ Params: ProjectParams }>(modelPermissionsPath, async (request) => {
    const body = parseBody(openaiAdmin.ProjectModelPermissionsUpdateBody, request.body);
    checkCatalogueModels(options.catalogue, body.model_ids, "model_ids");
    return call(adminSubjects.modelPermissionsUpdate, {
      principal: adminOf(request),
      projectId: project(request.params),
      permissions: { mode: body.mode, modelIds: body.model_ids },
    });
  });
  app.delete<{ Params: ProjectParams }>(modelPermissionsPath, async (request) =>
    call(adminSubjects.modelPermissionsDelete, {
      principal: adminOf(request),
      projectId: project(request.params),
    }),
  );

  // ---- the organization's spend limit
  app.get("/v1/organization/spend_limit", async (request) => {
    const spendLimit = await call(adminSubjects.organizationSpendLimitRetrieve, {
      principal: adminOf(request),
    });
    if (!spendLimit) throw new PlatformError("not_found", "The organization has no spend limit.");
    return spendLimit;
  });
  app.post("/v1/organization/spend_limit", async (request) =>
    call(adminSubjects.organizationSpendLimitUpdate, {
      principal: adminOf(request),
      ...spendLimitSetting(request.body),
    }),
  );
  app.delete("/v1/organization/spend_limit", async (request) =>
    call(adminSubjects.organizationSpendLimitDelete, { principal: adminOf(request) }),
  );

  // ---- a project's spend limit
  const projectSpendLimitPath = "/v1/organization/projects/:project_id/spend_limit";
  app.get<{ Params: ProjectParams }>(projectSpendLimitPath, async (request) => {
    const projectId = project(request.params);
    const spendLimit = await call(adminSubjects.projectSpendLimitRetrieve, {
      principal: adminOf(request),
      projectId,
    });
    if (!spendLimit) throw new PlatformError("not_found", `Project '${projectId}' has no spend limit.`);
    return spendLimit;
  });
  app.post<{ Params: ProjectParams }>(projectSpendLimitPath, async (request) =>
    call(adminSubjects.projectSpendLimitUpdate, {
      principal: adminOf(request),
      projectId: project(request.params),
      ...spendLimitSetting(request.body),
    }),
  );
  app.delete<{ Params: ProjectParams }>(projectSpendLimitPath, async (request) =>
    call(adminSubjects.projectSpendLimitDelete, {
      principal: adminOf(request),
      projectId: project(request.params),
    }),
  );

  // Extension (docs/guardrail.md): how the project's prompts are screened.
  const guardrailPath = "/v1/organization/projects/:project_id/guardrail";
  app.get<{ Params: ProjectParams }>(guardrailPath, async (request) =>
    call(adminSubjects.projectGuardrailRetrieve, {
      principal: adminOf(request),
      projectId: project(request.params),
    }),
  );
  app.post<{ Params: ProjectParams }>(guardrailPath, async (request) => {
    const body = parseBody(openaiAdmin.ProjectGuardrailBody, request.body);
    return call(adminSubjects.projectGuardrailUpdate, {
      principal: adminOf(request),
      projectId: project(request.params),
      mode: body.mode,
      threshold: body.threshold,
      onTimeout: body.on_timeout,
    });
  });
}
