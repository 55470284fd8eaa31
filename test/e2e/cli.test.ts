// The `llmaas` CLI against the real platform: the operator's and an administrator's everyday commands, their human
// and --json outputs, and the exit codes scripts test.
import t from "tap";
import { run } from "../../cli/src/run.js";
import { rawRequest } from "../support/client.js";
import { schemaCheckingFetch } from "../support/openapi.js";
import { startStack } from "../support/stack.js";

// The CLI calls the global fetch: every answer it gets is checked against its route's OpenAPI schema too.
const originalFetch = globalThis.fetch;
globalThis.fetch = schemaCheckingFetch(originalFetch);
t.teardown(() => {
  globalThis.fetch = originalFetch;
});

const stack = await startStack();
t.teardown(() => stack.stop());
const url = stack.baseURL.replace(/\/v1$/, "");

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function llmaas(
  argv: string[],
  credentials: { admin?: string; operator?: string } = {},
): Promise<Outcome> {
  let stdout = "";
  let stderr = "";
  const code = await run(
    argv,
    { LLMAAS_URL: url, LLMAAS_ADMIN_KEY: credentials.admin, LLMAAS_OPERATOR_TOKEN: credentials.operator },
    {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += text) },
    },
  );
  stack.secrets.collect(safeJson(stdout));
  return { code, stdout, stderr };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function keyStatus(apiKey: string): Promise<number> {
  return (await rawRequest(stack, "/models", { apiKey })).status;
}

const operator = { operator: stack.operatorToken };
let admin = { admin: "" };
let organizationId = "";
let projectId = "";

void t.test("orgs create prints the organization and its first admin key once", async (t) => {
  const created = await llmaas(["orgs", "create", "CLI Corp", "--json"], operator);
  t.equal(created.code, 0);
  const organization = JSON.parse(created.stdout) as { id: string; admin_api_key: { value: string } };
  organizationId = organization.id;
  admin = { admin: organization.admin_api_key.value };

  const listed = await llmaas(["orgs", "list", "--all"], operator);
  t.equal(listed.code, 0);
  t.match(listed.stdout, /^ID\s+NAME\s+STATUS\s+CREATED/m, "a table with a header row");
  t.match(listed.stdout, new RegExp(`^${organizationId}\\s+CLI Corp\\s+active`, "m"));
});

void t.test("projects and keys: create, list, rotate, delete", async (t) => {
  const project = await llmaas(["projects", "create", "Storefront", "--json"], admin);
  t.equal(project.code, 0);
  projectId = (JSON.parse(project.stdout) as { id: string }).id;
  t.match(
    (await llmaas(["projects", "list"], admin)).stdout,
    new RegExp(`^${projectId}\\s+Storefront\\s+active`, "m"),
  );

  const created = await llmaas(["keys", "create", "--project", projectId, "--name", "storefront-web"], admin);
  t.equal(created.code, 0);
  const secret = /^API key\s+(\S+)$/m.exec(created.stdout)?.[1] ?? "";
  stack.secrets.add("key", secret);
  t.match(secret, /^sk-lm-proj-/, "the secret on a line of its own, labelled");
  t.match(created.stderr, /shown only this once/);
  t.equal(await keyStatus(secret), 200, "the key works");

  const listed = await llmaas(["keys", "list", "--project", projectId, "--json"], admin);
  const keys = (JSON.parse(listed.stdout) as { data: { id: string; redacted_value: string }[] }).data;
  t.equal(keys.length, 1);
  const keyId = keys[0]?.id ?? "";
  t.notOk(listed.stdout.includes(secret), "lists never show a secret");

  const rotated = await llmaas(
    ["keys", "rotate", "--project", projectId, keyId, "--grace", "0", "--json"],
    admin,
  );
  t.equal(rotated.code, 0);
  const fresh = (JSON.parse(rotated.stdout) as { id: string; value: string }).value;
  t.same(
    [await keyStatus(secret), await keyStatus(fresh)],
    [401, 200],
    "rotated with no grace: old out, new in",
  );

  const deleted = await llmaas(["keys", "delete", "--project", projectId, keyId], admin);
  t.equal(deleted.code, 0);
  t.equal(await keyStatus(fresh), 401, "deleted");
});

void t.test("audit shows the changes, newest first, filtered by type", async (t) => {
  const audit = await llmaas(["audit", "--type", "project.created"], admin);
  t.equal(audit.code, 0);
  t.match(audit.stdout, /^TIME\s+TYPE\s+ACTOR\s+PROJECT\s+ID/m);
  t.match(audit.stdout, new RegExp(`project\\.created\\s+\\S+\\s+${projectId}`));
  t.notMatch(audit.stdout, /api_key\.created/, "only the type asked for");
  const all = await llmaas(["audit", "--all", "--json"], admin);
  const types = (JSON.parse(all.stdout) as { data: { type: string }[] }).data.map((event) => event.type);
  t.same(types.slice(0, 3), ["api_key.deleted", "api_key.updated", "api_key.created"], "newest first");
});

void t.test("exit codes scripts can test", async (t) => {
  t.equal((await llmaas(["projects", "list"], { admin: "sk-lm-admin-wrong" })).code, 3, "401 → 3");
  t.equal(
    (await llmaas(["orgs", "list"], { operator: admin.admin })).code,
    3,
    "403 (wrong kind of credential) → 3",
  );
  t.equal((await llmaas(["projects", "archive", "proj_doesnotexist"], admin)).code, 4, "404 → 4");
  t.equal((await llmaas(["projects", "create", ""], admin)).code, 1, "400 → 1");
  t.equal((await llmaas(["projects", "list"])).code, 2, "no credential → usage error 2");
  t.equal((await llmaas(["keys", "lst"], admin)).code, 2, "unknown command → 2");
  const error = await llmaas(["projects", "list"], { admin: "sk-lm-admin-wrong" });
  t.notOk(error.stderr.includes("sk-lm-admin-wrong"), "the credential is not repeated in the error");
});

void t.test("projects archive and orgs delete", async (t) => {
  const archived = await llmaas(["projects", "archive", projectId, "--json"], admin);
  t.equal(archived.code, 0);
  t.match(JSON.parse(archived.stdout), { status: "archived" });
  t.equal((await llmaas(["orgs", "delete", organizationId], operator)).code, 0);
  t.equal(
    (await llmaas(["projects", "list"], admin)).code,
    3,
    "the deleted organization's admin key is refused",
  );
});
