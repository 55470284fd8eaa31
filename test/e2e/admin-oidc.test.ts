// Administrators sign in with ID tokens from their organization's own OpenID provider: here one the test serves
// itself (a JWKS on 127.0.0.1, keys it can rotate, tokens it mints right or wrong). A token names its organization
// by issuer and audience; its groups give the role (owner or reader); the first use of each token is the sign-in,
// audited once however many requests it makes, and every refused token is audited with why.
import { setTimeout as sleep } from "node:timers/promises";
import t, { type Test } from "tap";
import type OpenAI from "openai";
import { startStack } from "../support/stack.js";
import { adminClient, pageBody, rawRequest } from "../support/client.js";
import { startIdentityProvider } from "../support/identity-provider.js";
import { extensionErrors, openapiErrors, type OpenAISchemaName } from "../support/openapi.js";
import { createTenant } from "../support/tenant.js";

const COOLDOWN_MS = 200;
const stack = await startStack({ authEnv: { OIDC_JWKS_COOLDOWN_MS: String(COOLDOWN_MS) } });
t.teardown(() => stack.stop());
const idp = await startIdentityProvider({
  onToken: (jwt) => stack.secrets.add("identity token", jwt),
});
t.teardown(() => idp.close());

const OWNERS = "llmaas-owners";
const READERS = "llmaas-readers";
const ADA = { sub: "ada", email: "ada@acme.test", name: "Ada Lovelace", groups: ["staff", OWNERS] };
const GRACE = { sub: "grace", email: "grace@acme.test", name: "Grace Hopper", groups: [READERS] };
const EVE = { sub: "eve", email: "eve@acme.test", name: "Eve", groups: ["staff"] };

/** What the audit log must show in the end: one sign-in per distinct accepted token, one failure per refusal. */
const signIns = { [ADA.email]: new Set<string>(), [GRACE.email]: new Set<string>() };
const expectedFailures: string[] = [];

function accepted(email: string, jwt: string): void {
  signIns[email]?.add(jwt);
}

function valid(t: Test, name: OpenAISchemaName, value: unknown): void {
  t.same(openapiErrors(name, value), [], `answer validates against OpenAI's ${name}`);
}

interface ErrorJson {
  error: { message: string; type: string; code: string | null; param: string | null };
}

/** A raw request with the given credential; the answer's error, when there is one, must be OpenAI's shape. */
async function call(
  t: Test,
  credential: string,
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
): Promise<{ status: number; json: unknown; text: string }> {
  const answer = await rawRequest(stack, path, {
    method,
    apiKey: credential,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    ...(headers === undefined ? {} : { headers }),
  });
  if (answer.status >= 400) {
    t.same(openapiErrors("ErrorResponse", answer.json), [], `${method} ${path}: an OpenAI error body`);
  }
  t.notOk(answer.text.includes(credential), "the answer never quotes the credential");
  return answer;
}

/** The token is refused on a read every administrator may make; `code` is what the audit log must record. */
async function refused(
  t: Test,
  jwt: string,
  status: 401 | 403,
  auditedAs: string | null,
  message?: RegExp,
  headers?: Record<string, string>,
): Promise<void> {
  const answer = await call(t, jwt, "GET", "/organization/projects", undefined, headers);
  t.equal(answer.status, status, `refused with ${status}`);
  const error = (answer.json as ErrorJson).error;
  t.equal(error.code, status === 401 ? "invalid_api_key" : "permission_denied");
  if (message) t.match(error.message, message);
  if (auditedAs !== null) expectedFailures.push(auditedAs);
}

const operatorSettings = {
  issuer: idp.issuer,
  audience: idp.audience,
  jwks_uri: idp.jwksUri,
  role_claim: "groups",
  owner_values: [OWNERS],
  reader_values: [READERS],
};

let ownerToken = "";
let readerToken = "";
let owner: OpenAI["admin"]["organization"];

