// The administration of limits, driven through OpenAI's own SDK where it has the routes: a project's rate limits per
// model, its model permissions, the hard spend limits of the organization and of a project, and a key's own rate
// limits and token budget (extension). Every answer validates against OpenAI's schema (a spend limit's currency is
// the platform's, which OpenAI's answer schema allows), every change is one audit event and one revocation broadcast,
// the key's principal carries what was set, and model permissions refuse and allow on the very next request.
import t, { type Test } from "tap";
import type OpenAI from "openai";
import {
  authAuthenticate,
  credentialsRevoked,
  type ApiKeyPrincipal,
  type CredentialsRevoked,
} from "@llmaas/contracts";
import { connectTestBus } from "../support/bus.js";
import { adminClient, pageBody, rawRequest } from "../support/client.js";
import { extensionErrors, openapiErrors, type OpenAISchemaName } from "../support/openapi.js";
import { startStack } from "../support/stack.js";
import { createTenant } from "../support/tenant.js";

// Defaults a test can tell from the built-in ones; the per-day and audio limits stay unset (none).
const DEFAULT_RPM = 600;
const DEFAULT_TPM = 200_000;
const stack = await startStack({
  authEnv: {
    DEFAULT_MAX_REQUESTS_PER_1_MINUTE: String(DEFAULT_RPM),
    DEFAULT_MAX_TOKENS_PER_1_MINUTE: String(DEFAULT_TPM),
  },
});
t.teardown(() => stack.stop());
const admin = adminClient(stack).admin.organization;
const project = stack.projectId;

// A second connection in the stack's namespace: it asks auth for principals as a gateway does, and hears the
// revocations auth broadcasts. Drained only: the stack owns the namespace's streams.
const { bus } = await connectTestBus(stack.namespace);
t.teardown(() => bus.drain());
const revocations: CredentialsRevoked[] = [];
bus.subscribe(credentialsRevoked, credentialsRevoked.subject, (revocation) => {
  revocations.push(revocation);
});

async function principalOf(apiKey: string): Promise<ApiKeyPrincipal> {
  const principal = await bus.request(
    authAuthenticate,
    authAuthenticate.subject,
    { credential: apiKey, organizationHint: null, client: { ip: "127.0.0.1", userAgent: "limits-test" } },
    { timeoutMs: 5_000 },
  );
  if (principal.kind !== "api_key") throw new Error(`not an API key's principal: ${principal.kind}`);
  return principal;
}

/** What `change` broadcast: auth flushes before it answers, so the message is here within a moment. */
async function revokedBy(change: () => Promise<unknown>): Promise<CredentialsRevoked[]> {
  const from = revocations.length;
  await change();
  await new Promise((resolve) => setTimeout(resolve, 200));
  return revocations.slice(from);
}

function valid(t: Test, name: OpenAISchemaName, value: unknown): void {
  t.same(openapiErrors(name, value), [], `answer validates against OpenAI's ${name}`);
}

interface ErrorJson {
  error: { message: string; type: string; code: string | null; param: string | null };
}

