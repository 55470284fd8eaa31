// infra/up's demo customer, made through the public API as a customer's own tools would: the operator creates the
// organization (once), its admin key the project and the service account (once). Secrets are stored nowhere, so
// each start issues a fresh admin key and a fresh API key, named "infra/up", and prints them as JSON on stdout.
//
//   node infra/lib/demo-tenant.js <gateway base URL, e.g. http://127.0.0.1:8080> (operator token in OPERATOR_TOKEN)
/* global console, fetch */
import process from "node:process";

const ORGANIZATION = "Demo organization";
const PROJECT = "Demo project";
const APPLICATION = "Demo application";
const KEY_NAME = "infra/up";

const baseURL = `${process.argv[2]}/v1`;
const operatorToken = process.env.OPERATOR_TOKEN;
if (!process.argv[2] || !operatorToken) {
  console.error("usage: OPERATOR_TOKEN=... node infra/lib/demo-tenant.js <gateway base URL>");
  process.exit(2);
}

async function call(credential, method, path, body) {
  const response = await fetch(`${baseURL}${path}`, {
    method,
    headers: { authorization: `Bearer ${credential}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${json?.error?.message ?? ""}`);
  return json;
}

/** The first item named `name` in a cursor-paged list. */
async function findByName(credential, path, name) {
  let after = "";
  for (;;) {
    const page = await call(credential, "GET", `${path}?limit=100${after ? `&after=${after}` : ""}`);
    const found = page.data.find((item) => item.name === name);
    if (found || !page.has_more) return found;
    after = page.last_id;
  }
}

const existing = await findByName(operatorToken, "/operator/organizations", ORGANIZATION);
const organizationId = existing
  ? existing.id
  : (await call(operatorToken, "POST", "/operator/organizations", { name: ORGANIZATION })).id;
const adminKey = (
  await call(operatorToken, "POST", `/operator/organizations/${organizationId}/admin_api_keys`, {
    name: KEY_NAME,
  })
).value;

const project =
  (await findByName(adminKey, "/organization/projects", PROJECT)) ??
  (await call(adminKey, "POST", "/organization/projects", { name: PROJECT }));
const accountsPath = `/organization/projects/${project.id}/service_accounts`;
const account = await findByName(adminKey, accountsPath, APPLICATION);
const apiKey = account
  ? (await call(adminKey, "POST", `${accountsPath}/${account.id}/api_keys`, { name: KEY_NAME })).value
  : (await call(adminKey, "POST", accountsPath, { name: APPLICATION })).api_key.value;

console.log(JSON.stringify({ organizationId, adminKey, projectId: project.id, apiKey }));