void t.test("the operator configures the organization's SSO", async (t) => {
  const answer = await call(
    t,
    stack.operatorToken,
    "POST",
    `/operator/organizations/${stack.organizationId}/oidc`,
    operatorSettings,
  );
  t.equal(answer.status, 200);
  t.same(extensionErrors("Organization", answer.json), [], "answer validates against our Organization");
  t.match(answer.json, { id: stack.organizationId, object: "organization", oidc: operatorSettings });
});

void t.test("an owner token lists and creates projects through OpenAI's SDK", async (t) => {
  ownerToken = await idp.sign({ claims: ADA });
  owner = adminClient(stack, ownerToken).admin.organization;
  const list = await owner.projects.list();
  valid(t, "ProjectListResponse", pageBody(list));
  t.ok(
    list.data.some((project) => project.id === stack.projectId),
    "the organization's project is listed",
  );
  const created = await owner.projects.create({ name: "Made by Ada" });
  valid(t, "Project", created);
  t.match(created, { object: "organization.project", name: "Made by Ada", status: "active" });
  const renamed = await owner.projects.update(created.id, { name: "Made by Ada (renamed)" });
  t.equal(renamed.name, "Made by Ada (renamed)");
  valid(t, "Project", await owner.projects.retrieve(created.id));
  accepted(ADA.email, ownerToken);

  const es = await idp.sign({ claims: ADA, key: "es" });
  const esList = await adminClient(stack, es).admin.organization.projects.list();
  t.ok(esList.data.length > 0, "an ES256 token from the same provider is accepted too");
  accepted(ADA.email, es);

  const late = await idp.sign({ claims: ADA, expiresIn: -5 });
  t.equal((await call(t, late, "GET", "/organization/projects")).status, 200, "expiry within the leeway");
  accepted(ADA.email, late);
});

void t.test("a reader token reads; every kind of write is a 403", async (t) => {
  readerToken = await idp.sign({ claims: GRACE });
  const reader = adminClient(stack, readerToken).admin.organization;
  const list = await reader.projects.list();
  valid(t, "ProjectListResponse", pageBody(list));
  const project = await reader.projects.retrieve(stack.projectId);
  valid(t, "Project", project);
  valid(
    t,
    "ProjectServiceAccount",
    await reader.projects.serviceAccounts.retrieve(stack.serviceAccountId, {
      project_id: stack.projectId,
    }),
  );
  valid(t, "ListAuditLogsResponse", pageBody(await reader.auditLogs.list({ limit: 5 })));
  accepted(GRACE.email, readerToken);

  const writes: [string, string, unknown][] = [
    ["POST", "/organization/projects", { name: "Made by Grace" }],
    ["POST", `/organization/projects/${stack.projectId}`, { name: "Renamed by Grace" }],
    ["POST", `/organization/projects/${stack.projectId}/archive`, undefined],
    ["POST", `/organization/projects/${stack.projectId}/service_accounts`, { name: "Grace's" }],
    [
      "DELETE",
      `/organization/projects/${stack.projectId}/service_accounts/${stack.serviceAccountId}`,
      undefined,
    ],
    ["DELETE", `/organization/projects/${stack.projectId}/api_keys/${stack.keyId}`, undefined],
    ["POST", "/organization/admin_api_keys", { name: "Grace's key" }],
    ["DELETE", `/organization/admin_api_keys/${stack.adminKeyId}`, undefined],
  ];
  for (const [method, path, body] of writes) {
    const answer = await call(t, readerToken, method, path, body);
    t.equal(answer.status, 403, `${method} ${path}: 403 for a reader`);
    t.match(answer.json, { error: { code: "permission_denied", message: /reader/ } });
  }
  const sdkError: unknown = await reader.projects.create({ name: "Through the SDK" }).then(
    () => null,
    (error: unknown) => error,
  );
  t.match(sdkError, { status: 403, code: "permission_denied" }, "OpenAI's SDK sees the 403 too");

  const unchanged = await owner.projects.retrieve(stack.projectId);
  t.match(unchanged, { name: project.name, status: "active" }, "nothing changed");
  const account = await owner.projects.serviceAccounts.retrieve(stack.serviceAccountId, {
    project_id: stack.projectId,
  });
  t.equal(account.id, stack.serviceAccountId, "the service account is still there");
});

