// OpenAI's Administration API, driven by OpenAI's own SDK (`client.admin.organization.*`) as tools written for
// OpenAI's admin API drive it: every answer validates against the schema OpenAI's description names for it, every
// extension against the platform's own description, and every change leaves exactly one audit event.
import t, { type Test } from "tap";
import { startStack } from "../support/stack.js";
import { adminClient, openaiClient, pageBody, rawRequest } from "../support/client.js";
import { extensionErrors, openapiErrors, type OpenAISchemaName } from "../support/openapi.js";

// Gateways report the keys they served every 200 ms here (a minute by default), so last_used_at can be watched.
const stack = await startStack({ gatewayEnv: { KEY_USAGE_REPORT_MS: "200" } });
t.teardown(() => stack.stop());
const admin = adminClient(stack).admin.organization;

function valid(t: Test, name: OpenAISchemaName, value: unknown): void {
  t.same(openapiErrors(name, value), [], `answer validates against OpenAI's ${name}`);
}

/** The audit events recorded after `since` (exclusive), oldest first. */
async function auditTypesAfter(since: string | null): Promise<string[]> {
  const types: string[] = [];
  for await (const event of admin.auditLogs.list({ limit: 100 })) {
    if (event.id === since) break;
    types.unshift(event.type);
  }
  return types;
}

async function lastAuditId(): Promise<string | null> {
  const page = await admin.auditLogs.list({ limit: 1 });
  return page.data[0]?.id ?? null;
}

void t.test("projects: create, list with cursor and archived, retrieve, modify, archive", async (t) => {
  const before = await lastAuditId();
  const created = await admin.projects.create({ name: "Billing app" });
  valid(t, "Project", created);
  t.match(created, {
    object: "organization.project",
    name: "Billing app",
    status: "active",
    archived_at: null,
  });
  t.match(created.id, /^proj_/);

  const modified = await admin.projects.update(created.id, { name: "Billing app (prod)" });
  valid(t, "Project", modified);
  t.equal(modified.name, "Billing app (prod)");
  valid(t, "Project", await admin.projects.retrieve(created.id));

  const second = await admin.projects.create({ name: "Second" });
  const firstPage = await admin.projects.list({ limit: 1 });
  valid(t, "ProjectListResponse", pageBody(firstPage));
  t.equal(firstPage.data.length, 1);
  t.equal(firstPage.has_more, true, "more pages");
  const all = [];
  for await (const project of admin.projects.list({ limit: 1 })) all.push(project.id);
  t.same(
    all,
    [stack.projectId, created.id, second.id],
    "the SDK's auto-pagination follows `after`, oldest first",
  );

  const archived = await admin.projects.archive(second.id);
  valid(t, "Project", archived);
  t.match(archived, { status: "archived" });
  t.type(archived.archived_at, "number");
  const active = (await admin.projects.list()).data.map((project) => project.id);
  t.notOk(active.includes(second.id), "archived projects are not listed by default");
  const withArchived = (await admin.projects.list({ include_archived: true })).data.map(
    (project) => project.id,
  );
  t.ok(withArchived.includes(second.id), "include_archived lists them");
  const refused = await rawRequest(stack, `/organization/projects/${second.id}`, {
    apiKey: stack.adminKey,
    body: JSON.stringify({ name: "renamed" }),
  });
  t.equal(refused.status, 400, "an archived project cannot be changed");
  t.same(openapiErrors("ErrorResponse", refused.json), []);

  t.same(
    await auditTypesAfter(before),
    ["project.created", "project.updated", "project.created", "project.archived"],
    "one audit event per change",
  );
});

