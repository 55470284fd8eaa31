// Isolation of the Administration API and the operator's routes, one row per route × credential: every route the
// gateway serves under `/v1/organization/...` and `/v1/operator/...` is called, aimed at organization A's objects,
// with credentials that must not reach them (organization B's admin key, A's reader, A's project API key, none, and
// each of the other two admin credentials on the routes they do not take). A refusal is 401 (no or unknown
// credential), 403 (wrong kind of credential, or a reader writing) or 404 (another organization's object, never a
// 403 that would confirm it exists); B's key on a route that names nothing of A's works, in B, and shows nothing of A.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import t, { type Test } from "tap";
import { REPO_ROOT, startStack } from "../support/stack.js";
import { openaiClient, rawRequest } from "../support/client.js";
import { startIdentityProvider } from "../support/identity-provider.js";
import {
  extensionErrors,
  openapiErrors,
  type ExtensionSchemaName,
  type OpenAISchemaName,
} from "../support/openapi.js";
import { apiCall, createTenant } from "../support/tenant.js";

const stack = await startStack({ authEnv: { OIDC_JWKS_COOLDOWN_MS: "200" } });
t.teardown(() => stack.stop());
const idp = await startIdentityProvider({
  onToken: (jwt) => stack.secrets.add("identity token", jwt),
});
t.teardown(() => idp.close());

const READERS = "llmaas-readers";
const a = stack;
const asA = (method: string, path: string, body?: unknown) =>
  apiCall(stack.baseURL, a.adminKey, method, path, body);

// ---- organization A: SSO with a reader, and one object of every kind for the routes to aim at
const configured = await apiCall(
  stack.baseURL,
  stack.operatorToken,
  "POST",
  `/operator/organizations/${a.organizationId}/oidc`,
  {
    issuer: idp.issuer,
    audience: idp.audience,
    jwks_uri: idp.jwksUri,
    role_claim: "groups",
    owner_values: ["llmaas-owners"],
    reader_values: [READERS],
  },
);
// Assertions wait for the rows: one made at the top level before any subtest would let tap end the run early.
const configuredErrors = extensionErrors("Organization", configured);
if (configuredErrors.length > 0) throw new Error(`A's SSO answer: ${configuredErrors.join("; ")}`);
const readerToken = await idp.sign({
  claims: { sub: "grace", email: "grace@a.test", name: "Grace Hopper", groups: [READERS] },
  expiresIn: 3600,
});
await apiCall(stack.baseURL, readerToken, "GET", "/organization/projects");
const users = (await asA("GET", "/organization/users")) as { data: { id: string; email: string }[] };
const readerUserId = users.data.find((user) => user.email === "grace@a.test")?.id ?? "";

const id = (json: Record<string, unknown>): string => String(json.id);
const victimProjectId = id(await asA("POST", "/organization/projects", { name: "To be archived" }));
const sa = `/organization/projects/${a.projectId}/service_accounts`;
const targetAccount = await asA("POST", sa, { name: "Target" });
stack.secrets.collect(targetAccount);
const targetAccountId = id(targetAccount);
const victimAccount = await asA("POST", sa, { name: "To be deleted", create_service_account_only: true });
const victimAccountId = id(victimAccount);
const newKey = async (name: string): Promise<string> => {
  const key = await asA("POST", `${sa}/${targetAccountId}/api_keys`, { name });
  stack.secrets.collect(key);
  return id(key);
};
const targetKeyId = (targetAccount.api_key as { id: string }).id;
const victimKeyId = await newKey("to be deleted");
const rotatedKeyId = await newKey("to be rotated");
const adminKeyCreated = await asA("POST", "/organization/admin_api_keys", { name: "To be deleted" });
stack.secrets.collect(adminKeyCreated);
const victimAdminKeyId = id(adminKeyCreated);
// Limits, so that every limit route has something of A's to show, or to leave alone.
const A_SPEND_LIMIT = { threshold_amount: 123_400, currency: "EUR", interval: "month" };
await asA("POST", `/organization/projects/${a.projectId}/model_permissions`, {
  mode: "deny_list",
  model_ids: ["tiny-embed"],
});
await asA("POST", `/organization/projects/${a.projectId}/spend_limit`, A_SPEND_LIMIT);
await asA("POST", "/organization/spend_limit", A_SPEND_LIMIT);
await asA("POST", `/organization/projects/${a.projectId}/guardrail`, { mode: "flag", threshold: 0.77 });
await asA("POST", `/organization/projects/${a.projectId}/rate_limits/rl-tiny-chat`, {
  max_requests_per_1_minute: 4_321,
});
const auditIds = (
  (await asA("GET", "/organization/audit_logs?limit=100")) as { data: { id: string }[] }
).data.map((event) => event.id);

