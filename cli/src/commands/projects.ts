import { apiPath } from "../client.js";
import { defineCommand, type Command, type Invocation } from "../command.js";
import { cell, formatFields, formatJson, formatTime } from "../output.js";
import { listOptions, listSynopsis, showList } from "./listing.js";

interface Project {
  id: string;
  object: "organization.project";
  name: string;
  created_at: number;
  archived_at: number | null;
  status: string;
}

const projectsPath = "/v1/organization/projects";

function showProject({ json, stdout }: Invocation, project: Project): void {
  if (json) {
    stdout.write(formatJson(project));
    return;
  }
  stdout.write(
    formatFields([
      ["project", cell(project.id)],
      ["name", cell(project.name)],
      ["status", cell(project.status)],
      ["created", formatTime(project.created_at)],
      ["archived", formatTime(project.archived_at)],
    ]),
  );
}

const createProject = defineCommand({
  path: ["projects", "create"],
  synopsis: "<name>",
  summary: "create a project",
  credential: "admin",
  operands: ["name"],
  options: [],
  async execute(invocation) {
    const [name] = invocation.operands;
    const project = (await invocation.connect().request("POST", projectsPath, { body: { name } })) as Project;
    showProject(invocation, project);
  },
});

const listProjects = defineCommand({
  path: ["projects", "list"],
  synopsis: `[--include-archived] ${listSynopsis}`,
  summary: "list the organization's projects, active ones only unless --include-archived",
  credential: "admin",
  operands: [],
  options: ["include-archived", ...listOptions],
  async execute(invocation) {
    const filters = new URLSearchParams();
    if (invocation.options.flag("include-archived")) filters.set("include_archived", "true");
    await showList<Project>(invocation, projectsPath, filters, {
      header: ["ID", "NAME", "STATUS", "CREATED"],
      row: (project) => [
        cell(project.id),
        cell(project.name),
        cell(project.status),
        formatTime(project.created_at),
      ],
    });
  },
});

const archiveProject = defineCommand({
  path: ["projects", "archive"],
  synopsis: "<project_id>",
  summary: "archive a project",
  credential: "admin",
  operands: ["project_id"],
  options: [],
  async execute(invocation) {
    const [projectId] = invocation.operands;
    const project = (await invocation
      .connect()
      .request("POST", apiPath`/v1/organization/projects/${projectId}/archive`)) as Project;
    showProject(invocation, project);
  },
});

export const projectCommands: readonly Command[] = [createProject, listProjects, archiveProject];
