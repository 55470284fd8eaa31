import type { FastifyInstance } from "fastify";
import {
  OidcSettings,
  openaiAdmin,
  OrganizationAdminKeyCreateBody,
  OrganizationCreateBody,
  operatorSubjects,
} from "@llmaas/contracts";
import { operatorOf } from "../auth/index.js";
import { parseBody, parseQuery } from "../validation.js";
import { busCaller, type AdminRoutesOptions } from "./call.js";
import { pathId } from "./params.js";

interface OrganizationParams {
  organization_id: string;
}

const OrganizationListQuery = openaiAdmin.PageQuery.extend({
  include_deleted: openaiAdmin.QueryBoolean.default(false),
});

/** The platform operator's routes (extension): organizations' lifecycle and their administrators' SSO. */
export function registerOperatorRoutes(app: FastifyInstance, options: AdminRoutesOptions): void {
  const call = busCaller(options);
  const organization = (params: OrganizationParams) => pathId(params.organization_id, "organization");
  const path = "/v1/operator/organizations/:organization_id";

  app.post("/v1/operator/organizations", async (request) => {
    const body = parseBody(OrganizationCreateBody, request.body);
    return call(operatorSubjects.organizationsCreate, { principal: operatorOf(request), name: body.name });
  });
  app.get("/v1/operator/organizations", async (request) => {
    const query = parseQuery(OrganizationListQuery, request.query);
    return call(operatorSubjects.organizationsList, {
      principal: operatorOf(request),
      limit: query.limit,
      after: query.after ?? null,
      includeDeleted: query.include_deleted,
    });
  });
  app.get<{ Params: OrganizationParams }>(path, async (request) =>
    call(operatorSubjects.organizationsRetrieve, {
      principal: operatorOf(request),
      organizationId: organization(request.params),
    }),
  );
  app.delete<{ Params: OrganizationParams }>(path, async (request) =>
    call(operatorSubjects.organizationsDelete, {
      principal: operatorOf(request),
      organizationId: organization(request.params),
    }),
  );
  app.post<{ Params: OrganizationParams }>(`${path}/suspend`, async (request) =>
    call(operatorSubjects.organizationsSuspend, {
      principal: operatorOf(request),
      organizationId: organization(request.params),
    }),
  );
  app.post<{ Params: OrganizationParams }>(`${path}/resume`, async (request) =>
    call(operatorSubjects.organizationsResume, {
      principal: operatorOf(request),
      organizationId: organization(request.params),
    }),
  );
  app.post<{ Params: OrganizationParams }>(`${path}/oidc`, async (request) => {
    const settings = parseBody(OidcSettings, request.body);
    return call(operatorSubjects.organizationsSetOidc, {
      principal: operatorOf(request),
      organizationId: organization(request.params),
      oidc: settings,
    });
  });
  app.delete<{ Params: OrganizationParams }>(`${path}/oidc`, async (request) =>
    call(operatorSubjects.organizationsSetOidc, {
      principal: operatorOf(request),
      organizationId: organization(request.params),
      oidc: null,
    }),
  );
  app.post<{ Params: OrganizationParams }>(`${path}/admin_api_keys`, async (request) => {
    const body = parseBody(OrganizationAdminKeyCreateBody, request.body);
    return call(operatorSubjects.organizationsCreateAdminKey, {
      principal: operatorOf(request),
      organizationId: organization(request.params),
      name: body.name,
      expiresInSeconds: body.expires_in_seconds ?? null,
    });
  });
}
