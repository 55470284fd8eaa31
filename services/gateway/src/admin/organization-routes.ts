import type { FastifyInstance } from "fastify";
import { adminSubjects, openaiAdmin, PlatformError, type KeySettingsChange } from "@llmaas/contracts";
import { adminOf } from "../auth/index.js";
import { parseBody, parseQuery } from "../validation.js";
import { busCaller, type AdminRoutesOptions } from "./call.js";
import { registerExport } from "./export.js";
import { auditLogFilter, checkCatalogueModels, pathId } from "./params.js";

interface ProjectParams {
  project_id: string;
}
interface ServiceAccountParams extends ProjectParams {
  service_account_id: string;
}
interface ApiKeyParams extends ProjectParams {
  api_key_id: string;
}

const ProjectApiKeyListQuery = openaiAdmin.PageQuery.extend({
  owner_project_access: openaiAdmin.OwnerProjectAccess.optional(),
});

/**
 * A relative expiry (OpenAI's `expires_in_seconds`) becomes an absolute one when the request arrives; the limits'
 * fields take the bus's names, a rate limit left out of `rate_limits` being none.
 */
function keySettings(body: {
  expires_at?: number | null | undefined;
  expires_in_seconds?: number | undefined;
  allowed_models?: string[] | null | undefined;
  rate_limits?:
    | {
        max_requests_per_1_minute?: number | null | undefined;
        max_tokens_per_1_minute?: number | null | undefined;
      }
    | null
    | undefined;
  token_budget?: KeySettingsChange["tokenBudget"];
  guardrail_mode?: KeySettingsChange["guardrailMode"];
}): KeySettingsChange {
  const expiresAt =
    body.expires_in_seconds === undefined
      ? body.expires_at
      : Math.floor(Date.now() / 1000) + body.expires_in_seconds;
  const rateLimits = body.rate_limits && {
    maxRequestsPer1Minute: body.rate_limits.max_requests_per_1_minute ?? null,
    maxTokensPer1Minute: body.rate_limits.max_tokens_per_1_minute ?? null,
  };
  return {
    expiresAt,
    allowedModels: body.allowed_models,
    rateLimits,
    tokenBudget: body.token_budget,
    guardrailMode: body.guardrail_mode,
  };
}

const ZERO_RETENTION_ONLY =
  "The platform keeps no prompts, answers or audio, for every organization: zero_data_retention is the only " +
  "retention it offers.";

/**
 * OpenAI's Administration API (`/v1/organization/...`): each route is one request to `auth`, scoped to the caller's
 * organization, answered with OpenAI's object; plus the platform's extensions (key settings and rotation, export).
 */