/** Every id of A's that must never show in an answer to another organization. */
const aIds = [
  a.organizationId,
  a.projectId,
  victimProjectId,
  a.serviceAccountId,
  targetAccountId,
  victimAccountId,
  a.keyId,
  targetKeyId,
  victimKeyId,
  rotatedKeyId,
  a.adminKeyId,
  victimAdminKeyId,
  readerUserId,
  ...auditIds,
];

// ---- organization B, with a spend limit of its own for the organization-wide spend limit routes to show
const b = await createTenant(stack.baseURL, stack.operatorToken, stack.secrets, "Organization B");
await apiCall(stack.baseURL, b.adminKey, "POST", "/organization/spend_limit", {
  threshold_amount: 1_000,
  currency: "EUR",
  interval: "month",
});

// ---- the routes
type Method = "GET" | "POST" | "DELETE";

interface Route {
  method: Method;
  /** As the route files declare it. */
  pattern: string;
  /** The concrete path, under /v1, aimed at A. */
  path: string;
  body?: unknown;
  scope: "organization" | "operator";
  /** Whether the path names one of A's objects (else it is a route about the caller's own organization). */
  namesA: boolean;
  /** Order of execution: reads, then writes that change little, then those that would destroy, the worst last. */
  phase: 0 | 1 | 2 | 3;
  /** What a 200 answer is. */
  schema?: { openai: OpenAISchemaName } | { extension: ExtensionSchemaName };
  /** An id A's reader must find in the answer. */
  shows?: string;
  /** For a route that creates: where the created object is read back, by its id. */
  createdAt?: (createdId: string) => string;
}

const P = "/v1/organization/projects/:project_id";
const SA = `${P}/service_accounts/:service_account_id`;
const KEY = `${P}/api_keys/:api_key_id`;
const ORG = "/v1/operator/organizations/:organization_id";
const p = `/organization/projects/${a.projectId}`;
const o = `/operator/organizations/${a.organizationId}`;
const org = "organization" as const;
const op = "operator" as const;
const schema = (name: OpenAISchemaName) => ({ openai: name });

