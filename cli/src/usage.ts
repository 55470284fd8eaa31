import type { Command } from "./command.js";
import type { CredentialKind } from "./config.js";

const credentialHeadings: Record<CredentialKind, string> = {
  operator: "Platform operator commands, authenticated with LLMAAS_OPERATOR_TOKEN:",
  admin: "Organization commands (OpenAI Administration API), authenticated with LLMAAS_ADMIN_KEY:",
};

const commonOptions = `Options of every command:
  --url URL                 the platform's base URL (default: LLMAAS_URL), e.g. http://127.0.0.1:8080
  --operator-token TOKEN    default: LLMAAS_OPERATOR_TOKEN
  --admin-key KEY           default: LLMAAS_ADMIN_KEY
  --json                    print the API's JSON response instead of a table
  -h, --help                show this help
Prefer the environment variables to the credential options: other users can see command lines.
Times are ISO-8601 UTC; "-" means none.`;

const exitCodes = `Exit codes:
  0  success
  1  the API refused the request for another reason (400, 409, 410, 422, 429, ...)
  2  usage error: unknown command or option, missing argument or credential
  3  authentication or permission failure (401, 403)
  4  not found (404)
  5  the platform is unreachable or failed (network error, 30 s timeout, 5xx)`;

function describe(command: Command): string {
  return `  llmaas ${[...command.path, command.synopsis].join(" ").trim()}\n      ${command.summary}`;
}

/** The usage text for all commands, or for one group's. */
export function usage(commands: readonly Command[]): string {
  const sections = (["operator", "admin"] as const).flatMap((kind) => {
    const section = commands.filter((command) => command.credential === kind);
    return section.length === 0 ? [] : [[credentialHeadings[kind], ...section.map(describe)].join("\n")];
  });
  return ["usage: llmaas <command> [options]", ...sections, commonOptions, exitCodes].join("\n\n") + "\n";
}
