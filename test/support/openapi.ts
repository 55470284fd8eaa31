import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { parse } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
/** The official OpenAI API description, kept beside the repository (../shared). */
export const OPENAPI_PATH = resolve(here, "../../../shared/openai-openapi/openapi.yaml");
/** The platform's own description of its extensions, which refers to OpenAI's by this file name. */
const EXTENSIONS_PATH = resolve(here, "../../docs/openapi.yaml");
const OPENAI_ID = "openai-openapi.yaml";
const EXTENSIONS_ID = "llmaas.yaml";

/**
 * The spec is OpenAPI 3.1 but still carries some 3.0-style `nullable: true`; JSON Schema ignores that keyword, so
 * it is rewritten into a `null` type alternative, as OpenAI's own SDK generators read it.
 */
function upgradeNullable(node: unknown): void {
  if (Array.isArray(node)) {
    node.forEach(upgradeNullable);
    return;
  }
  if (!node || typeof node !== "object") return;
  const schema = node as Record<string, unknown>;
  if (schema.nullable === true) {
    delete schema.nullable;
    if (Array.isArray(schema.enum)) schema.enum = [...(schema.enum as unknown[]), null];
    if (typeof schema.type === "string") schema.type = [schema.type, "null"];
    else if (!schema.type) {
      const copy = { ...schema };
      for (const key of Object.keys(schema)) delete schema[key];
      schema.anyOf = [copy, { type: "null" }];
    }
  }
  for (const value of Object.values(schema)) upgradeNullable(value);
}

let ajv: Ajv2020 | undefined;

function load(): Ajv2020 {
  if (ajv) return ajv;
  const spec = parse(readFileSync(OPENAPI_PATH, "utf8"), { maxAliasCount: -1 }) as {
    components: { schemas: Record<string, unknown> };
  };
  upgradeNullable(spec.components);
  ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  const addFormats = addFormatsModule as unknown as (instance: Ajv2020) => void;
  addFormats(ajv);
  // OpenAI's own format for Unix timestamps; the integer type already says all there is to check.
  ajv.addFormat("unixtime", true);
  ajv.addSchema({ $id: OPENAI_ID, components: spec.components });
  const extensions = parse(readFileSync(EXTENSIONS_PATH, "utf8")) as { components: { schemas: unknown } };
  ajv.addSchema({ $id: EXTENSIONS_ID, components: extensions.components });
  return ajv;
}

const compiled = new Map<string, ValidateFunction>();

export type OpenAISchemaName =
  | "CreateChatCompletionResponse"
  | "CreateChatCompletionStreamResponse"
  | "ListModelsResponse"
  | "Model"
  | "CreateCompletionResponse"
  | "CreateEmbeddingResponse"
  | "ErrorResponse"
  | "Project"
  | "ProjectListResponse"
  | "ProjectServiceAccount"
  | "ProjectServiceAccountListResponse"
  | "ProjectServiceAccountCreateResponse"
  | "ProjectServiceAccountDeleteResponse"
  | "ServiceAccountApiKeyBody"
  | "ProjectApiKey"
  | "ProjectApiKeyListResponse"
  | "ProjectApiKeyDeleteResponse"
  | "AdminApiKey"
  | "AdminApiKeyCreateResponse"
  | "ApiKeyList"
  | "AuditLog"
  | "ListAuditLogsResponse"
  | "User"
  | "UserListResponse"
  | "OrganizationDataRetention"
  | "ProjectDataRetention";

/** The platform's extensions, described in docs/openapi.yaml. */
export type ExtensionSchemaName =
  | "Organization"
  | "OrganizationCreated"
  | "OrganizationList"
  | "OrganizationDeleted"
  | "ProjectApiKeyWithSettings"
  | "ProjectApiKeyRotated"
  | "OrganizationExport";

function errorsOf(document: string, name: string, value: unknown): string[] {
  const ref = `${document}#/components/schemas/${name}`;
  let validate = compiled.get(ref);
  if (!validate) {
    const found = load().getSchema(ref);
    if (!found) throw new Error(`no schema ${name} in ${document}`);
    validate = found;
    compiled.set(ref, validate);
  }
  if (validate(value)) return [];
  return (validate.errors ?? []).map(
    (e) => `${e.instancePath || "/"} ${e.message ?? ""} ${JSON.stringify(e.params)}`,
  );
}

/** Validates a value against OpenAI's `#/components/schemas/<name>`; returns the errors as readable lines. */
export function openapiErrors(name: OpenAISchemaName, value: unknown): string[] {
  return errorsOf(OPENAI_ID, name, value);
}

/** Validates a value against the platform's own description of an extension. */
export function extensionErrors(name: ExtensionSchemaName, value: unknown): string[] {
  return errorsOf(EXTENSIONS_ID, name, value);
}

/**
 * A streamed legacy completion chunk. OpenAI streams `finish_reason: null` until a choice ends, but its schema for
 * `CreateCompletionResponse` (the only one it gives for these chunks) omits null; only that is let through.
 */
export function completionChunkErrors(chunk: unknown): string[] {
  const copy = structuredClone(chunk) as { choices?: Array<{ finish_reason?: unknown }> };
  for (const choice of copy.choices ?? []) if (choice.finish_reason === null) choice.finish_reason = "length";
  return openapiErrors("CreateCompletionResponse", copy);
}