void t.test("a token whose groups map to no role is a 403", async (t) => {
  await refused(t, await idp.sign({ claims: EVE }), 403, "no_role", /no role/);
  await refused(t, await idp.sign({ claims: { ...EVE, groups: undefined } }), 403, "no_role");
});

void t.test("wrong issuer, wrong audience: 401", async (t) => {
  const named = { "openai-organization": stack.organizationId };
  const otherIssuer = { ...ADA, iss: `${idp.issuer}/other` };
  // An issuer no organization uses names no organization: refused, recorded nowhere.
  await refused(t, await idp.sign({ claims: otherIssuer }), 401, null, /issuer/);
  // Named in OpenAI-Organization, the organization's settings judge it: a failed sign-in in its log.
  await refused(t, await idp.sign({ claims: otherIssuer }), 401, "wrong_issuer", /issuer/, named);
  // The only organization on this issuer judges a token of another audience, header or not.
  await refused(t, await idp.sign({ claims: { ...ADA, aud: "another-application" } }), 401, "wrong_audience");
  await refused(
    t,
    await idp.sign({ claims: { ...ADA, aud: "another-application" } }),
    401,
    "wrong_audience",
    undefined,
    named,
  );
  await refused(t, await idp.sign({ claims: { ...ADA, iss: undefined } }), 401, null);
});

void t.test("expired beyond the 30 s leeway: 401", async (t) => {
  await refused(t, await idp.sign({ claims: ADA, expiresIn: -120 }), 401, "expired", /expired/);
});

void t.test("signatures: foreign key, tampered payload, alg none, HS256: 401", async (t) => {
  // A key the provider never published, announced under a kid it does publish.
  await refused(t, await idp.sign({ claims: ADA, key: "foreign" }), 401, "invalid_signature");
  // A reader's token promoted to owner: the signature no longer matches the payload.
  await refused(t, idp.tamper(readerToken, { groups: [OWNERS] }), 401, "invalid_signature");
  await refused(t, idp.unsigned({ claims: ADA }), 401, "unsupported_algorithm");
  await refused(t, await idp.signHs256({ claims: ADA }), 401, "unsupported_algorithm");
});

void t.test("an unknown kid is refused, then accepted once the provider publishes its key", async (t) => {
  const jwt = await idp.sign({ claims: ADA, key: "next" });
  t.notOk(idp.publishedKids.includes(idp.nextKid), "its kid is not published yet");
  // At least one cooldown since the last fetch, so that the refusal follows a refetch, not a cached set.
  await sleep(COOLDOWN_MS * 2);
  await refused(t, jwt, 401, "unknown_key");

  const fetchesBefore = idp.jwksFetches;
  const kid = await idp.rotate();
  t.ok(idp.publishedKids.includes(kid), "the provider now publishes it");
  await sleep(COOLDOWN_MS * 5);
  const answer = await call(t, jwt, "GET", "/organization/projects");
  t.equal(answer.status, 200, "accepted after the rotation and the cooldown");
  t.ok(idp.jwksFetches > fetchesBefore, "the platform refetched the JWKS for it");
  accepted(ADA.email, jwt);
});

let ownerUserId = "";
let readerUserId = "";

