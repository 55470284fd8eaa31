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

interface MediaType {
  schema?: unknown;
}
interface Operation {
  responses?: Record<string, { content?: Record<string, MediaType> }>;
}
type Paths = Record<string, Record<string, Operation>>;

interface Document {
  components: { schemas: Record<string, unknown> };
  paths: Paths;
}

/** A path of one description, as a pattern that matches the URLs it describes. */
interface Route {
  document: string;
  template: string;
  pattern: RegExp;
  operations: Record<string, Operation>;
}

let ajv: Ajv2020 | undefined;
let routes: Route[] = [];

function routesOf(document: string, paths: Paths): Route[] {
  return Object.entries(paths).map(([template, operations]) => ({
    document,
    template,
    pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+")}$`),
    operations,
  }));
}

function load(): Ajv2020 {
  if (ajv) return ajv;
  const spec = parse(readFileSync(OPENAPI_PATH, "utf8"), { maxAliasCount: -1 }) as Document;
  upgradeNullable(spec.components);
  upgradeNullable(spec.paths);
  ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  const addFormats = addFormatsModule as unknown as (instance: Ajv2020) => void;
  addFormats(ajv);
  // OpenAI's own format for Unix timestamps; the integer type already says all there is to check.
  ajv.addFormat("unixtime", true);
  ajv.addSchema({ $id: OPENAI_ID, components: spec.components, paths: spec.paths });
  const extensions = parse(readFileSync(EXTENSIONS_PATH, "utf8")) as Document;
  ajv.addSchema({ $id: EXTENSIONS_ID, components: extensions.components, paths: extensions.paths });
  // The platform's description first: where it describes a method OpenAI's also has, it is the one served.
  routes = [...routesOf(EXTENSIONS_ID, extensions.paths), ...routesOf(OPENAI_ID, spec.paths)];
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
  | "CreateTranscriptionResponseJson"
  | "CreateTranscriptionResponseVerboseJson"
  | "CreateTranslationResponseJson"
  | "CreateTranslationResponseVerboseJson"
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
  | "ProjectDataRetention"
  | "ProjectRateLimit"
  | "ProjectRateLimitListResponse"
  | "ProjectModelPermissions"
  | "ProjectModelPermissionsDeleteResponse"
  | "OrganizationSpendLimitResource"
  | "ProjectSpendLimitResource"
  | "OrganizationSpendLimitDeletedResource"
  | "ProjectSpendLimitDeletedResource";

/** The platform's extensions, described in docs/openapi.yaml. */
export type ExtensionSchemaName =
  | "Organization"
  | "OrganizationCreated"
  | "OrganizationList"
  | "OrganizationDeleted"
  | "ProjectApiKeyWithSettings"
  | "ProjectApiKeyRotated"
  | "ProjectGuardrail"
  | "OrganizationExport";

function errorsOf(document: string, name: string, value: unknown): string[] {
  return errorsAt(`${document}#/components/schemas/${name}`, value);
}

function errorsAt(ref: string, value: unknown): string[] {
  let validate = compiled.get(ref);
  if (!validate) {
    const found = load().getSchema(ref);
    if (!found) throw new Error(`no schema at ${ref}`);
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
 * OpenAI answers `encoding_format: "base64"` (its SDK's default) with each vector as a base64 string of float32s, but
 * its description only has the float array: the vectors are decoded before the answer is checked.
 */
function withDecodedEmbeddings(body: unknown): unknown {
  const copy = structuredClone(body) as { data?: Array<{ embedding?: unknown }> };
  for (const item of copy.data ?? []) {
    if (typeof item.embedding === "string") {
      const bytes = Buffer.from(item.embedding, "base64");
      item.embedding = Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
    }
  }
  return copy;
}

/** A JSON pointer token, as a URI fragment carries it. */
function pointerToken(text: string): string {
  return encodeURIComponent(text.replaceAll("~", "~0").replaceAll("/", "~1"));
}

/**
 * OpenAI describes a transcription's JSON answer as `oneOf` its json and verbose_json schemas, but the json one
 * requires only `text` and allows more, so every verbose_json answer matches both and `oneOf` refuses it. Each answer
 * is checked against the schema of the format it is: verbose_json has a `duration`.
 */
function transcriptErrors(path: string, body: unknown): string[] {
  const verbose = typeof body === "object" && body !== null && "duration" in body;
  const kind = path === "/audio/transcriptions" ? "Transcription" : "Translation";
  return openapiErrors(`Create${kind}Response${verbose ? "VerboseJson" : "Json"}`, body);
}

/**
 * Checks a JSON answer against the description of its route, in OpenAI's description or the platform's: a success
 * against the schema that operation names for it, an error against OpenAI's `ErrorResponse`. Routes neither
 * describes, and answers that are not JSON (SSE streams), pass. Returns what does not match, as readable lines.
 */
export function responseErrors(method: string, url: string, status: number, body: unknown): string[] {
  load();
  const path = new URL(url).pathname.replace(/^\/v1(?=\/)/, "");
  const verb = method.toLowerCase();
  const route = routes.find((candidate) => candidate.pattern.test(path) && candidate.operations[verb]);
  if (!route) return [];
  if (status >= 400) return openapiErrors("ErrorResponse", body);
  if (path === "/embeddings") return openapiErrors("CreateEmbeddingResponse", withDecodedEmbeddings(body));
  if (path === "/audio/transcriptions" || path === "/audio/translations") return transcriptErrors(path, body);
  const content = route.operations[verb]?.responses?.[String(status)]?.content?.["application/json"];
  if (!content?.schema) return [];
  const pointer = [
    "paths",
    route.template,
    verb,
    "responses",
    String(status),
    "content",
    "application/json",
    "schema",
  ];
  return errorsAt(`${route.document}#/${pointer.map(pointerToken).join("/")}`, body);
}

/** Fails loudly, naming the route, when an answer does not match its description. */
export function checkResponse(method: string, url: string, status: number, body: unknown): void {
  const errors = responseErrors(method, url, status, body);
  if (errors.length > 0) {
    throw new Error(
      `${method} ${new URL(url).pathname} answered ${status} off its OpenAPI schema:\n${errors.join("\n")}`,
    );
  }
}

/** A fetch that checks every JSON answer against its route's description (see `checkResponse`). */
export function schemaCheckingFetch(inner: typeof fetch = fetch): typeof fetch {
  return async (input, init) => {
    const response = await inner(input, init);
    if (response.headers.get("content-type")?.includes("application/json")) {
      const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
      const method = init?.method ?? (input instanceof Request ? input.method : "GET");
      checkResponse(method, url, response.status, await response.clone().json());
    }
    return response;
  };
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