export function registerOrganizationRoutes(app: FastifyInstance, options: AdminRoutesOptions): void {
  const call = busCaller(options);
  const project = (params: ProjectParams) => pathId(params.project_id, "project");

  // ---- projects
  app.get("/v1/organization/projects", async (request) => {
    const query = parseQuery(openaiAdmin.ProjectListQuery, request.query);
    return call(adminSubjects.projectsList, {
      principal: adminOf(request),
      limit: query.limit,
      after: query.after ?? null,
      includeArchived: query.include_archived,
    });
  });
  app.post("/v1/organization/projects", async (request) => {
    const body = parseBody(openaiAdmin.ProjectCreateBody, request.body);
    return call(adminSubjects.projectsCreate, { principal: adminOf(request), name: body.name });
  });
  app.get<{ Params: ProjectParams }>("/v1/organization/projects/:project_id", async (request) =>
    call(adminSubjects.projectsRetrieve, { principal: adminOf(request), projectId: project(request.params) }),
  );
  app.post<{ Params: ProjectParams }>("/v1/organization/projects/:project_id", async (request) => {
    const body = parseBody(openaiAdmin.ProjectUpdateBody, request.body);
    return call(adminSubjects.projectsModify, {
      principal: adminOf(request),
      projectId: project(request.params),
      name: body.name,
    });
  });
  app.post<{ Params: ProjectParams }>("/v1/organization/projects/:project_id/archive", async (request) =>
    call(adminSubjects.projectsArchive, { principal: adminOf(request), projectId: project(request.params) }),
  );

  // ---- service accounts
  const serviceAccount = (params: ServiceAccountParams) =>
    pathId(params.service_account_id, "service account");
  app.get<{ Params: ProjectParams }>(
    "/v1/organization/projects/:project_id/service_accounts",
    async (request) => {
      const query = parseQuery(openaiAdmin.PageQuery, request.query);
      return call(adminSubjects.serviceAccountsList, {
        principal: adminOf(request),
        projectId: project(request.params),
        limit: query.limit,
        after: query.after ?? null,
      });
    },
  );
  app.post<{ Params: ProjectParams }>(
    "/v1/organization/projects/:project_id/service_accounts",
    async (request) => {
      const body = parseBody(openaiAdmin.ServiceAccountCreateBody, request.body);
      return call(adminSubjects.serviceAccountsCreate, {
        principal: adminOf(request),
        projectId: project(request.params),
        name: body.name,
        withApiKey: body.create_service_account_only !== true,
      });
    },
  );
  const serviceAccountPath = "/v1/organization/projects/:project_id/service_accounts/:service_account_id";
  app.get<{ Params: ServiceAccountParams }>(serviceAccountPath, async (request) =>
    call(adminSubjects.serviceAccountsRetrieve, {
      principal: adminOf(request),
      projectId: project(request.params),
      serviceAccountId: serviceAccount(request.params),
    }),
  );
  app.post<{ Params: ServiceAccountParams }>(serviceAccountPath, async (request) => {
    const body = parseBody(openaiAdmin.ServiceAccountUpdateBody, request.body);
    return call(adminSubjects.serviceAccountsModify, {
      principal: adminOf(request),
      projectId: project(request.params),
      serviceAccountId: serviceAccount(request.params),
      ...body,
    });
  });
  app.delete<{ Params: ServiceAccountParams }>(serviceAccountPath, async (request) =>
    call(adminSubjects.serviceAccountsDelete, {
      principal: adminOf(request),
      projectId: project(request.params),
      serviceAccountId: serviceAccount(request.params),
    }),
  );
  app.post<{ Params: ServiceAccountParams }>(`${serviceAccountPath}/api_keys`, async (request) => {
    const body = parseBody(openaiAdmin.ServiceAccountKeyCreateBody, request.body ?? {});
    checkCatalogueModels(options.catalogue, body.allowed_models, "allowed_models");
    return call(adminSubjects.serviceAccountKeysCreate, {
      principal: adminOf(request),
      projectId: project(request.params),
      serviceAccountId: serviceAccount(request.params),
      name: body.name ?? null,
      settings: keySettings(body),
    });
  });

  // ---- project API keys
  const apiKey = (params: ApiKeyParams) => pathId(params.api_key_id, "API key");
  const apiKeyPath = "/v1/organization/projects/:project_id/api_keys/:api_key_id";
  app.get<{ Params: ProjectParams }>("/v1/organization/projects/:project_id/api_keys", async (request) => {
    const query = parseQuery(ProjectApiKeyListQuery, request.query);
    const page = await call(adminSubjects.apiKeysList, {
      principal: adminOf(request),
      projectId: project(request.params),
      limit: query.limit,
      after: query.after ?? null,
    });
    // Keys belong to service accounts, whose access to their project is always active.
    if (query.owner_project_access === "inactive") {
      return { object: "list", data: [], first_id: null, last_id: null, has_more: false };
    }
    return page;
  });
  app.get<{ Params: ApiKeyParams }>(apiKeyPath, async (request) =>
    call(adminSubjects.apiKeysRetrieve, {
      principal: adminOf(request),
      projectId: project(request.params),
      keyId: apiKey(request.params),
    }),
  );
  app.post<{ Params: ApiKeyParams }>(apiKeyPath, async (request) => {
    const body = parseBody(openaiAdmin.ApiKeyUpdateBody, request.body);
    checkCatalogueModels(options.catalogue, body.allowed_models, "allowed_models");
    return call(adminSubjects.apiKeysModify, {
      principal: adminOf(request),
      projectId: project(request.params),
      keyId: apiKey(request.params),
      name: body.name,
      settings: keySettings(body),
    });
  });
  app.delete<{ Params: ApiKeyParams }>(apiKeyPath, async (request) =>
    call(adminSubjects.apiKeysDelete, {
      principal: adminOf(request),
      projectId: project(request.params),
      keyId: apiKey(request.params),
    }),
  );
  app.post<{ Params: ApiKeyParams }>(`${apiKeyPath}/rotate`, async (request) => {
    const body = parseBody(openaiAdmin.ApiKeyRotateBody, request.body ?? {});
    return call(adminSubjects.apiKeysRotate, {
      principal: adminOf(request),
      projectId: project(request.params),
      keyId: apiKey(request.params),
      gracePeriodSeconds: body.grace_period_seconds ?? 0,
    });
  });

  // ---- admin API keys
  const adminKey = (params: { key_id: string }) => pathId(params.key_id, "admin API key");
  app.get("/v1/organization/admin_api_keys", async (request) => {
    const query = parseQuery(openaiAdmin.AdminApiKeyListQuery, request.query);
    return call(adminSubjects.adminKeysList, {
      principal: adminOf(request),
      limit: query.limit,
      after: query.after ?? null,
      order: query.order,
    });
  });
  app.post("/v1/organization/admin_api_keys", async (request) => {
    const body = parseBody(openaiAdmin.AdminApiKeyCreateBody, request.body);
    return call(adminSubjects.adminKeysCreate, {
      principal: adminOf(request),
      name: body.name,
      expiresInSeconds: body.expires_in_seconds ?? null,
    });
  });
  app.get<{ Params: { key_id: string } }>("/v1/organization/admin_api_keys/:key_id", async (request) =>
    call(adminSubjects.adminKeysRetrieve, { principal: adminOf(request), keyId: adminKey(request.params) }),
  );
  app.delete<{ Params: { key_id: string } }>("/v1/organization/admin_api_keys/:key_id", async (request) =>
    call(adminSubjects.adminKeysDelete, { principal: adminOf(request), keyId: adminKey(request.params) }),
  );

  // ---- audit log and users
  app.get("/v1/organization/audit_logs", async (request) => {
    const query = request.query as Record<string, unknown>;
    const page = parseQuery(openaiAdmin.AuditLogPageQuery, query);
    return call(adminSubjects.auditLogsList, {
      principal: adminOf(request),
      filter: auditLogFilter(query),
      limit: page.limit,
      after: page.after ?? null,
      before: page.before ?? null,
    });
  });
  app.get("/v1/organization/users", async (request) => {
    const query = request.query as Record<string, unknown>;
    const page = parseQuery(openaiAdmin.PageQuery, query);
    const emails = query["emails[]"] ?? query.emails;
    return call(adminSubjects.usersList, {
      principal: adminOf(request),
      limit: page.limit,
      after: page.after ?? null,
      emails: emails === undefined ? null : (Array.isArray(emails) ? emails : [emails]).map(String),
    });
  });
  app.get<{ Params: { user_id: string } }>("/v1/organization/users/:user_id", async (request) =>
    call(adminSubjects.usersRetrieve, {
      principal: adminOf(request),
      userId: pathId(request.params.user_id, "user"),
    }),
  );

  // ---- data retention: nothing is retained, for anyone; the routes say so and refuse anything else
  app.get("/v1/organization/data_retention", async () => openaiAdmin.ORGANIZATION_DATA_RETENTION);
  app.post("/v1/organization/data_retention", async (request) => {
    const body = parseBody(openaiAdmin.OrganizationDataRetentionBody, request.body);
    if (body.retention_type !== "zero_data_retention") {
      throw new PlatformError("invalid_request", ZERO_RETENTION_ONLY, "retention_type");
    }
    return openaiAdmin.ORGANIZATION_DATA_RETENTION;
  });
  app.get<{ Params: ProjectParams }>(
    "/v1/organization/projects/:project_id/data_retention",
    async (request) => {
      await call(adminSubjects.projectsRetrieve, {
        principal: adminOf(request),
        projectId: project(request.params),
      });
      return openaiAdmin.PROJECT_DATA_RETENTION;
    },
  );
  app.post<{ Params: ProjectParams }>(
    "/v1/organization/projects/:project_id/data_retention",
    async (request) => {
      const body = parseBody(openaiAdmin.ProjectDataRetentionBody, request.body);
      await call(adminSubjects.projectsRetrieve, {
        principal: adminOf(request),
        projectId: project(request.params),
      });
      if (body.retention_type !== "zero_data_retention" && body.retention_type !== "organization_default") {
        throw new PlatformError("invalid_request", ZERO_RETENTION_ONLY, "retention_type");
      }
      return openaiAdmin.PROJECT_DATA_RETENTION;
    },
  );

  registerExport(app, call);
}
