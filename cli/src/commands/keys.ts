import { apiPath, type ApiClient } from "../client.js";
import { defineCommand, type Command } from "../command.js";
import { UsageError } from "../errors.js";
import { cell, formatFields, formatJson, formatTime } from "../output.js";
import { listOptions, listSynopsis, showList } from "./listing.js";

interface CreatedApiKey {
  object: "organization.project.service_account.api_key";
  id: string;
  name: string | null;
  created_at: number;
  /** The secret, shown this once. */
  value: string;
}

interface ServiceAccount {
  id: string;
  name: string;
  role: string;
  created_at: number;
}

interface CreatedServiceAccount extends ServiceAccount {
  object: "organization.project.service_account";
  /** null only when asked for the account alone (`create_service_account_only`), which this CLI never does. */
  api_key: CreatedApiKey | null;
}

interface ApiKeyOwner {
  type: "service_account" | "user";
  service_account?: ServiceAccount;
  user?: { id: string; email?: string | null };
}

interface ProjectApiKey {
  object: "organization.project.api_key";
  id: string;
  name: string | null;
  redacted_value: string;
  created_at: number;
  last_used_at: number | null;
  expires_at?: number | null;
  owner?: ApiKeyOwner;
}

interface RotatedApiKey extends ProjectApiKey {
  /** The new secret, shown this once. */
  value: string;
  /** When the replaced secret stops working: the end of the grace period, or the rotation itself without one. */
  previous_secret_expires_at?: number | null;
}

interface DeletedApiKey {
  object: "organization.project.api_key.deleted";
  id: string;
  deleted: boolean;
}

const SHOWN_ONCE = "llmaas: the API key is shown only this once; store it now\n";

/** Ids rather than names: an id is what `keys create --service-account` takes. */
function ownerOf(key: ProjectApiKey): string {
  const owner = key.owner;
  if (owner?.type === "service_account") return cell(owner.service_account?.id);
  if (owner?.type === "user") return cell(owner.user?.email ?? owner.user?.id);
  return "-";
}

interface KeyCreation {
  /** What the platform answered, for --json. */
  response: CreatedApiKey | CreatedServiceAccount;
  key: CreatedApiKey | null;
  serviceAccountId: string;
}

async function createServiceAccountKey(
  api: ApiClient,
  projectId: string,
  serviceAccountId: string,
  name: string | undefined,
): Promise<KeyCreation> {
  const key = (await api.request(
    "POST",
    apiPath`/v1/organization/projects/${projectId}/service_accounts/${serviceAccountId}/api_keys`,
    { body: name === undefined ? {} : { name } },
  )) as CreatedApiKey;
  return { response: key, key, serviceAccountId };
}

/** A new service account comes with its first API key. */
async function createServiceAccount(api: ApiClient, projectId: string, name: string): Promise<KeyCreation> {
  const serviceAccount = (await api.request(
    "POST",
    apiPath`/v1/organization/projects/${projectId}/service_accounts`,
    { body: { name } },
  )) as CreatedServiceAccount;
  return { response: serviceAccount, key: serviceAccount.api_key, serviceAccountId: serviceAccount.id };
}

const createKey = defineCommand({
  path: ["keys", "create"],
  synopsis: "--project P (--service-account SA [--name NAME] | --name NAME)",
  summary: "create an API key for service account SA, or create service account NAME with its first key",
  credential: "admin",
  operands: [],
  options: ["project", "service-account", "name"],
  async execute({ options, json, stdout, stderr, connect }) {
    const projectId = options.requiredString("project", "P");
    const serviceAccountId = options.string("service-account");
    const name = options.string("name");
    let create: (api: ApiClient) => Promise<KeyCreation>;
    if (serviceAccountId !== undefined) {
      create = (api) => createServiceAccountKey(api, projectId, serviceAccountId, name);
    } else if (name !== undefined) {
      create = (api) => createServiceAccount(api, projectId, name);
    } else {
      throw new UsageError(
        "give --service-account SA, or --name NAME to create a new service account",
        "keys",
      );
    }
    const created = await create(connect());

    if (json) {
      stdout.write(formatJson(created.response));
      return;
    }
    stdout.write(
      formatFields([
        ["key id", cell(created.key?.id)],
        ["service account", cell(created.serviceAccountId)],
        ["API key", cell(created.key?.value)],
      ]),
    );
    if (created.key) stderr.write(SHOWN_ONCE);
  },
});

const listKeys = defineCommand({
  path: ["keys", "list"],
  synopsis: `--project P ${listSynopsis}`,
  summary: "list a project's API keys (redacted)",
  credential: "admin",
  operands: [],
  options: ["project", ...listOptions],
  async execute(invocation) {
    const projectId = invocation.options.requiredString("project", "P");
    await showList<ProjectApiKey>(
      invocation,
      apiPath`/v1/organization/projects/${projectId}/api_keys`,
      new URLSearchParams(),
      {
        header: ["ID", "NAME", "KEY", "OWNER", "CREATED", "LAST USED"],
        row: (key) => [
          cell(key.id),
          cell(key.name),
          cell(key.redacted_value),
          ownerOf(key),
          formatTime(key.created_at),
          formatTime(key.last_used_at),
        ],
      },
    );
  },
});

const rotateKey = defineCommand({
  path: ["keys", "rotate"],
  synopsis: "--project P <key_id> [--grace SECONDS]",
  summary: "replace a key's secret; with --grace the old secret keeps working for SECONDS more",
  credential: "admin",
  operands: ["key_id"],
  options: ["project", "grace"],
  async execute({ operands: [keyId], options, json, stdout, stderr, connect }) {
    const projectId = options.requiredString("project", "P");
    const graceSeconds = options.integer("grace", 0);
    const key = (await connect().request(
      "POST",
      apiPath`/v1/organization/projects/${projectId}/api_keys/${keyId}/rotate`,
      // Without --grace the platform's default applies, so the field is left out rather than sent as 0.
      { body: graceSeconds === undefined ? {} : { grace_period_seconds: graceSeconds } },
    )) as RotatedApiKey;
    if (json) {
      stdout.write(formatJson(key));
      return;
    }
    const fields: [string, string][] = [
      ["key id", cell(key.id)],
      ["name", cell(key.name)],
      ["API key", cell(key.value)],
    ];
    if (typeof key.previous_secret_expires_at === "number") {
      fields.push(["old secret expires", formatTime(key.previous_secret_expires_at)]);
    }
    stdout.write(formatFields(fields));
    stderr.write(SHOWN_ONCE);
  },
});

const deleteKey = defineCommand({
  path: ["keys", "delete"],
  synopsis: "--project P <key_id>",
  summary: "delete an API key",
  credential: "admin",
  operands: ["key_id"],
  options: ["project"],
  async execute({ operands: [keyId], options, json, stdout, connect }) {
    const projectId = options.requiredString("project", "P");
    const deleted = (await connect().request(
      "DELETE",
      apiPath`/v1/organization/projects/${projectId}/api_keys/${keyId}`,
    )) as DeletedApiKey;
    stdout.write(json ? formatJson(deleted) : `deleted API key ${cell(deleted.id)}\n`);
  },
});

export const keyCommands: readonly Command[] = [createKey, listKeys, rotateKey, deleteKey];