const routes: Route[] = [
  // projects
  {
    method: "GET",
    pattern: "/v1/organization/projects",
    path: "/organization/projects?include_archived=true",
    scope: org,
    namesA: false,
    phase: 0,
    schema: schema("ProjectListResponse"),
    shows: a.projectId,
  },
  {
    method: "POST",
    pattern: "/v1/organization/projects",
    path: "/organization/projects",
    body: { name: "Made by an intruder" },
    scope: org,
    namesA: false,
    phase: 1,
    schema: schema("Project"),
    createdAt: (created) => `/organization/projects/${created}`,
  },
  {
    method: "GET",
    pattern: P,
    path: p,
    scope: org,
    namesA: true,
    phase: 0,
    schema: schema("Project"),
    shows: a.projectId,
  },
  {
    method: "POST",
    pattern: P,
    path: p,
    body: { name: "Renamed by an intruder" },
    scope: org,
    namesA: true,
    phase: 1,
  },
  {
    method: "POST",
    pattern: `${P}/archive`,
    path: `/organization/projects/${victimProjectId}/archive`,
    scope: org,
    namesA: true,
    phase: 2,
  },
  // service accounts
  {
    method: "GET",
    pattern: `${P}/service_accounts`,
    path: sa,
    scope: org,
    namesA: true,
    phase: 0,
    schema: schema("ProjectServiceAccountListResponse"),
    shows: targetAccountId,
  },
  {
    method: "POST",
    pattern: `${P}/service_accounts`,
    path: sa,
    body: { name: "Intruder" },
    scope: org,
    namesA: true,
    phase: 1,
  },
  {
    method: "GET",
    pattern: SA,
    path: `${sa}/${targetAccountId}`,
    scope: org,
    namesA: true,
    phase: 0,
    schema: schema("ProjectServiceAccount"),
    shows: targetAccountId,
  },
  {
    method: "POST",
    pattern: SA,
    path: `${sa}/${targetAccountId}`,
    body: { name: "Renamed by an intruder", role: "owner" },
    scope: org,
    namesA: true,
    phase: 1,
  },
  { method: "DELETE", pattern: SA, path: `${sa}/${victimAccountId}`, scope: org, namesA: true, phase: 2 },
  {
    method: "POST",
    pattern: `${SA}/api_keys`,
    path: `${sa}/${targetAccountId}/api_keys`,
    body: { name: "Intruder's key" },
    scope: org,
    namesA: true,
    phase: 1,
  },
  // project API keys
  {
    method: "GET",
    pattern: `${P}/api_keys`,
    path: `${p}/api_keys`,
    scope: org,
    namesA: true,
    phase: 0,
    schema: schema("ProjectApiKeyListResponse"),
    shows: a.keyId,
  },
  {
    method: "GET",
    pattern: KEY,
    path: `${p}/api_keys/${targetKeyId}`,
    scope: org,
    namesA: true,
    phase: 0,
    schema: schema("ProjectApiKey"),
    shows: targetKeyId,
  },
  {
    method: "POST",
    pattern: KEY,
    path: `${p}/api_keys/${targetKeyId}`,
    body: { name: "Renamed by an intruder", allowed_models: ["tiny-embed"] },
    scope: org,
    namesA: true,
    phase: 1,
  },
  {
    method: "DELETE",
    pattern: KEY,
    path: `${p}/api_keys/${victimKeyId}`,
    scope: org,
    namesA: true,
    phase: 2,
  },
  {
    method: "POST",
    pattern: `${KEY}/rotate`,
    path: `${p}/api_keys/${rotatedKeyId}/rotate`,
    body: { grace_period_seconds: 0 },
    scope: org,
    namesA: true,
    phase: 2,
  },
  // admin API keys
  {
    method: "GET",
    pattern: "/v1/organization/admin_api_keys",
    path: "/organization/admin_api_keys",
    scope: org,
    namesA: false,
    phase: 0,
    schema: schema("ApiKeyList"),
    shows: a.adminKeyId,
  },
  {
    method: "POST",
    pattern: "/v1/organization/admin_api_keys",
    path: "/organization/admin_api_keys",
    body: { name: "Intruder's admin key" },
    scope: org,
    namesA: false,
    phase: 1,
    schema: schema("AdminApiKeyCreateResponse"),
    createdAt: (created) => `/organization/admin_api_keys/${created}`,
  },
  {
    method: "GET",
    pattern: "/v1/organization/admin_api_keys/:key_id",
    path: `/organization/admin_api_keys/${victimAdminKeyId}`,
    scope: org,
    namesA: true,
    phase: 0,
    schema: schema("AdminApiKey"),
    shows: victimAdminKeyId,
  },
  {
    method: "DELETE",
    pattern: "/v1/organization/admin_api_keys/:key_id",
    path: `/organization/admin_api_keys/${victimAdminKeyId}`,
    scope: org,
    namesA: true,
    phase: 2,
  },
  // audit log, users
  {
    method: "GET",
    pattern: "/v1/organization/audit_logs",
    path: "/organization/audit_logs?limit=100",
    scope: org,
    namesA: false,
    phase: 0,
    schema: schema("ListAuditLogsResponse"),
    shows: auditIds[0] ?? "",
  },
  {
    method: "GET",
    pattern: "/v1/organization/users",
    path: "/organization/users",
    scope: org,
    namesA: false,
    phase: 0,
    schema: schema("UserListResponse"),
    shows: readerUserId,
  },
  {
    method: "GET",
    pattern: "/v1/organization/users/:user_id",
    path: `/organization/users/${readerUserId}`,
    scope: org,
    namesA: true,
    phase: 0,
    schema: schema("User"),
    shows: readerUserId,
  },
  // data retention
  {
    method: "GET",
    pattern: "/v1/organization/data_retention",
    path: "/organization/data_retention",
    scope: org,
    namesA: false,
    phase: 0,
    schema: schema("OrganizationDataRetention"),
  },
  {
    method: "POST",
    pattern: "/v1/organization/data_retention",
    path: "/organization/data_retention",
    body: { retention_type: "zero_data_retention" },
    scope: org,
    namesA: false,
    phase: 1,
    schema: schema("OrganizationDataRetention"),
  },
  {
    method: "GET",
    pattern: `${P}/data_retention`,
    path: `${p}/data_retention`,
    scope: org,
    namesA: true,
    phase: 0,
    schema: schema("ProjectDataRetention"),
  },
  {
    method: "POST",
    pattern: `${P}/data_retention`,
    path: `${p}/data_retention`,
    body: { retention_type: "zero_data_retention" },
    scope: org,
    namesA: true,
    phase: 1,
  },
  // limits
  {
    method: "GET",
    pattern: `${P}/rate_limits`,
    path: `${p}/rate_limits`,
    scope: org,
    namesA: true,
    phase: 0,
    schema: schema("ProjectRateLimitListResponse"),
    shows: "4321",
  },
  {
    method: "POST",
    pattern: `${P}/rate_limits/:rate_limit_id`,
    path: `${p}/rate_limits/rl-tiny-chat`,
    body: { max_requests_per_1_minute: 1 },
    scope: org,
    namesA: true,
    phase: 1,
  },
  {
    method: "GET",
    pattern: `${P}/model_permissions`,
    path: `${p}/model_permissions`,
    scope: org,
    namesA: true,
    phase: 0,
    schema: schema("ProjectModelPermissions"),
    shows: "tiny-embed",
  },
  {
    method: "POST",
    pattern: `${P}/model_permissions`,
    path: `${p}/model_permissions`,
    body: { mode: "allow_list", model_ids: [] },
    scope: org,
    namesA: true,
    phase: 1,
  },
  {
    method: "DELETE",
    pattern: `${P}/model_permissions`,
    path: `${p}/model_permissions`,
    scope: org,
    namesA: true,
    phase: 2,
  },
  {
    method: "GET",
    pattern: `${P}/spend_limit`,
    path: `${p}/spend_limit`,
    scope: org,
    namesA: true,
    phase: 0,
    schema: schema("ProjectSpendLimitResource"),
    shows: "123400",
  },
  {
    method: "POST",
    pattern: `${P}/spend_limit`,
    path: `${p}/spend_limit`,
    body: { threshold_amount: 1, currency: "EUR", interval: "month" },
    scope: org,
    namesA: true,
    phase: 1,
  },
  {
    method: "DELETE",
    pattern: `${P}/spend_limit`,
    path: `${p}/spend_limit`,
    scope: org,
    namesA: true,
    phase: 2,
  },
  {
    method: "GET",
    pattern: `${P}/guardrail`,
    path: `${p}/guardrail`,
    scope: org,
    namesA: true,
    phase: 0,
    schema: { extension: "ProjectGuardrail" },
    shows: "0.77",
  },
  {
    method: "POST",
    pattern: `${P}/guardrail`,
    path: `${p}/guardrail`,
    body: { mode: "off" },
    scope: org,
    namesA: true,
    phase: 1,
  },
  {
    method: "GET",
    pattern: "/v1/organization/spend_limit",
    path: "/organization/spend_limit",
    scope: org,
    namesA: false,
    phase: 0,
    schema: schema("OrganizationSpendLimitResource"),
    shows: "123400",
  },
  {
    method: "POST",
    pattern: "/v1/organization/spend_limit",
    path: "/organization/spend_limit",
    body: { threshold_amount: 2_000, currency: "EUR", interval: "month" },
    scope: org,
    namesA: false,
    phase: 1,
    schema: schema("OrganizationSpendLimitResource"),
  },
  {
    method: "DELETE",
    pattern: "/v1/organization/spend_limit",
    path: "/organization/spend_limit",
    scope: org,
    namesA: false,
    phase: 2,
    schema: schema("OrganizationSpendLimitDeletedResource"),
  },
  // export
  {
    method: "GET",
    pattern: "/v1/organization/export",
    path: "/organization/export",
    scope: org,
    namesA: false,
    phase: 0,
    schema: { extension: "OrganizationExport" },
    shows: a.projectId,
  },
  // the operator's routes
  {
    method: "POST",
    pattern: "/v1/operator/organizations",
    path: "/operator/organizations",
    body: { name: "Made by an intruder" },
    scope: op,
    namesA: false,
    phase: 1,
  },
  {
    method: "GET",
    pattern: "/v1/operator/organizations",
    path: "/operator/organizations",
    scope: op,
    namesA: false,
    phase: 0,
  },
  { method: "GET", pattern: ORG, path: o, scope: op, namesA: true, phase: 0 },
  {
    method: "POST",
    pattern: `${ORG}/admin_api_keys`,
    path: `${o}/admin_api_keys`,
    body: { name: "Intruder's admin key" },
    scope: op,
    namesA: true,
    phase: 1,
  },
  { method: "POST", pattern: `${ORG}/suspend`, path: `${o}/suspend`, scope: op, namesA: true, phase: 3 },
  { method: "POST", pattern: `${ORG}/resume`, path: `${o}/resume`, scope: op, namesA: true, phase: 3 },
  {
    method: "POST",
    pattern: `${ORG}/oidc`,
    path: `${o}/oidc`,
    body: {
      issuer: "https://idp.intruder.example",
      audience: "intruder",
      jwks_uri: "https://idp.intruder.example/jwks",
      role_claim: "groups",
      owner_values: ["intruders"],
      reader_values: [],
    },
    scope: op,
    namesA: true,
    phase: 3,
  },
  { method: "DELETE", pattern: `${ORG}/oidc`, path: `${o}/oidc`, scope: op, namesA: true, phase: 3 },
  { method: "DELETE", pattern: ORG, path: o, scope: op, namesA: true, phase: 3 },
];