void t.test("administrators appear in /v1/organization/users with their roles", async (t) => {
  const users = await owner.users.list();
  valid(t, "UserListResponse", pageBody(users));
  for (const user of users.data) valid(t, "User", user);
  const ada = users.data.find((user) => user.email === ADA.email);
  const grace = users.data.find((user) => user.email === GRACE.email);
  t.match(ada, { object: "organization.user", name: ADA.name, role: "owner" });
  t.match(grace, { object: "organization.user", name: GRACE.name, role: "reader" });
  t.notOk(
    users.data.some((user) => user.email === EVE.email),
    "a refused sign-in makes no user",
  );
  t.equal(users.data.length, 2, "one user per person, however many tokens they used");
  ownerUserId = ada?.id ?? "";
  readerUserId = grace?.id ?? "";
  const retrieved = await owner.users.retrieve(ownerUserId);
  valid(t, "User", retrieved);
  t.equal(retrieved.email, ADA.email);
  const filtered = await owner.users.list({ emails: [GRACE.email] });
  t.same(
    filtered.data.map((user) => user.id),
    [readerUserId],
  );
});

void t.test("an admin key made by an administrator belongs to them and acts for them", async (t) => {
  const created = await owner.adminAPIKeys.create({ name: "Ada's automation" });
  valid(t, "AdminApiKeyCreateResponse", created);
  t.match(created.owner, { type: "user", id: ownerUserId, role: "owner" }, "owned by the administrator");
  const listed = (await owner.adminAPIKeys.list({ order: "desc" })).data.find((key) => key.id === created.id);
  t.match(listed?.owner, { type: "user", id: ownerUserId });

  const viaKey = adminClient(stack, created.value).admin.organization;
  const project = await viaKey.projects.create({ name: "Made with Ada's key" });
  const events = await owner.auditLogs.list({ resource_ids: [project.id] });
  t.match(
    events.data[0]?.actor,
    { type: "api_key", api_key: { id: created.id, type: "user", user: { id: ownerUserId } } },
    "a change made with the key is recorded as the administrator's, through the key",
  );
  await owner.adminAPIKeys.delete(created.id);
});

void t.test("a change made by the owner is recorded with their session", async (t) => {
  const created = await owner.projects.create({ name: "Audited" });
  const events = await owner.auditLogs.list({ resource_ids: [created.id] });
  t.equal(events.data.length, 1);
  const event = events.data[0];
  valid(t, "AuditLog", event);
  t.match(event, {
    type: "project.created",
    actor: {
      type: "session",
      session: { user: { id: ownerUserId, email: ADA.email }, ip_address: String },
    },
  });
  const byActor = await owner.auditLogs.list({ actor_ids: [ownerUserId], event_types: ["project.created"] });
  t.ok(
    byActor.data.some((e) => e.id === event?.id),
    "found by the administrator's user id",
  );
  const byEmail = await owner.auditLogs.list({ actor_emails: [ADA.email], event_types: ["project.created"] });
  t.ok(
    byEmail.data.some((e) => e.id === event?.id),
    "found by the administrator's email",
  );
});

