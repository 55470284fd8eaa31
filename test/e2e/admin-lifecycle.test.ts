// The whole life of a customer's credentials, on two gateway processes: the operator creates an organization, its
// admin key creates a project and a service account, whose key serves chat; the key is rotated (the old secret works
// during the grace period and is refused after it) and deleted (refused by both gateways, measured from the moment
// the DELETE returns). Then what takes keys away wholesale: a gateway that missed a revocation while cut off from
// NATS, an archived project, a suspended and a deleted organization.
import { performance } from "node:perf_hooks";
import t from "tap";
import { startStack } from "../support/stack.js";
import { adminClient, openaiClient, rawRequest } from "../support/client.js";
import { testEnv } from "../support/env.js";
import { extensionErrors, openapiErrors } from "../support/openapi.js";
import { startTcpProxy } from "../support/tcp-proxy.js";

const nats = new URL(testEnv.NATS_URL);
const proxy = await startTcpProxy(nats.hostname, Number(nats.port || 4222));
t.teardown(() => proxy.close());
// The second gateway reaches NATS through a proxy the test can cut.
const stack = await startStack({
  gateways: 2,
  perGatewayEnv: [{}, { NATS_URL: `nats://127.0.0.1:${proxy.port}` }],
});
t.teardown(() => stack.stop());
const gateways = stack.baseURLs;

/** The status a gateway answers for a key on an authenticated route that needs nothing else. */
async function statusOf(baseURL: string, apiKey: string): Promise<number> {
  return (await rawRequest(stack, "/models", { apiKey, baseURL })).status;
}

async function statusesOf(apiKey: string): Promise<number[]> {
  return Promise.all(gateways.map((baseURL) => statusOf(baseURL, apiKey)));
}

/** Milliseconds from now until `baseURL` refuses `apiKey` (polled every few ms), or null if it never does. */
async function millisecondsUntilRefused(
  baseURL: string,
  apiKey: string,
  deadlineMs = 10_000,
): Promise<number | null> {
  const start = performance.now();
  while (performance.now() - start < deadlineMs) {
    if ((await statusOf(baseURL, apiKey)) === 401) return performance.now() - start;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return null;
}

async function chatOn(baseURL: string, apiKey: string): Promise<string> {
  const completion = await openaiClient(stack, apiKey, baseURL).chat.completions.create({
    model: "tiny-chat",
    messages: [{ role: "user", content: "hello" }],
    max_tokens: 2,
  });
  return completion.id;
}

let organizationId = "";
let adminKey = "";
let projectId = "";
let serviceAccountId = "";

void t.test(
  "the operator creates an organization; its admin key a project and a service account",
  async (t) => {
    const created = await rawRequest(stack, "/operator/organizations", {
      apiKey: stack.operatorToken,
      body: JSON.stringify({ name: "Lifecycle Inc." }),
    });
    t.equal(created.status, 200);
    t.same(extensionErrors("OrganizationCreated", created.json), []);
    const organization = created.json as { id: string; admin_api_key: { value: string } };
    organizationId = organization.id;
    adminKey = organization.admin_api_key.value;

    const admin = adminClient(stack, adminKey, gateways[1]).admin.organization;
    const project = await admin.projects.create({ name: "Production" });
    t.same(openapiErrors("Project", project), []);
    projectId = project.id;
    const account = await admin.projects.serviceAccounts.create(projectId, { name: "Checkout service" });
    t.same(openapiErrors("ProjectServiceAccountCreateResponse", account), []);
    serviceAccountId = account.id;
    const apiKey = account.api_key?.value ?? "";

    for (const baseURL of gateways) {
      const id = await chatOn(baseURL, apiKey);
      const usage = await stack.waitForUsage(id);
      t.match(usage, { organization_id: organizationId, project_id: projectId, key_id: account.api_key?.id });
    }
  },
);

void t.test(
  "rotation: the old secret works during the grace period, and is refused on both gateways after",
  async (t) => {
    const admin = adminClient(stack, adminKey).admin.organization;
    const key = await admin.projects.serviceAccounts.apiKeys.create(serviceAccountId, {
      project_id: projectId,
      name: "rotated",
    });
    t.same(await statusesOf(key.value), [200, 200], "both gateways cache the key");

    const graceSeconds = 3;
    const rotation = await rawRequest(
      stack,
      `/organization/projects/${projectId}/api_keys/${key.id}/rotate`,
      {
        apiKey: adminKey,
        body: JSON.stringify({ grace_period_seconds: graceSeconds }),
      },
    );
    t.equal(rotation.status, 200);
    t.same(extensionErrors("ProjectApiKeyRotated", rotation.json), []);
    const rotated = rotation.json as { id: string; value: string; previous_secret_expires_at: number };
    t.equal(rotated.id, key.id, "the key id, and so its usage history and settings, is unchanged");
    t.not(rotated.value, key.value);

    t.same(await statusesOf(rotated.value), [200, 200], "the new secret works at once");
    t.same(await statusesOf(key.value), [200, 200], "the old secret still works during the grace period");
    const id = await chatOn(gateways[0] ?? "", key.value);
    t.equal((await stack.waitForUsage(id)).key_id, key.id, "and is metered under the same key");

    const untilGraceEnds = rotated.previous_secret_expires_at * 1000 - Date.now();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, untilGraceEnds) + 1000));
    t.same(
      await statusesOf(key.value),
      [401, 401],
      "after the grace period the old secret is refused everywhere",
    );
    t.same(await statusesOf(rotated.value), [200, 200], "the new one keeps working");
  },
);