// ---- the credentials, and what each must get
type CredentialName =
  | "B's admin key"
  | "A's reader JWT"
  | "A's project API key"
  | "no credential"
  | "the operator token"
  | "A's admin key";

const credentials: Record<CredentialName, string | null> = {
  "B's admin key": b.adminKey,
  "A's reader JWT": readerToken,
  "A's project API key": a.apiKey,
  "no credential": null,
  "the operator token": stack.operatorToken,
  "A's admin key": a.adminKey,
};

/** The credentials tried on a route: the four of the table, and the other admin credential as an extra column. */
function credentialsFor(route: Route): CredentialName[] {
  const common: CredentialName[] = [
    "B's admin key",
    "A's reader JWT",
    "A's project API key",
    "no credential",
  ];
  return [...common, route.scope === "organization" ? "the operator token" : "A's admin key"];
}

function expectedStatus(route: Route, credential: CredentialName): 200 | 401 | 403 | 404 {
  switch (credential) {
    case "no credential":
      return 401;
    case "A's project API key":
    case "the operator token":
    case "A's admin key":
      return 403;
    case "A's reader JWT":
      return route.scope === "operator" || route.method !== "GET" ? 403 : 200;
    case "B's admin key":
      return route.scope === "operator" ? 403 : route.namesA ? 404 : 200;
  }
}

