import OpenAI from "openai";
import type { Stack } from "./stack.js";

/** A fetch that remembers every secret an answer shows (keys are shown once), for the stack's leak check. */
function collectingFetch(stack: Stack): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    if (response.headers.get("content-type")?.includes("application/json")) {
      stack.secrets.collect(await response.clone().json());
    }
    return response;
  };
}

export function openaiClient(stack: Stack, apiKey = stack.apiKey, baseURL = stack.baseURL): OpenAI {
  return new OpenAI({ apiKey, baseURL, maxRetries: 0, timeout: 60_000 });
}

/** OpenAI's SDK as an administration tool uses it: `adminAPIKey`, `client.admin.organization.*`. */
export function adminClient(stack: Stack, adminKey = stack.adminKey, baseURL = stack.baseURL): OpenAI {
  return new OpenAI({
    adminAPIKey: adminKey,
    apiKey: null,
    baseURL,
    maxRetries: 0,
    timeout: 60_000,
    fetch: collectingFetch(stack),
  });
}

/** A raw HTTP call, for what the SDK would not send (bad JSON, no key) or would hide (status, headers). */
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
  const response = await fetch(`${init.baseURL ?? stack.baseURL}${path}`, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
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
  return { status: response.status, headers: response.headers, text, json };
}