void t.test("service accounts and their keys", async (t) => {
  const before = await lastAuditId();
  const created = await admin.projects.serviceAccounts.create(stack.projectId, { name: "Ingest worker" });
  valid(t, "ProjectServiceAccountCreateResponse", created);
  t.match(created, { object: "organization.project.service_account", role: "member" });
  t.match(created.api_key?.value, /^sk-lm-proj-/, "our own prefix, never OpenAI's");

  const chat = await openaiClient(stack, created.api_key?.value).chat.completions.create({
    model: "tiny-chat",
    messages: [{ role: "user", content: "hello" }],
    max_tokens: 2,
  });
  t.equal(chat.object, "chat.completion", "the service account's first key serves chat");
  const usage = await stack.waitForUsage(chat.id);
  t.match(usage, {
    organization_id: stack.organizationId,
    project_id: stack.projectId,
    key_id: created.api_key?.id,
  });

  const retrieved = await admin.projects.serviceAccounts.retrieve(created.id, {
    project_id: stack.projectId,
  });
  valid(t, "ProjectServiceAccount", retrieved);
  const list = await admin.projects.serviceAccounts.list(stack.projectId);
  valid(t, "ProjectServiceAccountListResponse", pageBody(list));
  t.ok(list.data.some((account) => account.id === created.id));

  const updated = await admin.projects.serviceAccounts.update(created.id, {
    project_id: stack.projectId,
    name: "Ingest worker v2",
    role: "owner",
  });
  valid(t, "ProjectServiceAccount", updated);
  t.match(updated, { name: "Ingest worker v2", role: "owner" });

  const second = await admin.projects.serviceAccounts.apiKeys.create(created.id, {
    project_id: stack.projectId,
    name: "second key",
  });
  valid(t, "ServiceAccountApiKeyBody", second);
  t.match(second, { object: "organization.project.service_account.api_key", name: "second key" });

  const keys = await admin.projects.apiKeys.list(stack.projectId);
  valid(t, "ProjectApiKeyListResponse", pageBody(keys));
  const listed = keys.data.find((key) => key.id === second.id);
  t.match(listed, { owner: { type: "service_account", service_account: { id: created.id } } });
  t.notOk(JSON.stringify(keys).includes(second.value), "lists show redacted values only");
  t.match(listed?.redacted_value, /^sk-lm-proj-.{4}\.\.\..{4}$/);

  const deleted = await admin.projects.serviceAccounts.delete(created.id, { project_id: stack.projectId });
  valid(t, "ProjectServiceAccountDeleteResponse", deleted);
  for (const secret of [created.api_key?.value ?? "", second.value]) {
    const refused = await rawRequest(stack, "/models", { apiKey: secret });
    t.equal(refused.status, 401, "a deleted service account's keys are refused");
  }
  t.same(
    await auditTypesAfter(before),
    [
      "service_account.created",
      "api_key.created",
      "service_account.updated",
      "api_key.created",
      "service_account.deleted",
    ],
    "one audit event per change",
  );
});

void t.test("project API keys: settings (extension), retrieve, delete", async (t) => {
  const account = await admin.projects.serviceAccounts.create(stack.projectId, { name: "Settings" });
  const keyId = account.api_key?.id ?? "";
  const secret = account.api_key?.value ?? "";
  const retrieved = await admin.projects.apiKeys.retrieve(keyId, { project_id: stack.projectId });
  valid(t, "ProjectApiKey", retrieved);
  t.same(extensionErrors("ProjectApiKeyWithSettings", retrieved), []);

  const restricted = await rawRequest(stack, `/organization/projects/${stack.projectId}/api_keys/${keyId}`, {
    apiKey: stack.adminKey,
    body: JSON.stringify({ allowed_models: ["chat-default"] }),
  });
  t.equal(restricted.status, 200);
  t.same(extensionErrors("ProjectApiKeyWithSettings", restricted.json), []);
  t.same((restricted.json as { allowed_models: string[] }).allowed_models, ["chat-default"]);
  const client = openaiClient(stack, secret);
  const allowed = await client.chat.completions.create({
    model: "tiny-chat",
    messages: [{ role: "user", content: "hi" }],
    max_tokens: 1,
  });
  t.equal(allowed.model, "tiny-chat", "an alias in allowed_models allows the model it names");
  const refusedModel = await rawRequest(stack, "/embeddings", {
    apiKey: secret,
    body: JSON.stringify({ model: "tiny-embed", input: "x" }),
  });
  t.equal(refusedModel.status, 403, "a model outside allowed_models is refused");
  t.match((refusedModel.json as { error: { message: string } }).error.message, /tiny-embed.*allowed_models/);

  const unknownModel = await rawRequest(
    stack,
    `/organization/projects/${stack.projectId}/api_keys/${keyId}`,
    {
      apiKey: stack.adminKey,
      body: JSON.stringify({ allowed_models: ["tiny-chat", "no-such-model"] }),
    },
  );
  t.equal(unknownModel.status, 400);
  t.equal((unknownModel.json as { error: { param: string } }).error.param, "allowed_models[1]");
  const scopes = await rawRequest(stack, `/organization/projects/${stack.projectId}/api_keys/${keyId}`, {
    apiKey: stack.adminKey,
    body: JSON.stringify({ scopes: ["api.all.read"] }),
  });
  t.equal(scopes.status, 400, "OpenAI's scopes cannot be honoured, so they are refused");

  const expiring = await admin.projects.apiKeys.update(keyId, {
    project_id: stack.projectId,
    expires_in_seconds: 1,
  });
  valid(t, "ProjectApiKey", expiring);
  t.type((expiring as unknown as { expires_at: number }).expires_at, "number");
  await new Promise((resolve) => setTimeout(resolve, 2100));
  const expired = await rawRequest(stack, "/models", { apiKey: secret });
  t.equal(expired.status, 401, "an expired key is refused");
  t.match((expired.json as { error: { message: string } }).error.message, /expired/);

  const deleted = await admin.projects.apiKeys.delete(keyId, { project_id: stack.projectId });
  valid(t, "ProjectApiKeyDeleteResponse", deleted);
  const gone = await rawRequest(stack, `/organization/projects/${stack.projectId}/api_keys/${keyId}`, {
    apiKey: stack.adminKey,
  });
  t.equal(gone.status, 404);
});