const ERROR_CODE: Record<401 | 403 | 404, (string | null)[]> = {
  401: [null, "invalid_api_key"],
  403: ["permission_denied"],
  404: ["not_found"],
};

async function checkRow(t: Test, route: Route, credentialName: CredentialName): Promise<void> {
  const credential = credentials[credentialName];
  const expected = expectedStatus(route, credentialName);
  const answer = await rawRequest(stack, route.path, {
    method: route.method,
    apiKey: credential,
    ...(route.body === undefined ? {} : { body: JSON.stringify(route.body) }),
  });
  t.equal(answer.status, expected, `status ${expected}`);
  if (credential !== null)
    t.notOk(answer.text.includes(credential), "the answer never quotes the credential");

  if (answer.status >= 400) {
    t.same(openapiErrors("ErrorResponse", answer.json), [], "an error in OpenAI's shape");
    const code = (answer.json as { error?: { code?: string | null } } | undefined)?.error?.code ?? null;
    if (expected !== 200) t.ok(ERROR_CODE[expected].includes(code), `error code ${code} for a ${expected}`);
    return;
  }
  if (route.schema) {
    const errors =
      "openai" in route.schema
        ? openapiErrors(route.schema.openai, answer.json)
        : extensionErrors(route.schema.extension, answer.json);
    t.same(errors, [], "the answer has its documented shape");
  }
  if (credentialName === "A's reader JWT" && route.shows !== undefined) {
    t.ok(answer.text.includes(route.shows), "the reader sees A's object");
  }
  if (credentialName === "B's admin key") {
    const leaked = aIds.filter((aId) => answer.text.includes(aId));
    t.same(leaked, [], "nothing of A's in B's answer");
    if (route.createdAt) {
      const createdPath = route.createdAt(id(answer.json as Record<string, unknown>));
      const asB = await rawRequest(stack, createdPath, { apiKey: b.adminKey });
      t.equal(asB.status, 200, "what B made is B's");
      const fromA = await rawRequest(stack, createdPath, { apiKey: a.adminKey });
      t.equal(fromA.status, 404, "and A does not see it");
    }
  }
}