void t.test("organization A's token cannot touch organization B", async (t) => {
  const b = await createTenant(stack.baseURL, stack.operatorToken, stack.secrets, "Organization B");
  // B signs in with the same provider, for another application: the audience keeps the two apart.
  const bSettings = { ...operatorSettings, audience: "organization-b-console" };
  const configured = await call(
    t,
    stack.operatorToken,
    "POST",
    `/operator/organizations/${b.organizationId}/oidc`,
    bSettings,
  );
  t.equal(configured.status, 200);

  const objects: [string, string, unknown][] = [
    ["GET", `/organization/projects/${b.projectId}`, undefined],
    ["POST", `/organization/projects/${b.projectId}`, { name: "Taken over" }],
    ["POST", `/organization/projects/${b.projectId}/archive`, undefined],
    ["GET", `/organization/projects/${b.projectId}/service_accounts`, undefined],
    ["GET", `/organization/projects/${b.projectId}/service_accounts/${b.serviceAccountId}`, undefined],
    ["DELETE", `/organization/projects/${b.projectId}/service_accounts/${b.serviceAccountId}`, undefined],
    ["GET", `/organization/projects/${b.projectId}/api_keys/${b.keyId}`, undefined],
    ["POST", `/organization/projects/${b.projectId}/api_keys/${b.keyId}/rotate`, {}],
    ["DELETE", `/organization/projects/${b.projectId}/api_keys/${b.keyId}`, undefined],
    ["GET", `/organization/admin_api_keys/${b.adminKeyId}`, undefined],
    ["DELETE", `/organization/admin_api_keys/${b.adminKeyId}`, undefined],
  ];
  for (const [method, path, body] of objects) {
    const answer = await call(t, ownerToken, method, path, body);
    t.equal(answer.status, 404, `${method} ${path}: B's object is not found from A`);
    t.match(answer.json, { error: { code: "not_found" } });
  }
  const listed = await owner.projects.list({ include_archived: true });
  t.notOk(
    listed.data.some((project) => project.id === b.projectId),
    "A's list shows none of B's projects",
  );

  const named = await call(t, ownerToken, "GET", "/organization/projects", undefined, {
    "openai-organization": b.organizationId,
  });
  t.equal(named.status, 401, "naming B in OpenAI-Organization does not make A's token B's");
  const bFailures = await adminClient(stack, b.adminKey).admin.organization.auditLogs.list({
    event_types: ["login.failed"],
  });
  t.same(
    bFailures.data.map((event) => event["login.failed"]?.error_code),
    ["wrong_audience"],
    "B's settings judged it, and B's log records the failed sign-in",
  );

  const bAdmin = adminClient(stack, b.adminKey).admin.organization;
  t.match(await bAdmin.projects.retrieve(b.projectId), { name: "Test project", status: "active" });
  t.equal(
    (await bAdmin.projects.serviceAccounts.retrieve(b.serviceAccountId, { project_id: b.projectId })).id,
    b.serviceAccountId,
  );
  t.equal((await rawRequest(stack, "/models", { apiKey: b.apiKey })).status, 200, "B's API key still works");
  const bUsers = await bAdmin.users.list();
  t.same(bUsers.data, [], "A's administrators are not B's users");
});

void t.test("audit log: one sign-in per token, one failure per refused token", async (t) => {
  const events = [];
  for await (const event of owner.auditLogs.list({ limit: 100 })) events.push(event);
  for (const event of events) valid(t, "AuditLog", event);

  const succeeded = events.filter((event) => event.type === "login.succeeded");
  const perUser = new Map<string, number>();
  for (const event of succeeded) {
    t.match(event.actor, {
      type: "session",
      session: { user: { id: String, email: String }, ip_address: String },
    });
    const email = event.actor?.session?.user?.email ?? "";
    perUser.set(email, (perUser.get(email) ?? 0) + 1);
  }
  t.equal(perUser.get(ADA.email), signIns[ADA.email]?.size, "one login.succeeded per distinct owner token");
  t.equal(
    perUser.get(GRACE.email),
    signIns[GRACE.email]?.size,
    "one login.succeeded per distinct reader token",
  );
  t.equal(succeeded.length, (signIns[ADA.email]?.size ?? 0) + (signIns[GRACE.email]?.size ?? 0));
  t.ok(
    succeeded.every((event) => [ownerUserId, readerUserId].includes(event.actor?.session?.user?.id ?? "")),
    "each names the user it signed in",
  );

  const failed = events.filter((event) => event.type === "login.failed");
  t.same(
    failed.map((event) => event["login.failed"]?.error_code).sort(),
    [...expectedFailures].sort(),
    "one login.failed per refused token, with its error code",
  );
  for (const event of failed) {
    t.match(event.actor, { type: "session", session: { ip_address: String } });
    t.notOk(event.actor?.session?.user, "a failed sign-in names no user");
    t.type(event["login.failed"]?.error_message, "string");
  }
});
