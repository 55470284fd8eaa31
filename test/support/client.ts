import OpenAI from "openai";
import { checkResponse, schemaCheckingFetch } from "./openapi.js";
import type { Stack } from "./stack.js";

/**
 * The SDKs' fetch: every JSON answer is checked against its route's OpenAPI schema, and every secret it shows
 * (keys are shown once) is remembered for the stack's leak check.
 */
function testFetch(stack: Stack): typeof fetch {
  const checked = schemaCheckingFetch();
  return async (input, init) => {
    const response = await checked(input, init);
    if (response.headers.get("content-type")?.includes("application/json")) {
      stack.secrets.collect(await response.clone().json());
    }
    return response;
  };
}

export function openaiClient(stack: Stack, apiKey = stack.apiKey, baseURL = stack.baseURL): OpenAI {
  return new OpenAI({ apiKey, baseURL, maxRetries: 0, timeout: 60_000, fetch: testFetch(stack) });
}

/** What the server sent for a list page: the SDK keeps it, as `body`, beside the items it hands out. */
export function pageBody(page: object): unknown {
  return (page as unknown as { body: unknown }).body;
}

/** The SDK as applications use it, with nothing added: for benches, whose timings a check per answer would skew. */
export function plainClient(stack: Stack): OpenAI {
  return new OpenAI({ apiKey: stack.apiKey, baseURL: stack.baseURL, maxRetries: 0, timeout: 60_000 });
}

/** OpenAI's SDK as an administration tool uses it: `adminAPIKey`, `client.admin.organization.*`. */
export function adminClient(stack: Stack, adminKey = stack.adminKey, baseURL = stack.baseURL): OpenAI {
  return new OpenAI({
    adminAPIKey: adminKey,
    apiKey: null,
    baseURL,
    maxRetries: 0,
    timeout: 60_000,
    fetch: testFetch(stack),
  });
}

/**
 * A raw HTTP call, for what the SDK would not send (bad JSON, no key) or would hide (status, headers). A JSON answer
 * is checked against its route's OpenAPI schema like any other.
 */
export async function rawRequest(
  stack: Stack,
  path: string,
  init: {
    method?: string;
    body?: string;
    headers?: Record<string, string>;
    apiKey?: string | null;
    baseURL?: string;
  } = {},
): Promise<{ status: number; headers: Headers; text: string; json: unknown }> {
  const headers: Record<string, string> = { "content-type": "application/json", ...init.headers };
  const apiKey = init.apiKey === undefined ? stack.apiKey : init.apiKey;
  if (apiKey !== null) headers.authorization = `Bearer ${apiKey}`;
  const url = `${init.baseURL ?? stack.baseURL}${path}`;
  const method = init.method ?? (init.body === undefined ? "GET" : "POST");
  const response = await fetch(url, {
    method,
    headers,
    ...(init.body === undefined ? {} : { body: init.body }),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  stack.secrets.collect(json);
  if (json !== undefined && response.headers.get("content-type")?.includes("application/json")) {
    checkResponse(method, url, response.status, json);
  }
  return { status: response.status, headers: response.headers, text, json };
}
