import OpenAI from "openai";
import type { Stack } from "./stack.js";

export function openaiClient(stack: Stack, apiKey = stack.apiKey): OpenAI {
  return new OpenAI({ apiKey, baseURL: stack.baseURL, maxRetries: 0, timeout: 60_000 });
}

/** A raw HTTP call, for what the SDK would not send (bad JSON, no key) or would hide (status, headers). */
export async function rawRequest(
  stack: Stack,
  path: string,
  init: { method?: string; body?: string; headers?: Record<string, string>; apiKey?: string | null } = {},
): Promise<{ status: number; headers: Headers; text: string; json: unknown }> {
  const headers: Record<string, string> = { "content-type": "application/json", ...init.headers };
  const apiKey = init.apiKey === undefined ? stack.apiKey : init.apiKey;
  if (apiKey !== null) headers.authorization = `Bearer ${apiKey}`;
  const response = await fetch(`${stack.baseURL}${path}`, {
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
  return { status: response.status, headers: response.headers, text, json };
}
