import t from "tap";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { run } from "../src/run.js";

const OPERATOR_TOKEN = "op-token-7f3a9c2e41d8b6";
const ADMIN_KEY = "sk-admin-5e1b7d9f3a2c84";
const FLAG_ADMIN_KEY = "sk-admin-typedonthecommandline";
const credentials = [OPERATOR_TOKEN, ADMIN_KEY, FLAG_ADMIN_KEY];

const CREATED_AT = Date.parse("2026-11-22T10:00:00Z") / 1000;
const CREATED_ISO = "2026-11-22T10:00:00Z";

// ---- A fake platform: records every request and answers canned OpenAI-shaped responses. ----

interface RecordedRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  authorization: string | undefined;
  body: unknown;
}

interface CannedResponse {
  status: number;
  body?: unknown;
  /** Sent as is instead of `body`, for answers that are not JSON. */
  text?: string;
}

type Route = (query: URLSearchParams) => unknown;

function openAiError(message: string, type = "invalid_request_error"): unknown {
  return { error: { message, type, param: null, code: null } };
}

type Resource = { id: string } & Record<string, unknown>;

function organization(id: string, name: string): Resource {
  return { id, object: "organization", name, status: "active", created_at: CREATED_AT };
}

function project(id: string, name: string): Resource {
  return {
    id,
    object: "organization.project",
    name,
    created_at: CREATED_AT,
    archived_at: null,
    status: "active",
  };
}

/** Page one holds `first`; asking with `after=<first id>` gives page two, holding `second`. */
function twoPages(first: Resource, second: Resource): Route {
  return (query) =>
    query.get("after") === first.id
      ? { object: "list", data: [second], first_id: second.id, last_id: second.id, has_more: false }
      : { object: "list", data: [first], first_id: first.id, last_id: first.id, has_more: true };
}

const createdOrganization = {
  ...organization("org_acme", "Acme"),
  admin_api_key: {
    object: "organization.admin_api_key",
    id: "key_admin_1",
    name: "Initial admin key",
    redacted_value: "sk-admin-...9xyz",
    created_at: CREATED_AT,
    expires_at: null,
    last_used_at: null,
    owner: { type: "service_account", id: "svc_admin", name: "admin", role: "owner" },
    value: "sk-admin-NEWSECRET9xyz",
  },
};

const serviceAccountKey = {
  object: "organization.project.service_account.api_key",
  value: "sk-proj-FIRSTSECRET",
  name: "ci",
  created_at: CREATED_AT,
  id: "key_sa_1",
};

const createdServiceAccount = {
  object: "organization.project.service_account",
  id: "svc_new",
  name: "deployer",
  role: "member",
  created_at: CREATED_AT,
  api_key: { ...serviceAccountKey, name: "deployer", id: "key_new", value: "sk-proj-SECONDSECRET" },
};

const projectKey = {
  object: "organization.project.api_key",
  id: "key_1",
  name: "ci",
  redacted_value: "sk-proj-***abcd",
  created_at: CREATED_AT,
  last_used_at: null,
  owner: {
    type: "service_account",
    service_account: { id: "svc_1", name: "ci", created_at: CREATED_AT, role: "member" },
  },
};

const rotatedKey = {
  ...projectKey,
  value: "sk-proj-ROTATEDSECRET",
  previous_secret_expires_at: CREATED_AT + 3600,
};

const sessionLog = {
  id: "audit_1",
  type: "api_key.created",
  effective_at: CREATED_AT,
  project: { id: "proj_1", name: "Web" },
  actor: {
    type: "session",
    session: { user: { id: "user_1", email: "ada@example.com" }, ip_address: "10.0.0.1" },
  },
};

const apiKeyLog = {
  id: "audit_2",
  type: "project.archived",
  effective_at: CREATED_AT + 60,
  actor: { type: "api_key", api_key: { id: "key_admin_1", type: "service_account" } },
};