void t.test(
  "last_used_at follows use, reported by the gateways rather than written per request",
  async (t) => {
    const account = await admin.projects.serviceAccounts.create(stack.projectId, { name: "Last used" });
    const keyId = account.api_key?.id ?? "";
    const before = await admin.projects.apiKeys.retrieve(keyId, { project_id: stack.projectId });
    t.equal(before.last_used_at, null, "never used yet");
    const usedAt = Math.floor(Date.now() / 1000);
    for (let request = 0; request < 5; request++) {
      t.equal((await rawRequest(stack, "/models", { apiKey: account.api_key?.value ?? "" })).status, 200);
    }
    const deadline = Date.now() + 10_000;
    let after = before;
    while (after.last_used_at === null && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = await admin.projects.apiKeys.retrieve(keyId, { project_id: stack.projectId });
    }
    t.ok(after.last_used_at !== null && after.last_used_at >= usedAt, "set from the gateway's report");
    const adminKey = await admin.adminAPIKeys.retrieve(stack.adminKeyId);
    t.type(adminKey.last_used_at, "number", "admin keys too, when they authenticate");
  },
);

void t.test("admin API keys", async (t) => {
  const created = await admin.adminAPIKeys.create({ name: "automation", expires_in_seconds: 3600 });
  valid(t, "AdminApiKeyCreateResponse", created);
  t.match(created.value, /^sk-lm-admin-/);
  t.type(created.expires_at, "number");
  const own = adminClient(stack, created.value).admin.organization;
  valid(t, "AdminApiKey", await own.adminAPIKeys.retrieve(created.id));
  const list = await own.adminAPIKeys.list({ order: "desc" });
  valid(t, "ApiKeyList", pageBody(list));
  t.equal(list.data[0]?.id, created.id, "newest first with order=desc");
  t.ok(list.data.some((key) => key.id === stack.adminKeyId));
  t.match(
    list.data.find((key) => key.id === created.id)?.owner,
    { type: "organization", id: stack.organizationId },
    "a key made with an operator-issued key belongs to the organization too",
  );
  const deleted = await admin.adminAPIKeys.delete(created.id);
  t.match(deleted, { object: "organization.admin_api_key.deleted", id: created.id, deleted: true });
  const refused = await rawRequest(stack, "/organization/projects", { apiKey: created.value });
  t.equal(refused.status, 401, "a deleted admin key is refused");
});

void t.test("audit log: OpenAI's shape, filters and both cursors", async (t) => {
  const page = await admin.auditLogs.list({ limit: 100 });
  valid(t, "ListAuditLogsResponse", pageBody(page));
  t.ok(page.data.length > 5);
  for (const event of page.data) valid(t, "AuditLog", event);
  const created = page.data.find((event) => event.type === "project.created");
  t.match(created, {
    actor: {
      type: "api_key",
      api_key: { id: stack.adminKeyId, type: "service_account", ip_address: String },
    },
    project: { id: /^proj_/, name: String },
    "project.created": { id: created?.project?.id, data: { name: String } },
  });

  const onlyArchives = await admin.auditLogs.list({ event_types: ["project.archived"] });
  t.ok(onlyArchives.data.length > 0 && onlyArchives.data.every((event) => event.type === "project.archived"));
  const byProject = await admin.auditLogs.list({ project_ids: [stack.projectId] });
  t.ok(byProject.data.every((event) => event.project?.id === stack.projectId));
  const byActor = await admin.auditLogs.list({ actor_ids: ["operator"] });
  t.ok(byActor.data.length > 0, "the operator's changes are found by its actor id");
  const future = await admin.auditLogs.list({ effective_at: { gt: Math.floor(Date.now() / 1000) + 60 } });
  t.same(future.data, []);

  const [newest, second, third] = page.data;
  const after = await admin.auditLogs.list({ limit: 1, after: newest?.id ?? "" });
  t.equal(after.data[0]?.id, second?.id, "after pages to older events");
  const before = await admin.auditLogs.list({ limit: 1, before: third?.id ?? "" });
  t.equal(before.data[0]?.id, second?.id, "before pages to newer events");

  const change = await rawRequest(stack, `/organization/audit_logs/${newest?.id ?? ""}`, {
    apiKey: stack.adminKey,
    method: "DELETE",
  });
  t.equal(change.status, 404, "no route deletes or changes an audit event");
  await t.rejects(
    stack.db.deleteFrom("audit_logs").execute(),
    /append-only/,
    "the database refuses it too, whoever asks",
  );
});

