import { apiPath } from "../client.js";
import { defineCommand, type Command } from "../command.js";
import { cell, formatFields, formatJson, formatTime } from "../output.js";
import { listOptions, listSynopsis, showList } from "./listing.js";

interface AdminApiKey {
  object: "organization.admin_api_key";
  id: string;
  name: string | null;
  redacted_value: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
  /** The secret: present only in the creation response. */
  value?: string;
}

interface Organization {
  id: string;
  object: "organization";
  name: string;
  status: string;
  created_at: number;
  admin_api_key?: AdminApiKey;
}

interface DeletedOrganization {
  id: string;
  object: "organization.deleted";
  deleted: boolean;
}

const organizationsPath = "/v1/operator/organizations";

const createOrganization = defineCommand({
  path: ["orgs", "create"],
  synopsis: "<name>",
  summary: "create an organization and its first admin API key",
  credential: "operator",
  operands: ["name"],
  options: [],
  async execute({ operands: [name], json, stdout, stderr, connect }) {
    const organization = (await connect().request("POST", organizationsPath, {
      body: { name },
    })) as Organization;
    if (json) {
      stdout.write(formatJson(organization));
      return;
    }
    const adminKey = organization.admin_api_key;
    stdout.write(
      formatFields([
        ["organization", cell(organization.id)],
        ["name", cell(organization.name)],
        ["status", cell(organization.status)],
        ["created", formatTime(organization.created_at)],
        // Not labelled "admin key id": the secret's line should be the only one starting with "admin key".
        ["key id", cell(adminKey?.id)],
        ["admin key", cell(adminKey?.value)],
      ]),
    );
    stderr.write("llmaas: the admin key is shown only this once; store it now\n");
  },
});

const listOrganizations = defineCommand({
  path: ["orgs", "list"],
  synopsis: listSynopsis,
  summary: "list organizations",
  credential: "operator",
  operands: [],
  options: listOptions,
  async execute(invocation) {
    await showList<Organization>(invocation, organizationsPath, new URLSearchParams(), {
      header: ["ID", "NAME", "STATUS", "CREATED"],
      row: (organization) => [
        cell(organization.id),
        cell(organization.name),
        cell(organization.status),
        formatTime(organization.created_at),
      ],
    });
  },
});

const deleteOrganization = defineCommand({
  path: ["orgs", "delete"],
  synopsis: "<org_id>",
  summary: "delete an organization",
  credential: "operator",
  operands: ["org_id"],
  options: [],
  async execute({ operands: [organizationId], json, stdout, connect }) {
    const deleted = (await connect().request(
      "DELETE",
      apiPath`/v1/operator/organizations/${organizationId}`,
    )) as DeletedOrganization;
    stdout.write(json ? formatJson(deleted) : `deleted organization ${cell(deleted.id)}\n`);
  },
});

export const organizationCommands: readonly Command[] = [
  createOrganization,
  listOrganizations,
  deleteOrganization,
];