const routes: Record<string, Route> = {
  "POST /v1/operator/organizations": () => createdOrganization,
  "GET /v1/operator/organizations": twoPages(organization("org_1", "One"), organization("org_2", "Two")),
  "DELETE /v1/operator/organizations/org_1": () => ({
    id: "org_1",
    object: "organization.deleted",
    deleted: true,
  }),
  "POST /v1/organization/projects": () => project("proj_new", "Web"),
  "GET /v1/organization/projects": twoPages(project("proj_1", "Web"), project("proj_2", "Batch")),
  "POST /v1/organization/projects/proj_1/archive": () => ({
    ...project("proj_1", "Web"),
    status: "archived",
    archived_at: CREATED_AT + 60,
  }),
  "POST /v1/organization/projects/proj_1/service_accounts/svc_1/api_keys": () => serviceAccountKey,
  "POST /v1/organization/projects/proj_1/service_accounts": () => createdServiceAccount,
  "GET /v1/organization/projects/proj_1/api_keys": twoPages(projectKey, { ...projectKey, id: "key_2" }),
  "POST /v1/organization/projects/proj_1/api_keys/key_1/rotate": () => rotatedKey,
  "DELETE /v1/organization/projects/proj_1/api_keys/key_1": () => ({
    object: "organization.project.api_key.deleted",
    id: "key_1",
    deleted: true,
  }),
  "GET /v1/organization/audit_logs": twoPages(sessionLog, apiKeyLog),
};

let requests: RecordedRequest[] = [];
/** Answers the next request instead of its route. */
let nextFailure: CannedResponse | undefined;

function takeRequests(): RecordedRequest[] {
  const taken = requests;
  requests = [];
  return taken;
}

async function answer(request: IncomingMessage, response: ServerResponse): Promise<void> {
  let raw = "";
  for await (const chunk of request) raw += String(chunk);
  const url = new URL(request.url ?? "/", "http://platform");
  requests.push({
    method: request.method ?? "",
    url: request.url ?? "",
    authorization: request.headers.authorization,
    body: raw === "" ? undefined : (JSON.parse(raw) as unknown),
  });
  const route = routes[`${request.method} ${url.pathname}`];
  const canned =
    nextFailure ??
    (route
      ? { status: 200, body: route(url.searchParams) }
      : { status: 404, body: openAiError("No such route") });
  nextFailure = undefined;
  response.writeHead(canned.status, {
    "content-type": canned.text === undefined ? "application/json" : "text/html",
  });
  response.end(canned.text ?? JSON.stringify(canned.body));
}

const server = createServer((request, response) => void answer(request, response));
server.listen(0, "127.0.0.1");
await once(server, "listening");
t.teardown(() => server.close());
const platformUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

// ---- Running the CLI in-process ----

const environment = {
  LLMAAS_URL: platformUrl,
  LLMAAS_OPERATOR_TOKEN: OPERATOR_TOKEN,
  LLMAAS_ADMIN_KEY: ADMIN_KEY,
};

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Everything any run printed, checked for credentials at the end. */
const everyOutput: string[] = [];

function collector(): { stream: Writable; text: () => string } {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done): void {
      text += chunk.toString();
      done();
    },
  });
  return { stream, text: () => text };
}