/** A raw admin call (its answer checked against its route's schema by `rawRequest`). */
async function asAdmin(method: string, path: string, body?: unknown, adminKey = stack.adminKey) {
  const answer = await rawRequest(stack, path, {
    method,
    apiKey: adminKey,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { ...answer, error: (answer.json as Partial<ErrorJson>).error };
}

async function lastAuditId(): Promise<string | null> {
  return (await admin.auditLogs.list({ limit: 1 })).data[0]?.id ?? null;
}

/** The audit events recorded after `since`, oldest first. */
async function auditAfter(since: string | null): Promise<OpenAI.Admin.Organization.AuditLogListResponse[]> {
  const events = [];
  for await (const event of admin.auditLogs.list({ limit: 100 })) {
    if (event.id === since) break;
    events.unshift(event);
  }
  return events;
}

/** An inference call with `apiKey`: its status, and the refusal's message when there is one. */
async function infer(apiKey: string, model: string): Promise<{ status: number; message?: string }> {
  const embedding = model === "tiny-embed";
  const answer = await rawRequest(stack, embedding ? "/embeddings" : "/chat/completions", {
    apiKey,
    body: JSON.stringify(
      embedding
        ? { model, input: "hello" }
        : { model, messages: [{ role: "user", content: "hi" }], max_tokens: 1 },
    ),
  });
  const error = (answer.json as Partial<ErrorJson>).error;
  return { status: answer.status, ...(error ? { message: error.message } : {}) };
}

const DEFAULT_LIMIT = { maxRequestsPer1Minute: DEFAULT_RPM, maxTokensPer1Minute: DEFAULT_TPM };

void t.test("rate limits: one per catalogue model, the defaults until set, paged both ways", async (t) => {
  const page = await admin.projects.rateLimits.listRateLimits(project);
  valid(t, "ProjectRateLimitListResponse", pageBody(page));
  for (const limit of page.data) valid(t, "ProjectRateLimit", limit);
  t.same(
    page.data,
    ["tiny-chat", "tiny-embed"].map((model) => ({
      object: "project.rate_limit",
      id: `rl-${model}`,
      model,
      max_requests_per_1_minute: DEFAULT_RPM,
      max_tokens_per_1_minute: DEFAULT_TPM,
    })),
    "every model, by id, with the configured defaults; the unset per-day and audio limits are left out",
  );
  t.equal(page.has_more, false);

  const first = await admin.projects.rateLimits.listRateLimits(project, { limit: 1 });
  t.same([first.data.map((limit) => limit.id), first.has_more], [["rl-tiny-chat"], true]);
  const all = [];
  for await (const limit of admin.projects.rateLimits.listRateLimits(project, { limit: 1 }))
    all.push(limit.id);
  t.same(all, ["rl-tiny-chat", "rl-tiny-embed"], "the SDK's auto-pagination follows `after`");
  const before = await admin.projects.rateLimits.listRateLimits(project, { before: "rl-tiny-embed" });
  t.same(
    [before.data.map((limit) => limit.id), before.has_more],
    [["rl-tiny-chat"], false],
    "`before` pages back",
  );
  t.same(
    (await principalOf(stack.apiKey)).limits.projectModels,
    {
      "tiny-chat": { ...DEFAULT_LIMIT, maxRequestsPer1Day: null, maxAudioMegabytesPer1Minute: null },
      "tiny-embed": { ...DEFAULT_LIMIT, maxRequestsPer1Day: null, maxAudioMegabytesPer1Minute: null },
    },
    "the key's principal carries the project's limits for every model",
  );
});

void t.test(
  "rate limits: a change applies to the principal; null gives a field back to its default",
  async (t) => {
    const since = await lastAuditId();
    let updated: OpenAI.Admin.Organization.Projects.ProjectRateLimit | undefined;
    const revoked = await revokedBy(async () => {
      updated = await admin.projects.rateLimits.updateRateLimit("rl-tiny-chat", {
        project_id: project,
        max_requests_per_1_minute: 100,
        max_requests_per_1_day: 5_000,
      });
    });
    valid(t, "ProjectRateLimit", updated);
    t.same(updated, {
      object: "project.rate_limit",
      id: "rl-tiny-chat",
      model: "tiny-chat",
      max_requests_per_1_minute: 100,
      max_tokens_per_1_minute: DEFAULT_TPM,
      max_requests_per_1_day: 5_000,
    });
    t.same(
      revoked,
      [{ scope: "project", id: project }],
      "gateways are told to drop the project's principals",
    );
    t.same(
      (await principalOf(stack.apiKey)).limits.projectModels["tiny-chat"],
      {
        maxRequestsPer1Minute: 100,
        maxTokensPer1Minute: DEFAULT_TPM,
        maxRequestsPer1Day: 5_000,
        maxAudioMegabytesPer1Minute: null,
      },
      "the principal carries the project's setting",
    );

    const restored = await asAdmin("POST", `/organization/projects/${project}/rate_limits/rl-tiny-chat`, {
      max_requests_per_1_day: null,
      max_audio_megabytes_per_1_minute: 8,
    });
    t.equal(restored.status, 200, "null is accepted (extension, docs/openapi.yaml)");
    valid(t, "ProjectRateLimit", restored.json);
    t.same(restored.json, {
      object: "project.rate_limit",
      id: "rl-tiny-chat",
      model: "tiny-chat",
      max_requests_per_1_minute: 100,
      max_tokens_per_1_minute: DEFAULT_TPM,
      max_audio_megabytes_per_1_minute: 8,
    });
    const listed = await admin.projects.rateLimits.listRateLimits(project);
    t.match(
      listed.data[1],
      { id: "rl-tiny-embed", max_requests_per_1_minute: DEFAULT_RPM },
      "other models keep theirs",
    );

    const events = await auditAfter(since);
    t.same(
      events.map((event) => event.type),
      ["rate_limit.updated", "rate_limit.updated"],
    );
    t.match(
      events[1],
      {
        "rate_limit.updated": {
          changes_requested: { max_audio_megabytes_per_1_minute: 8 },
          reset_to_default: ["max_requests_per_1_day"],
        },
      },
      "a field given back to its default is listed apart from OpenAI's integer changes",
    );
    for (const event of events) valid(t, "AuditLog", event);
    t.match(events[0], {
      project: { id: project },
      "rate_limit.updated": {
        id: "rl-tiny-chat",
        changes_requested: { max_requests_per_1_minute: 100, max_requests_per_1_day: 5_000 },
      },
    });
    const filtered = await admin.auditLogs.list({
      resource_ids: ["rl-tiny-chat"],
      event_types: ["rate_limit.updated"],
    });
    t.equal(filtered.data.length, 2, "found by the rate limit's id");
  },
);

void t.test("rate limits: bad input is a 400 naming the parameter, unknown ids a 404", async (t) => {
  const since = await lastAuditId();
  const path = `/organization/projects/${project}/rate_limits`;
  const cases: [string, unknown, string | null, string][] = [
    [`${path}/rl-tiny-chat`, {}, null, "a change of nothing"],
    [`${path}/rl-tiny-chat`, { max_requests_per_1_minute: 0 }, "max_requests_per_1_minute", "zero"],
    [`${path}/rl-tiny-chat`, { max_tokens_per_1_minute: 1.5 }, "max_tokens_per_1_minute", "a fraction"],
    [`${path}/rl-tiny-chat`, { max_requests_per_1_day: "10" }, "max_requests_per_1_day", "a string"],
    [`${path}/rl-tiny-chat`, { max_images_per_1_minute: 5 }, "max_images_per_1_minute", "OpenAI's images"],
    [`${path}/rl-tiny-chat`, { batch_1_day_max_input_tokens: 5 }, "batch_1_day_max_input_tokens", "batches"],
  ];
  for (const [target, body, param, what] of cases) {
    const answer = await asAdmin("POST", target, body);
    t.equal(answer.status, 400, `${what}: 400`);
    t.equal(answer.error?.param, param, `${what}: names ${param}`);
  }
  for (const [query, param] of [
    ["limit=0", "limit"],
    ["limit=101", "limit"],
    ["after=rl-tiny-chat&before=rl-tiny-embed", "before"],
  ] as const) {
    const answer = await asAdmin("GET", `${path}?${query}`);
    t.equal(answer.status, 400, `${query}: 400`);
    t.equal(answer.error?.param, param);
  }
  for (const id of ["rl-typo", "rl-chat-default", "tiny-chat", "rl-tiny-chat.."]) {
    const answer = await asAdmin("POST", `${path}/${id}`, { max_requests_per_1_minute: 5 });
    t.equal(answer.status, 404, `${id}: not a rate limit`);
    t.equal(answer.error?.code, "not_found");
  }
  const unknownProject = await asAdmin("GET", "/organization/projects/proj_nothere/rate_limits");
  t.equal(unknownProject.status, 404, "an unknown project");
  t.equal(await lastAuditId(), since, "nothing refused changed anything");
});

void t.test("model permissions: 404 until set, then allow and deny lists, by id or alias", async (t) => {
  const path = `/organization/projects/${project}/model_permissions`;
  const since = await lastAuditId();
  const unset = await asAdmin("GET", path);
  t.equal(unset.status, 404, "none set: there is nothing to show");
  t.match(unset.error?.message, /no model permissions/);
  t.equal((await asAdmin("DELETE", path)).status, 404, "nor to delete");

  // The key is cached by the gateway from here on; each change below must reach it on the very next request.
  t.equal((await infer(stack.apiKey, "tiny-chat")).status, 200);
  t.equal((await infer(stack.apiKey, "tiny-embed")).status, 200);

  let allowList: OpenAI.Admin.Organization.Projects.ProjectModelPermissions | undefined;
  const revoked = await revokedBy(async () => {
    allowList = await admin.projects.modelPermissions.update(project, {
      mode: "allow_list",
      model_ids: ["chat-default"],
    });
  });
  valid(t, "ProjectModelPermissions", allowList);
  t.same(allowList, { object: "project.model_permissions", mode: "allow_list", model_ids: ["chat-default"] });
  t.same(revoked, [{ scope: "project", id: project }]);
  valid(t, "ProjectModelPermissions", await admin.projects.modelPermissions.retrieve(project));
  t.same((await principalOf(stack.apiKey)).limits.projectModelPermissions, {
    mode: "allow_list",
    modelIds: ["chat-default"],
  });
  t.equal(
    (await infer(stack.apiKey, "tiny-chat")).status,
    200,
    "an alias on the allow list allows its model's id",
  );
  t.equal((await infer(stack.apiKey, "chat-default")).status, 200, "and the alias");
  const refused = await infer(stack.apiKey, "tiny-embed");
  t.equal(refused.status, 403, "a model off the allow list is refused at once");
  t.match(
    refused.message,
    /`tiny-embed`.*project's allow list.*`chat-default`/,
    "naming the model and the policy",
  );

  await admin.projects.modelPermissions.update(project, { mode: "deny_list", model_ids: ["chat-default"] });
  for (const model of ["tiny-chat", "chat-default"]) {
    const denied = await infer(stack.apiKey, model);
    t.equal(denied.status, 403, `${model}: an alias on the deny list denies its model, however named`);
    t.match(denied.message, /`tiny-chat`.*project's deny list/);
  }
  t.equal(
    (await infer(stack.apiKey, "tiny-embed")).status,
    200,
    "what the deny list does not name is allowed",
  );

  await admin.projects.modelPermissions.update(project, { mode: "deny_list", model_ids: ["tiny-chat"] });
  t.equal(
    (await infer(stack.apiKey, "chat-default")).status,
    403,
    "an id on the deny list denies its aliases",
  );

  const deleted = await admin.projects.modelPermissions.delete(project);
  valid(t, "ProjectModelPermissionsDeleteResponse", deleted);
  t.same(deleted, { object: "project.model_permissions.deleted", deleted: true });
  t.equal((await infer(stack.apiKey, "tiny-chat")).status, 200, "deleted: every model again");
  t.equal((await asAdmin("GET", path)).status, 404);

  const events = await auditAfter(since);
  t.same(
    events.map((event) => event.type),
    ["project.updated", "project.updated", "project.updated", "project.updated"],
    "each change one project.updated, OpenAI's closest event",
  );
  for (const event of events) valid(t, "AuditLog", event);
  t.match(events[0], {
    "project.updated": {
      id: project,
      changes_requested: { model_permissions: { mode: "allow_list", model_ids: ["chat-default"] } },
    },
  });
  t.match(events[3], { "project.updated": { changes_requested: { model_permissions: null } } });
});

void t.test("model permissions and a key's allowed_models both apply", async (t) => {
  const account = await admin.projects.serviceAccounts.create(project, { name: "Embedder" });
  const keyId = account.api_key?.id ?? "";
  const secret = account.api_key?.value ?? "";
  const keyPath = `/organization/projects/${project}/api_keys/${keyId}`;
  await asAdmin("POST", keyPath, { allowed_models: ["tiny-embed", "chat-default"] });
  t.equal((await infer(secret, "tiny-chat")).status, 200, "allowed by the key, no project policy");

  await admin.projects.modelPermissions.update(project, { mode: "allow_list", model_ids: ["tiny-chat"] });
  t.equal((await infer(secret, "tiny-chat")).status, 200, "allowed by both");
  const byProject = await infer(secret, "tiny-embed");
  t.equal(byProject.status, 403, "the key allowing a model does not lift the project's refusal");
  t.match(byProject.message, /project's allow list/);

  await asAdmin("POST", keyPath, { allowed_models: ["tiny-embed"] });
  const byKey = await infer(secret, "tiny-chat");
  t.equal(byKey.status, 403, "the project allowing a model does not lift the key's refusal");
  t.match(byKey.message, /`tiny-chat`.*key's allowed_models.*`tiny-embed`/);
  t.equal(
    (await infer(stack.apiKey, "tiny-chat")).status,
    200,
    "another key of the project is not bound by them",
  );
  await admin.projects.modelPermissions.delete(project);
});

void t.test("model permissions: bad input is a 400 naming the parameter", async (t) => {
  const since = await lastAuditId();
  const path = `/organization/projects/${project}/model_permissions`;
  const cases: [unknown, string | null, string][] = [
    [{ mode: "allow_list", model_ids: ["tiny-chat", "tiny-chta"] }, "model_ids[1]", "a typo in a model id"],
    [{ mode: "allow", model_ids: [] }, "mode", "an unknown mode"],
    [{ mode: "deny_list" }, "model_ids", "no model ids"],
    [{ mode: "deny_list", model_ids: [""] }, "model_ids[0]", "an empty id"],
    [{ mode: "deny_list", model_ids: [], scope: "all" }, "scope", "an unknown field"],
  ];
  for (const [body, param, what] of cases) {
    const answer = await asAdmin("POST", path, body);
    t.equal(answer.status, 400, `${what}: 400`);
    t.equal(answer.error?.param, param, `${what}: names ${param}`);
  }
  t.match((await asAdmin("POST", path, cases[0]?.[0])).error?.message, /`tiny-chta` is not in the catalogue/);
  t.equal(await lastAuditId(), since, "nothing refused changed anything");
});

void t.test("spend limits: the organization's and a project's, in the platform currency", async (t) => {
  const since = await lastAuditId();
  // OpenAI's SDK types the currency as "USD", the only one OpenAI takes; the platform takes only its own.
  const inEuros = (threshold_amount: number) => ({
    threshold_amount,
    currency: "EUR" as "USD",
    interval: "month" as const,
  });

  t.equal((await asAdmin("GET", "/organization/spend_limit")).status, 404, "none set: 404");
  t.equal((await asAdmin("DELETE", "/organization/spend_limit")).status, 404);
  let organization: OpenAI.Admin.Organization.OrganizationSpendLimit | undefined;
  const orgRevoked = await revokedBy(async () => {
    organization = await admin.spendLimit.update(inEuros(50_000));
  });
  valid(t, "OrganizationSpendLimitResource", organization);
  t.same(organization, {
    object: "organization.spend_limit",
    threshold_amount: 50_000,
    currency: "EUR",
    interval: "month",
    enforcement: { status: "enforcing" },
  });
  t.same(orgRevoked, [{ scope: "organization", id: stack.organizationId }], "every key of the organization");
  t.same(await admin.spendLimit.retrieve(), organization);

  const projectPath = `/organization/projects/${project}/spend_limit`;
  t.equal((await asAdmin("GET", projectPath)).status, 404);
  const lowerCase = await asAdmin("POST", projectPath, {
    threshold_amount: 2_500,
    currency: "eur",
    interval: "month",
  });
  t.equal(lowerCase.status, 200, "the currency's code in any case");
  valid(t, "ProjectSpendLimitResource", lowerCase.json);
  t.match(lowerCase.json, { object: "project.spend_limit", threshold_amount: 2_500, currency: "EUR" });
  const projectRevoked = await revokedBy(() => admin.projects.spendLimit.update(project, inEuros(3_000)));
  t.same(projectRevoked, [{ scope: "project", id: project }]);
  t.match(await admin.projects.spendLimit.retrieve(project), { threshold_amount: 3_000, currency: "EUR" });
  t.match((await principalOf(stack.apiKey)).limits, {
    projectSpendLimitCents: 3_000,
    organizationSpendLimitCents: 50_000,
  });

  const projectDeleted = await admin.projects.spendLimit.delete(project);
  valid(t, "ProjectSpendLimitDeletedResource", projectDeleted);
  t.same(projectDeleted, { object: "project.spend_limit.deleted", deleted: true });
  const organizationDeleted = await admin.spendLimit.delete();
  valid(t, "OrganizationSpendLimitDeletedResource", organizationDeleted);
  t.equal((await asAdmin("GET", "/organization/spend_limit")).status, 404, "deleted");
  t.match((await principalOf(stack.apiKey)).limits, {
    projectSpendLimitCents: null,
    organizationSpendLimitCents: null,
  });

  const events = await auditAfter(since);
  t.same(
    events.map((event) => event.type),
    ["organization.updated", "project.updated", "project.updated", "project.updated", "organization.updated"],
  );
  for (const event of events) valid(t, "AuditLog", event);
  t.match(events[0], {
    "organization.updated": {
      id: stack.organizationId,
      changes_requested: { spend_limit: { threshold_amount: 50_000, currency: "EUR", interval: "month" } },
    },
  });
  t.match(events[3], {
    project: { id: project },
    "project.updated": { changes_requested: { spend_limit: null } },
  });
});

void t.test("spend limits: bad input is a 400 naming the parameter", async (t) => {
  const since = await lastAuditId();
  const cases: [unknown, string | null, string][] = [
    [
      { threshold_amount: 100, currency: "USD", interval: "month" },
      "currency",
      "another currency than the platform's",
    ],
    [{ threshold_amount: 0, currency: "EUR", interval: "month" }, "threshold_amount", "nothing to spend"],
    [
      { threshold_amount: 9.99, currency: "EUR", interval: "month" },
      "threshold_amount",
      "a fraction of a cent",
    ],
    [{ threshold_amount: 100, currency: "EUR", interval: "week" }, "interval", "another interval"],
    [{ threshold_amount: 100, currency: "EUR" }, "interval", "no interval"],
    [{ threshold_amount: 100, currency: "EUR", interval: "month", soft: true }, "soft", "an unknown field"],
  ];
  for (const path of ["/organization/spend_limit", `/organization/projects/${project}/spend_limit`]) {
    for (const [body, param, what] of cases) {
      const answer = await asAdmin("POST", path, body);
      t.equal(answer.status, 400, `${path}, ${what}: 400`);
      t.equal(answer.error?.param, param, `${what}: names ${param}`);
    }
  }
  t.match(
    (await asAdmin("POST", "/organization/spend_limit", cases[0]?.[0])).error?.message,
    /must be `EUR`/,
    "the refusal says which currency",
  );
  t.equal(await lastAuditId(), since, "nothing refused changed anything");
});

void t.test("key settings (extension): rate limits and a token budget", async (t) => {
  const account = await admin.projects.serviceAccounts.create(project, { name: "Budgeted" });
  const keyId = account.api_key?.id ?? "";
  const keyPath = `/organization/projects/${project}/api_keys/${keyId}`;
  const since = await lastAuditId();
  const fresh = await admin.projects.apiKeys.retrieve(keyId, { project_id: project });
  t.same(extensionErrors("ProjectApiKeyWithSettings", fresh), []);
  t.match(fresh, { rate_limits: null, token_budget: null }, "a new key has neither");

  let set: Awaited<ReturnType<typeof asAdmin>> | undefined;
  const revoked = await revokedBy(async () => {
    set = await asAdmin("POST", keyPath, {
      rate_limits: { max_requests_per_1_minute: 60 },
      token_budget: { limit: 5_000_000_000, interval: "month" },
    });
  });
  t.equal(set?.status, 200);
  t.same(extensionErrors("ProjectApiKeyWithSettings", set?.json), []);
  valid(t, "ProjectApiKey", set?.json);
  t.match(set?.json, {
    rate_limits: { max_requests_per_1_minute: 60, max_tokens_per_1_minute: null },
    token_budget: { limit: 5_000_000_000, interval: "month" },
  });
  t.same(revoked, [{ scope: "key", id: keyId }]);
  t.same(
    (await principalOf(account.api_key?.value ?? "")).limits.key,
    {
      maxRequestsPer1Minute: 60,
      maxTokensPer1Minute: null,
      tokenBudget: { limit: 5_000_000_000, interval: "month" },
    },
    "the key's principal carries them",
  );

  const replaced = await asAdmin("POST", keyPath, { rate_limits: { max_tokens_per_1_minute: 1_000 } });
  t.match(
    replaced.json,
    { rate_limits: { max_requests_per_1_minute: null, max_tokens_per_1_minute: 1_000 } },
    "rate_limits replaces both: one left out is none",
  );
  const removed = await asAdmin("POST", keyPath, { rate_limits: null, token_budget: null });
  t.match(removed.json, { rate_limits: null, token_budget: null }, "null removes them");
  t.same(extensionErrors("ProjectApiKeyWithSettings", removed.json), []);

  const created = await asAdmin(
    "POST",
    `/organization/projects/${project}/service_accounts/${account.id}/api_keys`,
    {
      name: "daily",
      token_budget: { limit: 10_000, interval: "day" },
      rate_limits: { max_requests_per_1_minute: 5, max_tokens_per_1_minute: 500 },
    },
  );
  t.equal(created.status, 200, "a new key of a service account takes them too");
  valid(t, "ServiceAccountApiKeyBody", created.json);
  const createdId = (created.json as { id: string }).id;
  t.match(await admin.projects.apiKeys.retrieve(createdId, { project_id: project }), {
    token_budget: { limit: 10_000, interval: "day" },
    rate_limits: { max_requests_per_1_minute: 5, max_tokens_per_1_minute: 500 },
  });

  const events = await auditAfter(since);
  t.same(
    events.map((event) => event.type),
    ["api_key.updated", "api_key.updated", "api_key.updated", "api_key.created"],
  );
  for (const event of events) valid(t, "AuditLog", event);
  t.match(events[0], {
    "api_key.updated": {
      id: keyId,
      changes_requested: {
        rate_limits: { max_requests_per_1_minute: 60, max_tokens_per_1_minute: null },
        token_budget: { limit: 5_000_000_000, interval: "month" },
      },
    },
  });
  t.match(events[3], { "api_key.created": { data: { token_budget: { limit: 10_000, interval: "day" } } } });

  const before = await lastAuditId();
  const cases: [unknown, string | null, string][] = [
    [{ rate_limits: {} }, "rate_limits", "rate limits with neither field"],
    [{ rate_limits: { max_requests_per_1_minute: 0 } }, "rate_limits.max_requests_per_1_minute", "zero"],
    [{ rate_limits: { max_rpm: 5 } }, "rate_limits.max_rpm", "an unknown field"],
    [{ token_budget: { limit: 100, interval: "week" } }, "token_budget.interval", "another interval"],
    [{ token_budget: { limit: 100 } }, "token_budget.interval", "no interval"],
    [{ token_budget: { limit: -1, interval: "day" } }, "token_budget.limit", "a negative budget"],
  ];
  for (const [body, param, what] of cases) {
    const answer = await asAdmin("POST", keyPath, body);
    t.equal(answer.status, 400, `${what}: 400`);
    t.equal(answer.error?.param, param, `${what}: names ${param}`);
  }
  t.equal(await lastAuditId(), before, "nothing refused changed anything");
});

void t.test(
  "another organization sees none of it; the export shows it; an archived project cannot change",
  async (t) => {
    await admin.projects.modelPermissions.update(project, { mode: "deny_list", model_ids: ["tiny-embed"] });
    await admin.spendLimit.update({ threshold_amount: 70_000, currency: "EUR" as "USD", interval: "month" });
    t.teardown(async () => {
      await admin.projects.modelPermissions.delete(project);
      await admin.spendLimit.delete();
    });
    const other = await createTenant(
      stack.baseURL,
      stack.operatorToken,
      stack.secrets,
      "Another organization",
    );
    const p = `/organization/projects/${project}`;
    for (const [method, path, body] of [
      ["GET", `${p}/rate_limits`, undefined],
      ["POST", `${p}/rate_limits/rl-tiny-chat`, { max_requests_per_1_minute: 1 }],
      ["GET", `${p}/model_permissions`, undefined],
      ["POST", `${p}/model_permissions`, { mode: "allow_list", model_ids: [] }],
      ["DELETE", `${p}/model_permissions`, undefined],
      ["GET", `${p}/spend_limit`, undefined],
      ["POST", `${p}/spend_limit`, { threshold_amount: 1, currency: "EUR", interval: "month" }],
      ["DELETE", `${p}/spend_limit`, undefined],
    ] as const) {
      const answer = await asAdmin(method, path, body, other.adminKey);
      t.equal(answer.status, 404, `${method} ${path}: 404 for another organization`);
      t.equal(answer.error?.code, "not_found");
    }
    t.equal(
      (await asAdmin("GET", "/organization/spend_limit", undefined, other.adminKey)).status,
      404,
      "its own organization has no spend limit: this one's is not shown",
    );
    t.match(
      await admin.projects.modelPermissions.retrieve(project),
      { mode: "deny_list" },
      "and nothing changed",
    );
    t.equal(
      (await admin.projects.rateLimits.listRateLimits(project)).data[0]?.max_requests_per_1_minute,
      100,
    );

    const exported = await asAdmin("GET", "/organization/export");
    t.same(extensionErrors("OrganizationExport", exported.json), [], "the export carries the limits");
    const document = exported.json as { spend_limit: unknown; projects: { id: string }[] };
    t.match(document.spend_limit, { object: "organization.spend_limit", threshold_amount: 70_000 });
    t.match(
      document.projects.find((exportedProject) => exportedProject.id === project),
      {
        rate_limits: [{ id: "rl-tiny-chat", max_requests_per_1_minute: 100 }, { id: "rl-tiny-embed" }],
        model_permissions: { mode: "deny_list", model_ids: ["tiny-embed"] },
        spend_limit: null,
      },
    );

    const archived = await admin.projects.create({ name: "To archive" });
    await admin.projects.archive(archived.id);
    const refused = await asAdmin("POST", `/organization/projects/${archived.id}/model_permissions`, {
      mode: "allow_list",
      model_ids: ["tiny-chat"],
    });
    t.equal(refused.status, 400, "an archived project's permissions cannot change");
    t.match(refused.error?.message, /archived/);
  },
);