const rows = routes
  .map((route, index) => ({ route, index }))
  .sort((x, y) => x.route.phase - y.route.phase || x.index - y.index)
  .flatMap(({ route }) => credentialsFor(route).map((credential) => ({ route, credential })));

void t.test("the table has a row for every administration route the gateway registers", async (t) => {
  // A guard against drift: a route added to the gateway's admin files without a row here fails this count.
  const dir = join(REPO_ROOT, "services/gateway/src/admin");
  const registered: Record<string, number> = {};
  for (const file of (await readdir(dir)).filter((name) => name.endsWith(".ts"))) {
    const source = await readFile(join(dir, file), "utf8");
    for (const match of source.matchAll(/\bapp\.(get|post|delete|put|patch|head|all|route)\b/g)) {
      const method = (match[1] ?? "").toUpperCase();
      registered[method] = (registered[method] ?? 0) + 1;
    }
  }
  const tabled: Record<string, number> = {};
  for (const route of routes) tabled[route.method] = (tabled[route.method] ?? 0) + 1;
  t.same(tabled, registered, "as many rows per method as routes registered");
  t.equal(
    new Set(routes.map((route) => `${route.method} ${route.pattern}`)).size,
    routes.length,
    "no row twice",
  );
});

void t.test("every route × credential", async (t) => {
  t.equal(rows.length, routes.length * 5, "five credentials per route");
  for (const { route, credential } of rows) {
    await t.test(`${route.method} ${route.pattern} × ${credential}`, (t) => checkRow(t, route, credential));
  }
});

void t.test("A is intact, and its key still serves chat", async (t) => {
  const organization = await apiCall(stack.baseURL, stack.operatorToken, "GET", o);
  t.match(organization, { status: "active", oidc: { issuer: idp.issuer } }, "A is active, its SSO unchanged");
  t.match(await asA("GET", `/organization/projects/${a.projectId}`), {
    name: "Test project",
    status: "active",
  });
  t.match(await asA("GET", `/organization/projects/${victimProjectId}`), { status: "active" });
  for (const accountId of [a.serviceAccountId, targetAccountId, victimAccountId]) {
    t.equal(id(await asA("GET", `${sa}/${accountId}`)), accountId, `service account ${accountId} is there`);
  }
  t.match(await asA("GET", `${sa}/${targetAccountId}`), { name: "Target", role: "member" });
  for (const keyId of [a.keyId, targetKeyId, victimKeyId, rotatedKeyId]) {
    const key = await asA("GET", `${p}/api_keys/${keyId}`);
    t.equal(id(key), keyId, `API key ${keyId} is there`);
    t.equal(key.allowed_models, null, "with its settings unchanged");
  }
  for (const keyId of [a.adminKeyId, victimAdminKeyId]) {
    t.equal(
      id(await asA("GET", `/organization/admin_api_keys/${keyId}`)),
      keyId,
      `admin key ${keyId} is there`,
    );
  }
  t.match(
    await asA("GET", `${p}/model_permissions`),
    { mode: "deny_list", model_ids: ["tiny-embed"] },
    "A's model permissions are unchanged",
  );
  t.match(await asA("GET", `${p}/spend_limit`), A_SPEND_LIMIT, "so is its project's spend limit");
  t.match(await asA("GET", "/organization/spend_limit"), A_SPEND_LIMIT, "and its organization's");
  const rateLimits = (await asA("GET", `${p}/rate_limits`)) as {
    data: { max_requests_per_1_minute: number }[];
  };
  t.equal(rateLimits.data[0]?.max_requests_per_1_minute, 4_321, "and its rate limits");
  const accounts = (await asA("GET", sa)) as { data: { name: string }[] };
  t.notOk(
    accounts.data.some((account) => account.name === "Intruder"),
    "no service account was made in A",
  );
  const projects = (await asA("GET", "/organization/projects")) as { data: { name: string }[] };
  t.notOk(
    projects.data.some((project) => project.name.includes("intruder")),
    "no project was made or renamed in A",
  );
  const reader = await rawRequest(stack, "/organization/projects", { apiKey: readerToken });
  t.equal(reader.status, 200, "A's reader still signs in");

  const chat = await openaiClient(stack).chat.completions.create({
    model: "tiny-chat",
    messages: [{ role: "user", content: "hi" }],
    max_tokens: 2,
  });
  t.equal(chat.object, "chat.completion", "A's key still serves a chat completion");
});
