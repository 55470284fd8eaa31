import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { parse } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
/** The official OpenAI API description, kept beside the repository (../shared). */
export const OPENAPI_PATH = resolve(here, "../../../shared/openai-openapi/openapi.yaml");

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
  ajv.addSchema({ $id: "openai", components: spec.components });
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
  | "ErrorResponse";

/** Validates a value against `#/components/schemas/<name>`; returns the errors as readable lines. */
export function openapiErrors(name: OpenAISchemaName, value: unknown): string[] {
  let validate = compiled.get(name);
  if (!validate) {
    const found = load().getSchema(`openai#/components/schemas/${name}`);
    if (!found) throw new Error(`no schema ${name} in ${OPENAPI_PATH}`);
    validate = found;
    compiled.set(name, validate);
  }
  if (validate(value)) return [];
  return (validate.errors ?? []).map(
    (e) => `${e.instancePath || "/"} ${e.message ?? ""} ${JSON.stringify(e.params)}`,
  );
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