void t.test(
  "a deleted key is refused by both gateways within a second of the DELETE returning",
  async (t) => {
    const admin = adminClient(stack, adminKey).admin.organization;
    const key = await admin.projects.serviceAccounts.apiKeys.create(serviceAccountId, {
      project_id: projectId,
      name: "to delete",
    });
    t.same(await statusesOf(key.value), [200, 200], "both gateways cache the key");

    const deleted = await admin.projects.apiKeys.delete(key.id, { project_id: projectId });
    t.same(openapiErrors("ProjectApiKeyDeleteResponse", deleted), []);
    const delays = await Promise.all(gateways.map((baseURL) => millisecondsUntilRefused(baseURL, key.value)));
    t.ok(
      delays.every((delay) => delay !== null),
      "both gateways refuse it (gateway-1, gateway-2: " +
        `${delays.map((delay) => (delay === null ? "never" : `${delay.toFixed(1)} ms`)).join(", ")} after the ` +
        "DELETE returned; bench/revocation.ts measures it over many rounds)",
    );
    t.same(await statusesOf(key.value), [401, 401], "and keeps refusing it");
  },
);

void t.test("a gateway cut off from NATS while a key was deleted refuses it once reconnected", async (t) => {
  const admin = adminClient(stack, adminKey).admin.organization;
  const create = (name: string) =>
    admin.projects.serviceAccounts.apiKeys.create(serviceAccountId, { project_id: projectId, name });
  const missed = await create("deleted while cut off");
  const probe = await create("never cached");
  t.equal(await statusOf(gateways[1] ?? "", missed.value), 200, "gateway-2 caches the key");

  proxy.cut();
  await admin.projects.apiKeys.delete(missed.id, { project_id: projectId });
  // gateway-2 never heard of the deletion; it still holds the key in its cache (the TTL is 30 s).
  proxy.restore();
  const deadline = Date.now() + 20_000;
  while ((await statusOf(gateways[1] ?? "", probe.value)) !== 200 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.equal(await statusOf(gateways[1] ?? "", probe.value), 200, "gateway-2 is back on NATS");
  t.equal(await statusOf(gateways[1] ?? "", missed.value), 401, "its cache was dropped when it reconnected");
});

void t.test("an archived project's keys are refused on both gateways", async (t) => {
  const admin = adminClient(stack, adminKey).admin.organization;
  const project = await admin.projects.create({ name: "To archive" });
  const account = await admin.projects.serviceAccounts.create(project.id, { name: "app" });
  const apiKey = account.api_key?.value ?? "";
  t.same(await statusesOf(apiKey), [200, 200]);
  await admin.projects.archive(project.id);
  const delays = await Promise.all(gateways.map((baseURL) => millisecondsUntilRefused(baseURL, apiKey)));
  t.ok(
    delays.every((delay) => delay !== null),
    "refused by both",
  );
  const refusal = await rawRequest(stack, "/models", { apiKey });
  t.match((refusal.json as { error: { message: string } }).error.message, /archived/);
});

void t.test("a suspended organization: keys refused, configuration read-only, back on resume", async (t) => {
  const admin = adminClient(stack, adminKey).admin.organization;
  const account = await admin.projects.serviceAccounts.create(projectId, { name: "suspension" });
  const apiKey = account.api_key?.value ?? "";
  t.same(await statusesOf(apiKey), [200, 200]);

  const suspended = await rawRequest(stack, `/operator/organizations/${organizationId}/suspend`, {
    apiKey: stack.operatorToken,
    method: "POST",
  });
  t.same(extensionErrors("Organization", suspended.json), []);
  t.match(suspended.json, { status: "suspended" });
  const delays = await Promise.all(gateways.map((baseURL) => millisecondsUntilRefused(baseURL, apiKey)));
  t.ok(
    delays.every((delay) => delay !== null),
    "its keys are refused by both gateways",
  );
  t.equal((await admin.projects.list()).data.length > 0, true, "its administrators can still read");
  const write = await rawRequest(stack, "/organization/projects", {
    apiKey: adminKey,
    body: JSON.stringify({ name: "during suspension" }),
  });
  t.equal(write.status, 403, "but not change anything");

  await rawRequest(stack, `/operator/organizations/${organizationId}/resume`, {
    apiKey: stack.operatorToken,
    method: "POST",
  });
  t.same(await statusesOf(apiKey), [200, 200], "resumed: its keys work again");
});

void t.test("a deleted organization: every key refused at once, usage kept for billing", async (t) => {
  const admin = adminClient(stack, adminKey).admin.organization;
  const account = await admin.projects.serviceAccounts.create(projectId, { name: "last" });
  const apiKey = account.api_key?.value ?? "";
  t.same(await statusesOf(apiKey), [200, 200]);
  const usageBefore = await stack.db
    .selectFrom("usage_events")
    .select("request_id")
    .where("organization_id", "=", organizationId)
    .execute();

  const deleted = await rawRequest(stack, `/operator/organizations/${organizationId}`, {
    apiKey: stack.operatorToken,
    method: "DELETE",
  });
  t.same(extensionErrors("OrganizationDeleted", deleted.json), []);
  const delays = await Promise.all(gateways.map((baseURL) => millisecondsUntilRefused(baseURL, apiKey)));
  t.ok(
    delays.every((delay) => delay !== null),
    "its API keys are refused by both gateways",
  );
  t.equal(
    (await rawRequest(stack, "/organization/projects", { apiKey: adminKey })).status,
    401,
    "admin keys too",
  );
  const usageAfter = await stack.db
    .selectFrom("usage_events")
    .select("request_id")
    .where("organization_id", "=", organizationId)
    .execute();
  t.ok(usageBefore.length > 0);
  t.equal(usageAfter.length, usageBefore.length, "its usage records stay");
  const again = await rawRequest(stack, `/operator/organizations/${organizationId}`, {
    apiKey: stack.operatorToken,
    method: "DELETE",
  });
  t.equal(again.status, 404, "a deleted organization is gone from the operator's routes");
});