void t.test("data retention: zero, and nothing else", async (t) => {
  const organization = await admin.dataRetention.retrieve();
  valid(t, "OrganizationDataRetention", organization);
  t.equal(organization.type, "zero_data_retention");
  const project = await admin.projects.dataRetention.retrieve(stack.projectId);
  valid(t, "ProjectDataRetention", project);
  const kept = await admin.dataRetention.update({ retention_type: "zero_data_retention" });
  t.equal(kept.type, "zero_data_retention");
  const refused = await rawRequest(stack, "/organization/data_retention", {
    apiKey: stack.adminKey,
    body: JSON.stringify({ retention_type: "modified_abuse_monitoring" }),
  });
  t.equal(refused.status, 400);
  t.match((refused.json as { error: { message: string } }).error.message, /keeps no prompts/);
});

void t.test("export (extension): everything configured, no secrets", async (t) => {
  const exported = await rawRequest(stack, "/organization/export", { apiKey: stack.adminKey });
  t.equal(exported.status, 200);
  t.match(exported.headers.get("content-disposition"), /attachment/);
  t.same(extensionErrors("OrganizationExport", exported.json), []);
  const document = exported.json as { projects: { id: string }[]; audit_logs: unknown[] };
  t.ok(document.projects.some((project) => project.id === stack.projectId));
  t.ok(document.audit_logs.length > 5);
  t.notOk(exported.text.includes(stack.apiKey) || exported.text.includes(stack.adminKey), "no secret in it");
});

void t.test("bad input: a 400 naming the parameter, and nothing changed", async (t) => {
  const before = await lastAuditId();
  const projects = `/organization/projects`;
  const key = `/organization/projects/${stack.projectId}/api_keys/${stack.keyId}`;
  const cases: [string, string, unknown, string | null, string][] = [
    ["POST", projects, { name: "" }, "name", "an empty name"],
    [
      "POST",
      projects,
      { name: "x", residency: "EU_STORAGE_PROCESSING" },
      "residency",
      "an option not offered",
    ],
    ["POST", projects, ["not", "an", "object"], null, "a body that is not an object"],
    ["GET", `${projects}?limit=1000`, undefined, "limit", "a page larger than 100"],
    ["GET", `${projects}?include_archived=maybe`, undefined, "include_archived", "a boolean that is not one"],
    [
      "POST",
      `${key}/rotate`,
      { grace_period_seconds: -1 },
      "grace_period_seconds",
      "a negative grace period",
    ],
    ["POST", key, {}, null, "an update that changes nothing"],
    ["POST", key, { expires_at: 1 }, "expires_at", "an expiry in the past"],
    [
      "POST",
      key,
      { expires_at: 2_000_000_000, expires_in_seconds: 60 },
      "expires_in_seconds",
      "two expiries",
    ],
    [
      "POST",
      "/organization/admin_api_keys",
      { name: "k", expires_in_seconds: 0 },
      "expires_in_seconds",
      "no lifetime",
    ],
    [
      "GET",
      "/organization/audit_logs?effective_at[gt]=yesterday",
      undefined,
      "effective_at[gt]",
      "a non-integer time",
    ],
  ];
  for (const [method, path, body, param, what] of cases) {
    const answer = await rawRequest(stack, path, {
      method,
      apiKey: stack.adminKey,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    t.equal(answer.status, 400, `${what}: 400`);
    t.equal(
      (answer.json as { error: { param: string | null } }).error.param,
      param,
      `${what}: names ${param}`,
    );
  }
  const oidc = await rawRequest(stack, `/operator/organizations/${stack.organizationId}/oidc`, {
    apiKey: stack.operatorToken,
    body: JSON.stringify({
      issuer: "https://idp.example",
      audience: "llmaas",
      jwks_uri: "http://idp.example/jwks",
      role_claim: "groups",
      owner_values: ["admins"],
      reader_values: [],
    }),
  });
  t.equal(oidc.status, 400, "keys fetched over plain http from another host are refused");
  t.equal((oidc.json as { error: { param: string } }).error.param, "jwks_uri");
  t.equal(await lastAuditId(), before, "no refused request changed anything");
});
