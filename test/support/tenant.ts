import { checkResponse } from "./openapi.js";
import type { SecretRegistry } from "./secrets.js";

/** One customer as the tests set it up through the public API: an organization, a project, an application. */
export interface Tenant {
  organizationId: string;
  adminKey: string;
  adminKeyId: string;
  projectId: string;
  serviceAccountId: string;
  apiKey: string;
  keyId: string;
}

export async function apiCall(
  baseURL: string,
  credential: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const response = await fetch(`${baseURL}${path}`, {
    method,
    headers: { authorization: `Bearer ${credential}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await response.json()) as Record<string, unknown>;
  checkResponse(method, `${baseURL}${path}`, response.status, json);
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

/**
 * The operator creates an organization (which comes with its first admin key); the admin key creates a project
 * and a service account, whose first API key applications use. Every secret is remembered for the leak check.
 */
export async function createTenant(
  baseURL: string,
  operatorToken: string,
  secrets: SecretRegistry,
  name = "Test organization",
): Promise<Tenant> {
  const organization = await apiCall(baseURL, operatorToken, "POST", "/operator/organizations", { name });
  secrets.collect(organization);
  const adminKey = organization.admin_api_key as { id: string; value: string };
  const project = await apiCall(baseURL, adminKey.value, "POST", "/organization/projects", {
    name: "Test project",
  });
  const account = await apiCall(
    baseURL,
    adminKey.value,
    "POST",
    `/organization/projects/${String(project.id)}/service_accounts`,
    { name: "Test application" },
  );
  secrets.collect(account);
  const apiKey = account.api_key as { id: string; value: string };
  return {
    organizationId: String(organization.id),
    adminKey: adminKey.value,
    adminKeyId: adminKey.id,
    projectId: String(project.id),
    serviceAccountId: String(account.id),
    apiKey: apiKey.value,
    keyId: apiKey.id,
  };
}