async function llmaas(
  argv: string[],
  env: Record<string, string | undefined> = environment,
): Promise<Result> {
  const stdout = collector();
  const stderr = collector();
  const code = await run(argv, env, { stdout: stdout.stream, stderr: stderr.stream });
  everyOutput.push(stdout.text(), stderr.text());
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

function parseJson(text: string): unknown {
  return JSON.parse(text) as unknown;
}

/** The line of human output that starts with a label, without the label. */
function field(output: string, label: string): string | undefined {
  const line = output.split("\n").find((candidate) => candidate.startsWith(label + " "));
  return line?.slice(label.length).trim();
}

// ---- Help ----

void t.test("help, --help and <group> --help print the usage with the exit codes, and exit 0", async (t) => {
  for (const argv of [["help"], ["--help"], ["-h"]]) {
    const { code, stdout } = await llmaas(argv, {});
    t.equal(code, 0, argv.join(" "));
    t.match(stdout, /llmaas orgs create <name>/);
    t.match(stdout, /llmaas audit /);
    t.match(stdout, /Exit codes:[\s\S]*2 +usage error[\s\S]*5 +the platform is unreachable/);
  }
  const keysHelp = await llmaas(["keys", "--help"], {});
  t.equal(keysHelp.code, 0);
  t.match(keysHelp.stdout, /llmaas keys rotate --project P <key_id> \[--grace SECONDS\]/);
  t.notMatch(keysHelp.stdout, /llmaas orgs/, "only the group's commands");
  t.equal((await llmaas(["help", "projects"], {})).code, 0);
  t.same(takeRequests(), []);
});

// ---- Operator commands ----

void t.test("orgs create posts the name with the operator token and shows the admin key once", async (t) => {
  const { code, stdout, stderr } = await llmaas(["orgs", "create", "Acme"]);
  t.equal(code, 0);
  t.same(takeRequests(), [
    {
      method: "POST",
      url: "/v1/operator/organizations",
      authorization: `Bearer ${OPERATOR_TOKEN}`,
      body: { name: "Acme" },
    },
  ]);
  t.equal(field(stdout, "organization"), "org_acme");
  t.equal(field(stdout, "name"), "Acme");
  t.equal(field(stdout, "status"), "active");
  t.equal(field(stdout, "key id"), "key_admin_1");
  t.equal(field(stdout, "admin key"), "sk-admin-NEWSECRET9xyz");
  t.equal(stdout.split("\n").filter((line) => line.startsWith("admin key")).length, 1, "one admin key line");
  t.match(stderr, /shown only this once/);

  const json = await llmaas(["orgs", "create", "Acme", "--json"]);
  t.equal(json.code, 0);
  t.same(parseJson(json.stdout), createdOrganization);
  takeRequests();
});

void t.test("orgs list --all follows the cursor across two pages", async (t) => {
  const { code, stdout } = await llmaas(["orgs", "list", "--limit", "1", "--all"]);
  t.equal(code, 0);
  t.same(
    takeRequests().map((request) => [request.method, request.url, request.authorization]),
    [
      ["GET", "/v1/operator/organizations?limit=1", `Bearer ${OPERATOR_TOKEN}`],
      ["GET", "/v1/operator/organizations?limit=1&after=org_1", `Bearer ${OPERATOR_TOKEN}`],
    ],
  );
  const lines = stdout.trimEnd().split("\n");
  t.match(lines[0], /^ID +NAME +STATUS +CREATED$/);
  t.match(lines[1], new RegExp(`^org_1 +One +active +${CREATED_ISO}$`));
  t.match(lines[2], /^org_2 +Two /);
  t.equal(lines.length, 3);

  const json = await llmaas(["--json", "orgs", "list", "--all"]);
  t.same(parseJson(json.stdout), {
    object: "list",
    data: [organization("org_1", "One"), organization("org_2", "Two")],
    first_id: "org_1",
    last_id: "org_2",
    has_more: false,
  });
  takeRequests();
});

void t.test("without --all a list shows one page and says on stderr how to get more", async (t) => {
  const { code, stdout, stderr } = await llmaas(["orgs", "list"]);
  t.equal(code, 0);
  t.same(
    takeRequests().map((request) => request.url),
    ["/v1/operator/organizations"],
  );
  t.match(stdout, /org_1/);
  t.notMatch(stdout, /org_2/);
  t.match(stderr, /--all, or with --after org_1/);

  const json = await llmaas(["orgs", "list", "--after", "org_1", "--json"]);
  t.same(takeRequests()[0]?.url, "/v1/operator/organizations?after=org_1");
  t.same(parseJson(json.stdout), {
    object: "list",
    data: [organization("org_2", "Two")],
    first_id: "org_2",
    last_id: "org_2",
    has_more: false,
  });
});

void t.test("orgs delete", async (t) => {
  const { code, stdout } = await llmaas(["orgs", "delete", "org_1"]);
  t.equal(code, 0);
  t.same(takeRequests(), [
    {
      method: "DELETE",
      url: "/v1/operator/organizations/org_1",
      authorization: `Bearer ${OPERATOR_TOKEN}`,
      body: undefined,
    },
  ]);
  t.match(stdout, /org_1/);
  const json = await llmaas(["orgs", "delete", "org_1", "--json"]);
  t.same(parseJson(json.stdout), { id: "org_1", object: "organization.deleted", deleted: true });
  takeRequests();
});

// ---- Organization (admin) commands ----

void t.test("projects create, list and archive use the admin key", async (t) => {
  const created = await llmaas(["projects", "create", "Web"]);
  t.equal(created.code, 0);
  t.same(takeRequests(), [
    {
      method: "POST",
      url: "/v1/organization/projects",
      authorization: `Bearer ${ADMIN_KEY}`,
      body: { name: "Web" },
    },
  ]);
  t.equal(field(created.stdout, "project"), "proj_new");
  t.equal(field(created.stdout, "created"), CREATED_ISO);
  t.equal(field(created.stdout, "archived"), "-");

  const listed = await llmaas(["projects", "list", "--include-archived", "--limit", "1", "--all"]);
  t.equal(listed.code, 0);
  t.same(
    takeRequests().map((request) => [request.method, request.url, request.authorization]),
    [
      ["GET", "/v1/organization/projects?limit=1&include_archived=true", `Bearer ${ADMIN_KEY}`],
      ["GET", "/v1/organization/projects?limit=1&include_archived=true&after=proj_1", `Bearer ${ADMIN_KEY}`],
    ],
  );
  t.match(
    listed.stdout,
    /^ID +NAME +STATUS +CREATED\nproj_1 +Web +active +2026-11-22T10:00:00Z\nproj_2 +Batch /,
  );

  const createdJson = await llmaas(["projects", "create", "Web", "--json"]);
  t.same(parseJson(createdJson.stdout), project("proj_new", "Web"));
  const listedJson = await llmaas(["projects", "list", "--json"]);
  t.same(parseJson(listedJson.stdout), routes["GET /v1/organization/projects"]?.(new URLSearchParams()));
  t.same(
    takeRequests().map((request) => request.url),
    ["/v1/organization/projects", "/v1/organization/projects"],
  );

  const archived = await llmaas(["projects", "archive", "proj_1", "--json"]);
  t.equal(archived.code, 0);
  t.same(takeRequests(), [
    {
      method: "POST",
      url: "/v1/organization/projects/proj_1/archive",
      authorization: `Bearer ${ADMIN_KEY}`,
      body: undefined,
    },
  ]);
  t.same(parseJson(archived.stdout), {
    ...project("proj_1", "Web"),
    status: "archived",
    archived_at: CREATED_AT + 60,
  });
});

void t.test("keys create for an existing service account", async (t) => {
  const { code, stdout, stderr } = await llmaas([
    "keys",
    "create",
    "--project",
    "proj_1",
    "--service-account",
    "svc_1",
    "--name",
    "ci",
  ]);
  t.equal(code, 0);
  t.same(takeRequests(), [
    {
      method: "POST",
      url: "/v1/organization/projects/proj_1/service_accounts/svc_1/api_keys",
      authorization: `Bearer ${ADMIN_KEY}`,
      body: { name: "ci" },
    },
  ]);
  t.equal(field(stdout, "key id"), "key_sa_1");
  t.equal(field(stdout, "service account"), "svc_1");
  t.equal(field(stdout, "API key"), "sk-proj-FIRSTSECRET");
  t.match(stderr, /shown only this once/);

  const unnamed = await llmaas([
    "keys",
    "create",
    "--project",
    "proj_1",
    "--service-account",
    "svc_1",
    "--json",
  ]);
  t.same(takeRequests()[0]?.body, {}, "the name is optional");
  t.same(parseJson(unnamed.stdout), serviceAccountKey);
});

void t.test("keys create with --name creates a service account with its key", async (t) => {
  const { code, stdout } = await llmaas(["keys", "create", "--project", "proj_1", "--name", "deployer"]);
  t.equal(code, 0);
  t.same(takeRequests(), [
    {
      method: "POST",
      url: "/v1/organization/projects/proj_1/service_accounts",
      authorization: `Bearer ${ADMIN_KEY}`,
      body: { name: "deployer" },
    },
  ]);
  t.equal(field(stdout, "key id"), "key_new");
  t.equal(field(stdout, "service account"), "svc_new");
  t.equal(field(stdout, "API key"), "sk-proj-SECONDSECRET");

  const json = await llmaas(["keys", "create", "--project", "proj_1", "--name", "deployer", "--json"]);
  t.same(parseJson(json.stdout), createdServiceAccount);
  takeRequests();

  const neither = await llmaas(["keys", "create", "--project", "proj_1"]);
  t.equal(neither.code, 2);
  t.match(neither.stderr, /--service-account SA, or --name NAME/);
  t.same(takeRequests(), []);
});

void t.test("keys list shows redacted keys and their owners, across pages with --all", async (t) => {
  const { code, stdout } = await llmaas(["keys", "list", "--project", "proj_1", "--all"]);
  t.equal(code, 0);
  t.same(
    takeRequests().map((request) => [request.method, request.url, request.authorization]),
    [
      ["GET", "/v1/organization/projects/proj_1/api_keys", `Bearer ${ADMIN_KEY}`],
      ["GET", "/v1/organization/projects/proj_1/api_keys?after=key_1", `Bearer ${ADMIN_KEY}`],
    ],
  );
  const lines = stdout.trimEnd().split("\n");
  t.match(lines[0], /^ID +NAME +KEY +OWNER +CREATED +LAST USED$/);
  t.match(lines[1], new RegExp(`^key_1 +ci +sk-proj-\\*\\*\\*abcd +svc_1 +${CREATED_ISO} +-$`));
  t.match(lines[2], /^key_2 /);

  const json = await llmaas(["keys", "list", "--project", "proj_1", "--json"]);
  t.same(
    parseJson(json.stdout),
    routes["GET /v1/organization/projects/proj_1/api_keys"]?.(new URLSearchParams()),
  );
  takeRequests();
});

void t.test("keys rotate sends the grace period only when given, and shows the new secret", async (t) => {
  const { code, stdout, stderr } = await llmaas([
    "keys",
    "rotate",
    "--project",
    "proj_1",
    "key_1",
    "--grace",
    "3600",
  ]);
  t.equal(code, 0);
  t.same(takeRequests(), [
    {
      method: "POST",
      url: "/v1/organization/projects/proj_1/api_keys/key_1/rotate",
      authorization: `Bearer ${ADMIN_KEY}`,
      body: { grace_period_seconds: 3600 },
    },
  ]);
  t.equal(field(stdout, "API key"), "sk-proj-ROTATEDSECRET");
  t.equal(field(stdout, "old secret expires"), "2026-11-22T11:00:00Z");
  t.match(stderr, /shown only this once/);

  const json = await llmaas(["keys", "rotate", "key_1", "--project", "proj_1", "--json"]);
  t.same(takeRequests()[0]?.body, {});
  t.same(parseJson(json.stdout), rotatedKey);
});

void t.test("keys delete", async (t) => {
  const { code, stdout } = await llmaas(["keys", "delete", "--project", "proj_1", "key_1"]);
  t.equal(code, 0);
  t.same(takeRequests(), [
    {
      method: "DELETE",
      url: "/v1/organization/projects/proj_1/api_keys/key_1",
      authorization: `Bearer ${ADMIN_KEY}`,
      body: undefined,
    },
  ]);
  t.match(stdout, /key_1/);
  const json = await llmaas(["keys", "delete", "--project", "proj_1", "key_1", "--json"]);
  t.same(parseJson(json.stdout), {
    object: "organization.project.api_key.deleted",
    id: "key_1",
    deleted: true,
  });
  takeRequests();
});

void t.test("audit filters with event_types[] and project_ids[], as the OpenAI SDK sends them", async (t) => {
  const { code, stdout } = await llmaas([
    "audit",
    "--type",
    "api_key.created",
    "--type",
    "project.archived",
    "--project",
    "proj_1",
    "--limit",
    "1",
    "--all",
  ]);
  t.equal(code, 0);
  const sent = takeRequests();
  t.same(
    sent.map((request) => [request.method, request.url, request.authorization]),
    [
      [
        "GET",
        "/v1/organization/audit_logs?limit=1&event_types%5B%5D=api_key.created&event_types%5B%5D=project.archived&project_ids%5B%5D=proj_1",
        `Bearer ${ADMIN_KEY}`,
      ],
      [
        "GET",
        "/v1/organization/audit_logs?limit=1&event_types%5B%5D=api_key.created&event_types%5B%5D=project.archived&project_ids%5B%5D=proj_1&after=audit_1",
        `Bearer ${ADMIN_KEY}`,
      ],
    ],
  );
  const lines = stdout.trimEnd().split("\n");
  t.match(lines[0], /^TIME +TYPE +ACTOR +PROJECT +ID$/);
  t.match(lines[1], new RegExp(`^${CREATED_ISO} +api_key\\.created +ada@example\\.com +proj_1 +audit_1$`));
  t.match(lines[2], /^2026-11-22T10:01:00Z +project\.archived +key_admin_1 +- +audit_2$/);

  const json = await llmaas(["audit", "--after", "audit_1", "--json"]);
  t.equal(takeRequests()[0]?.url, "/v1/organization/audit_logs?after=audit_1");
  t.same(parseJson(json.stdout), {
    object: "list",
    data: [apiKeyLog],
    first_id: "audit_2",
    last_id: "audit_2",
    has_more: false,
  });
});

// ---- Configuration ----

void t.test("LLMAAS_URL may end with a slash or with /v1", async (t) => {
  for (const url of [`${platformUrl}/`, `${platformUrl}/v1`, `${platformUrl}/v1/`]) {
    const { code } = await llmaas(["projects", "list"], { ...environment, LLMAAS_URL: url });
    t.equal(code, 0, url);
    t.equal(takeRequests()[0]?.url, "/v1/organization/projects", url);
  }
});

void t.test("flags override the environment", async (t) => {
  const { code } = await llmaas(
    ["projects", "list", "--url", platformUrl, "--admin-key", "sk-admin-fromflag0000"],
    {
      LLMAAS_URL: "http://127.0.0.1:9/unused",
      LLMAAS_ADMIN_KEY: ADMIN_KEY,
    },
  );
  t.equal(code, 0);
  t.equal(takeRequests()[0]?.authorization, "Bearer sk-admin-fromflag0000");
});

// ---- Exit codes and errors ----

void t.test("usage errors exit 2 without sending anything", async (t) => {
  const cases: [argv: string[], env: Record<string, string | undefined>, message: RegExp][] = [
    [[], environment, /missing command/],
    [["launch"], environment, /unknown command 'launch'/],
    [["orgs", "rename"], environment, /unknown command 'orgs rename'/],
    [["orgs"], environment, /missing orgs command/],
    [["orgs", "list", "--colour"], environment, /Unknown option '--colour'/],
    [["orgs", "list", "--grace", "5"], environment, /'orgs list' does not take --grace/],
    [["orgs", "create"], environment, /missing <name>/],
    [["orgs", "delete", "org_1", "org_2"], environment, /unexpected argument 'org_2'/],
    [["orgs", "list", "--limit", "0"], environment, /--limit must be an integer of at least 1/],
    [
      ["keys", "rotate", "key_1", "--grace", "soon", "--project", "p"],
      environment,
      /--grace must be an integer/,
    ],
    [["keys", "list"], environment, /missing --project P/],
    [["keys", "list", "--project", "a", "--project", "b"], environment, /--project is given more than once/],
    [["projects", "list"], { LLMAAS_URL: platformUrl }, /LLMAAS_ADMIN_KEY/],
    [["orgs", "list"], { LLMAAS_URL: platformUrl, LLMAAS_ADMIN_KEY: ADMIN_KEY }, /LLMAAS_OPERATOR_TOKEN/],
    [["projects", "list"], { LLMAAS_ADMIN_KEY: ADMIN_KEY }, /LLMAAS_URL/],
    [["projects", "list"], { ...environment, LLMAAS_URL: "ftp://example.com" }, /LLMAAS_URL must be an http/],
  ];
  for (const [argv, env, message] of cases) {
    const { code, stdout, stderr } = await llmaas(argv, env);
    t.equal(code, 2, argv.join(" "));
    t.match(stderr, message, argv.join(" "));
    t.match(stderr, /--help' for usage/);
    t.equal(stdout, "");
  }
  t.same(takeRequests(), []);
});

void t.test("API errors map to exit codes and print the status and the platform's message", async (t) => {
  const cases: [status: number, type: string, code: number][] = [
    [400, "invalid_request_error", 1],
    [409, "invalid_request_error", 1],
    [401, "invalid_api_key", 3],
    [403, "permission_denied", 3],
    [404, "not_found", 4],
    [500, "server_error", 5],
    [503, "server_error", 5],
  ];
  for (const [status, type, expectedCode] of cases) {
    nextFailure = { status, body: openAiError(`Failure ${status}`, type) };
    const { code, stdout, stderr } = await llmaas(["projects", "archive", "proj_1"]);
    t.equal(code, expectedCode, `${status}`);
    t.equal(stderr, `llmaas: ${status} Failure ${status}\n`);
    t.equal(stdout, "");
  }
  takeRequests();
});

void t.test("with --json an API error body is also printed to stdout", async (t) => {
  nextFailure = { status: 404, body: openAiError("No such project: proj_9", "not_found") };
  const { code, stdout, stderr } = await llmaas(["projects", "archive", "proj_9", "--json"]);
  t.equal(code, 4);
  t.same(parseJson(stdout), openAiError("No such project: proj_9", "not_found"));
  t.equal(stderr, "llmaas: 404 No such project: proj_9\n");

  nextFailure = { status: 502, text: "<html>Bad Gateway</html>" };
  const proxied = await llmaas(["projects", "list", "--json"]);
  t.equal(proxied.code, 5);
  t.equal(proxied.stderr, "llmaas: 502 Bad Gateway\n");
  t.same(parseJson(proxied.stdout), {
    error: { message: "Bad Gateway", type: null, param: null, code: null },
  });
  takeRequests();
});

void t.test("an unreachable platform exits 5", async (t) => {
  const closed = createServer();
  closed.listen(0, "127.0.0.1");
  await once(closed, "listening");
  const port = (closed.address() as AddressInfo).port;
  closed.close();
  await once(closed, "close");

  const { code, stdout, stderr } = await llmaas(["orgs", "list"], {
    ...environment,
    LLMAAS_URL: `http://127.0.0.1:${port}`,
  });
  t.equal(code, 5);
  t.equal(stdout, "");
  t.match(stderr, new RegExp(`^llmaas: cannot reach 127\\.0\\.0\\.1:${port}: ECONNREFUSED\\n$`));
});

void t.test("a credential the platform echoes back is redacted", async (t) => {
  const echo = openAiError(`Incorrect API key provided: ${ADMIN_KEY}`, "invalid_api_key");
  nextFailure = { status: 401, body: echo };
  const { code, stdout, stderr } = await llmaas(["projects", "list", "--json"]);
  t.equal(code, 3);
  t.equal(stderr, "llmaas: 401 Incorrect API key provided: [redacted]\n");
  t.notMatch(stdout, ADMIN_KEY);
  t.match(stdout, "[redacted]");

  nextFailure = {
    status: 403,
    body: openAiError(`Key ${FLAG_ADMIN_KEY} may not do this`, "permission_denied"),
  };
  const fromFlag = await llmaas(["projects", "list", "--admin-key", FLAG_ADMIN_KEY]);
  t.equal(fromFlag.code, 3);
  t.equal(fromFlag.stderr, "llmaas: 403 Key [redacted] may not do this\n");
  takeRequests();
});

void t.test("the bin shim runs the CLI under plain node", async (t) => {
  const shim = fileURLToPath(new URL("../bin/llmaas.js", import.meta.url));
  const child = spawn(process.execPath, [shim, "--help"], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  const [exitCode] = (await once(child, "close")) as [number | null];
  t.equal(exitCode, 0);
  t.match(stdout, /usage: llmaas <command>/);
  t.match(stdout, /Exit codes:/);
});

// Runs last: tap runs a file's subtests in order.
void t.test("no output of any run contained a credential", async (t) => {
  t.ok(everyOutput.length > 0);
  for (const credential of credentials) {
    t.notOk(
      everyOutput.some((output) => output.includes(credential)),
      `credential ${credentials.indexOf(credential)} never printed`,
    );
  }
});
