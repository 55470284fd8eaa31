import type { z } from "zod";
import { PlatformError } from "@llmaas/contracts";

/** `["messages", 0, "content"]` → `messages[0].content`, the way OpenAI names a parameter. */
export function paramName(path: readonly PropertyKey[]): string | null {
  let name = "";
  for (const segment of path) {
    if (typeof segment === "number") name += `[${segment}]`;
    else name += name ? `.${String(segment)}` : String(segment);
  }
  return name || null;
}

/** Parses a request body; the first problem becomes a 400 that names the offending parameter. */
export function parseBody<Schema extends z.ZodType>(schema: Schema, body: unknown): z.output<Schema> {
  if (body === undefined || body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new PlatformError(
      "invalid_request",
      "The request body must be a JSON object (Content-Type: application/json).",
    );
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (!issue) throw new PlatformError("invalid_request", "Invalid request body.");
  if (issue.code === "unrecognized_keys") {
    const param = paramName([...issue.path, issue.keys[0] ?? ""]);
    throw new PlatformError(
      "invalid_request",
      `Unrecognized request argument supplied: ${issue.keys.join(", ")}`,
      param,
    );
  }
  throw invalidParameter(issue, "value for", "body");
}

/** A query string, parsed like a body: its first problem is a 400 naming the parameter. Unknown ones are ignored. */
export function parseQuery<Schema extends z.ZodType>(schema: Schema, query: unknown): z.output<Schema> {
  const result = schema.safeParse(query ?? {});
  if (result.success) return result.data;
  throw invalidParameter(result.error.issues[0], "query parameter", "query");
}

function invalidParameter(issue: z.core.$ZodIssue | undefined, what: string, whole: string): PlatformError {
  const param = issue ? paramName(issue.path) : null;
  return new PlatformError(
    "invalid_request",
    `Invalid ${what} '${param ?? whole}': ${issue?.message ?? "invalid"}`,
    param,
  );
}
