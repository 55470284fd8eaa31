import { PlatformError, type JsonSchema } from "@llmaas/contracts";

/**
 * Grammar-constrained decoding (llama.cpp GBNF through node-llama-cpp) enforces a subset of JSON Schema. A schema
 * outside it is refused up front with the features named, rather than half-enforced: a client relying on
 * `pattern` or `minimum` must know they would not hold.
 */
const ANNOTATIONS = new Set([
  "title",
  "$schema",
  "$id",
  "$comment",
  "examples",
  "default",
  "deprecated",
  "readOnly",
  "writeOnly",
]);
const COMMON = new Set(["type", "description", "const", "enum", "oneOf", "anyOf", "$defs", "$ref"]);
const BY_TYPE: Record<string, Set<string>> = {
  string: new Set(["minLength", "maxLength", "format"]),
  object: new Set(["properties", "required", "additionalProperties", "minProperties", "maxProperties"]),
  array: new Set(["items", "prefixItems", "minItems", "maxItems"]),
};
const TYPES = new Set(["string", "number", "integer", "boolean", "null", "object", "array"]);
const FORMATS = new Set(["date-time", "date", "time"]);

interface Problem {
  path: string;
  feature: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function normalise(schema: unknown, path: string, problems: Problem[]): JsonSchema {
  if (!isRecord(schema)) {
    problems.push({ path, feature: "a schema that is not an object" });
    return {};
  }
  const types = (
    Array.isArray(schema.type) ? schema.type : schema.type === undefined ? [] : [schema.type]
  ) as unknown[];
  for (const type of types) {
    if (typeof type !== "string" || !TYPES.has(type))
      problems.push({ path: `${path}/type`, feature: `type ${String(type)}` });
  }
  const allowed = new Set(COMMON);
  // Without a type, object/array/string keywords still describe the value; allow them as their type would.
  for (const type of types.length ? types : Object.keys(BY_TYPE)) {
    for (const keyword of BY_TYPE[String(type)] ?? []) allowed.add(keyword);
  }
  const result: JsonSchema = {};
  for (const [keyword, value] of Object.entries(schema)) {
    const at = `${path}/${keyword}`;
    if (ANNOTATIONS.has(keyword)) continue;
    if (!allowed.has(keyword)) {
      problems.push({ path: at, feature: keyword });
      continue;
    }
    switch (keyword) {
      case "properties":
      case "$defs":
        result[keyword] = isRecord(value)
          ? Object.fromEntries(
              Object.entries(value).map(([k, v]) => [k, normalise(v, `${at}/${k}`, problems)]),
            )
          : (problems.push({ path: at, feature: `${keyword} that is not an object` }), {});
        break;
      case "items":
      case "additionalProperties":
        result[keyword] = typeof value === "boolean" ? value : normalise(value, at, problems);
        break;
      case "prefixItems":
      case "oneOf":
      case "anyOf": {
        const list = Array.isArray(value) ? value : [];
        if (!Array.isArray(value)) problems.push({ path: at, feature: `${keyword} that is not an array` });
        // For generation the two mean the same: the output must match one of the alternatives.
        result[keyword === "anyOf" ? "oneOf" : keyword] = list.map((item, i) =>
          normalise(item, `${at}/${i}`, problems),
        );
        break;
      }
      case "$ref":
        if (typeof value !== "string" || !value.startsWith("#/$defs/")) {
          problems.push({ path: at, feature: `$ref ${String(value)} (only #/$defs/... references)` });
        }
        result[keyword] = value;
        break;
      case "format":
        if (typeof value !== "string" || !FORMATS.has(value))
          problems.push({ path: at, feature: `format ${String(value)}` });
        else result[keyword] = value;
        break;
      default:
        result[keyword] = value;
    }
  }
  return result;
}

/** The schema in the form the grammar builder takes, or a 400 naming every unsupported feature and where. */
export function grammarSchema(schema: unknown, param: string): JsonSchema {
  const problems: Problem[] = [];
  const normalised = normalise(schema, "#", problems);
  if (problems.length > 0) {
    const listed = problems.map((p) => `${p.feature} at ${p.path}`).join("; ");
    throw new PlatformError(
      "invalid_request",
      `The JSON schema uses features that cannot be enforced during generation: ${listed}. Supported: type, ` +
        `properties, required, additionalProperties, items, prefixItems, enum, const, oneOf/anyOf, $defs/$ref, ` +
        `min/maxLength, min/maxItems, min/maxProperties, format date-time/date/time.`,
      param,
    );
  }
  return normalised;
}
