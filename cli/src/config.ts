import type { Arguments, StringOptionName } from "./args.js";
import { UsageError } from "./errors.js";

export type Environment = Record<string, string | undefined>;

/** Which secret a command authenticates with. */
export type CredentialKind = "operator" | "admin";

export const credentialSources = {
  operator: { option: "operator-token", variable: "LLMAAS_OPERATOR_TOKEN" },
  admin: { option: "admin-key", variable: "LLMAAS_ADMIN_KEY" },
} as const;

export interface Connection {
  /** Origin plus any path prefix, without a trailing slash or `/v1`: API paths are appended to it. */
  baseUrl: string;
  token: string;
}

interface Setting {
  value: string;
  /** How to name the setting in an error message. */
  source: string;
}

/** A flag overrides the environment variable; an empty value counts as unset. */
function setting(
  args: Arguments,
  option: StringOptionName,
  env: Environment,
  variable: string,
): Setting | undefined {
  const flagValue = args.string(option)?.trim();
  if (flagValue) return { value: flagValue, source: `--${option}` };
  const envValue = env[variable]?.trim();
  if (envValue) return { value: envValue, source: variable };
  return undefined;
}

function normalizeBaseUrl(raw: string, source: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // The value is not echoed: whatever was typed there could be anything, a pasted key included.
    throw new UsageError(`${source} is not a valid URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`${source} must be an http:// or https:// URL`);
  }
  if (url.username || url.password) {
    throw new UsageError(`${source} must not contain a user name or password; use the credential variables`);
  }
  if (url.search || url.hash) throw new UsageError(`${source} must not have a query or fragment`);
  // People paste either the platform's address or the OpenAI-style base URL ending in /v1; accept both.
  const path = url.pathname.replace(/\/+$/, "").replace(/\/v1$/, "");
  return url.origin + path;
}

/** Resolves the URL and the credential a command needs, from flags first, then the environment. */
export function resolveConnection(kind: CredentialKind, args: Arguments, env: Environment): Connection {
  const url = setting(args, "url", env, "LLMAAS_URL");
  if (url === undefined) throw new UsageError("missing platform URL: set LLMAAS_URL or pass --url");
  const baseUrl = normalizeBaseUrl(url.value, url.source);

  const { option, variable } = credentialSources[kind];
  const token = setting(args, option, env, variable);
  if (token === undefined) throw new UsageError(`missing credential: set ${variable} or pass --${option}`);
  // fetch rejects such a header value with an error that quotes it, and with it the secret.
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  if (/[\s\u0000-\u001f\u007f]/.test(token.value)) {
    throw new UsageError(`${token.source} contains whitespace or control characters`);
  }
  return { baseUrl, token: token.value };
}
