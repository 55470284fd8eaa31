// Embeddings through the official openai SDK (which asks for base64 and decodes it) and as raw float JSON checked
// against OpenAI's schema; big requests are split across worker requests, and every one of them is metered.
import t, { type Test } from "tap";
import { openapiErrors } from "../support/openapi.js";
import { startStack } from "../support/stack.js";
import { openaiClient, rawRequest } from "../support/client.js";

const EMBED_ENTRY = `
    owned_by: llmaas
    family: tiny
    license: apache-2.0
    created: 2026-11-21
    source: "{{embedModel}}"
    capabilities: [embeddings]
    context_length: 256
    pricing: { input_per_million: 0.1 }`;

const stack = await startStack({
  catalogue: `
models:
  - id: tiny-chat
    owned_by: llmaas
    family: tiny
    license: apache-2.0
    created: 2026-11-21
    source: "{{chatModel}}"
    capabilities: [chat]
    context_length: 512
    pricing: { input_per_million: 0.5, output_per_million: 1.5 }
    runtime:
      threads: 1
      sequences: 2
  - id: tiny-embed${EMBED_ENTRY}
    embeddings:
      dimensions: 64
    runtime:
      threads: 1
      sequences: 4
  - id: tiny-embed-mrl${EMBED_ENTRY}
    embeddings:
      dimensions: 64
      matryoshka: true
    runtime:
      threads: 1
      sequences: 2
aliases:
  embed-default: tiny-embed
`,
});
t.teardown(() => stack.stop());
const client = openaiClient(stack);

interface FloatResponse {
  object: string;
  model: string;
  data: Array<{ object: string; index: number; embedding: number[] }>;
  usage: { prompt_tokens: number; total_tokens: number };
}

/** `encoding_format: "float"` as raw JSON, checked against OpenAI's schema. */
async function embedFloats(
  t: Test,
  body: Record<string, unknown>,
): Promise<{ id: string; json: FloatResponse }> {
  const response = await rawRequest(stack, "/embeddings", {
    body: JSON.stringify({ encoding_format: "float", ...body }),
  });
  t.equal(response.status, 200, response.text.slice(0, 300));
  t.same(openapiErrors("CreateEmbeddingResponse", response.json), [], "a CreateEmbeddingResponse");
  return { id: response.headers.get("x-request-id") ?? "", json: response.json as FloatResponse };
}

function norm(vector: readonly number[]): number {
  return Math.sqrt(vector.reduce((sum, value) => sum + value * value, 0));
}

/** Postgres holds, across the request's worker requests, exactly the usage the response reported. */
async function expectMetered(t: Test, requestId: string, promptTokens: number, workerRequests?: number) {
  t.match(requestId, /^embd-/, "x-request-id names the request");
  const deadline = Date.now() + 15_000;
  let usage = await stack.usageByPrefix(`${requestId}-`);
  while (usage.promptTokens < promptTokens && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    usage = await stack.usageByPrefix(`${requestId}-`);
  }
  t.equal(usage.promptTokens, promptTokens, "prompt tokens in Postgres = usage returned");
  t.equal(usage.completionTokens, 0, "embeddings complete nothing");
  if (workerRequests !== undefined) t.equal(usage.rows, workerRequests, "one usage event per worker request");
}

void t.test("the SDK's default (base64) request: one vector of unit length, usage metered", async (t) => {
  const { data: result, response } = await client.embeddings
    .create({ model: "tiny-embed", input: "The quick brown fox", user: "end-user-7" })
    .withResponse();
  t.equal(result.object, "list");
  t.equal(result.model, "tiny-embed");
  t.equal(result.data.length, 1);
  const vector = result.data[0]?.embedding ?? [];
  t.equal(vector.length, 64, "the model's native dimensions");
  t.ok(
    vector.every((value) => Number.isFinite(value)),
    "finite floats",
  );
  t.ok(Math.abs(norm(vector) - 1) < 1e-5, "unit length");
  t.ok(result.usage.prompt_tokens > 0);
  t.equal(result.usage.total_tokens, result.usage.prompt_tokens);
  const requestId = response.headers.get("x-request-id") ?? "";
  await expectMetered(t, requestId, result.usage.prompt_tokens, 1);
  const row = await stack.waitForUsage(`${requestId}-0`);
  t.equal(row.operation, "embeddings");
  t.equal(row.model, "tiny-embed");
  t.equal(row.end_user, "end-user-7", "the end user is kept for metering");
  t.equal(row.key_id, stack.keyId);
  t.equal(row.status, "completed");
});

void t.test("float JSON matches the OpenAI schema and the SDK's decoded base64", async (t) => {
  const input = ["alpha beta", "gamma delta"];
  const { id, json } = await embedFloats(t, { model: "embed-default", input });
  t.equal(json.model, "tiny-embed", "the alias resolves to the model id");
  t.same(
    json.data.map((item) => [item.object, item.index]),
    [
      ["embedding", 0],
      ["embedding", 1],
    ],
  );
  const viaSdk = await client.embeddings.create({ model: "tiny-embed", input });
  t.same(
    viaSdk.data.map((item) => item.embedding),
    json.data.map((item) => item.embedding),
    "float and base64 carry the same float32 values",
  );
  const base64 = await client.embeddings.create({ model: "tiny-embed", input, encoding_format: "base64" });
  t.type(base64.data[0]?.embedding, "string", "an explicit base64 request gets the string, as from OpenAI");
  await expectMetered(t, id, json.usage.prompt_tokens, 1);
});

void t.test("same input → same vector; different inputs → different vectors", async (t) => {
  const { json } = await embedFloats(t, {
    model: "tiny-embed",
    input: ["repeat me", "something else", "repeat me"],
  });
  const [first, other, again] = json.data.map((item) => item.embedding);
  t.same(again, first, "identical inputs in one request");
  t.not(JSON.stringify(other), JSON.stringify(first));
  const { json: alone } = await embedFloats(t, { model: "tiny-embed", input: "repeat me" });
  t.same(alone.data[0]?.embedding, first, "identical inputs across requests");
});

void t.test("token ids and arrays of token ids", async (t) => {
  const { id, json } = await embedFloats(t, { model: "tiny-embed", input: [333, 330, 337, 337, 340] });
  t.equal(json.data.length, 1, "one array of ints is one input");
  t.equal(json.data[0]?.embedding.length, 64);
  t.ok(json.usage.prompt_tokens >= 5, "every token id is evaluated");
  await expectMetered(t, id, json.usage.prompt_tokens, 1);

  const { json: several } = await embedFloats(t, {
    model: "tiny-embed",
    input: [[333, 330, 337, 337, 340], [808], [333, 330, 337, 337, 340]],
  });
  t.equal(several.data.length, 3);
  t.same(several.data[0]?.embedding, json.data[0]?.embedding, "same ids, same vector");
  t.same(several.data[2]?.embedding, json.data[0]?.embedding);
});

void t.test("a big request is split across worker requests and reassembled in order", async (t) => {
  const input = Array.from({ length: 100 }, (_, i) => `sentence number ${i} about ${i % 7} things`);
  const { id, json } = await embedFloats(t, { model: "tiny-embed", input });
  t.equal(json.data.length, 100);
  t.same(
    json.data.map((item) => item.index),
    input.map((_, i) => i),
    "indexes in input order",
  );
  for (const i of [0, 17, 63, 99]) {
    const { json: alone } = await embedFloats(t, { model: "tiny-embed", input: input[i] });
    t.same(json.data[i]?.embedding, alone.data[0]?.embedding, `input ${i} is where it belongs`);
  }
  await expectMetered(t, id, json.usage.prompt_tokens, Math.ceil(100 / 16));
});

void t.test("dimensions: shortened and renormalised where the model allows it", async (t) => {
  const { json: full } = await embedFloats(t, { model: "tiny-embed-mrl", input: "matryoshka doll" });
  const { json: short } = await embedFloats(t, {
    model: "tiny-embed-mrl",
    input: "matryoshka doll",
    dimensions: 16,
  });
  const vector = short.data[0]?.embedding ?? [];
  t.equal(vector.length, 16);
  t.ok(Math.abs(norm(vector) - 1) < 1e-5, "unit length again");
  const prefix = (full.data[0]?.embedding ?? []).slice(0, 16);
  const scale = norm(prefix);
  t.ok(
    vector.every((value, i) => Math.abs(value - (prefix[i] ?? 0) / scale) < 1e-5),
    "the prefix of the full vector, renormalised",
  );
  const viaSdk = await client.embeddings.create({ model: "tiny-embed-mrl", input: "x", dimensions: 64 });
  t.equal(viaSdk.data[0]?.embedding.length, 64, "the native size may be asked for");
  t.equal(short.usage.prompt_tokens, full.usage.prompt_tokens, "the same tokens are evaluated");
});

void t.test("the chat model and the embedding models live side by side", async (t) => {
  const completion = await client.chat.completions.create({
    model: "tiny-chat",
    messages: [{ role: "user", content: "hi" }],
    max_tokens: 3,
  });
  t.equal(completion.usage?.completion_tokens, 3, "chat still works on the same worker");
  const list = await client.models.list();
  t.same(
    list.data.map((model) => model.id),
    ["tiny-chat", "tiny-embed", "tiny-embed-mrl"],
  );
});

interface ErrorExpectation {
  status: number;
  param: string | null;
  code?: string | null;
  message?: RegExp;
}

async function expectError(
  t: Test,
  path: string,
  body: unknown,
  expected: ErrorExpectation,
): Promise<string | null> {
  const response = await rawRequest(stack, path, { body: JSON.stringify(body) });
  t.equal(response.status, expected.status, response.text);
  t.same(openapiErrors("ErrorResponse", response.json), [], "an OpenAI ErrorResponse");
  const error = (response.json as { error: { param: string | null; code: string | null; message: string } })
    .error;
  t.equal(error.param, expected.param, "param");
  if (expected.code !== undefined) t.equal(error.code, expected.code, "code");
  if (expected.message) t.match(error.message, expected.message, "message");
  return response.headers.get("x-request-id");
}

void t.test("bad requests → 400 naming the parameter", async (t) => {
  const bad = (body: Record<string, unknown>, param: string, message?: RegExp) =>
    expectError(
      t,
      "/embeddings",
      { model: "tiny-embed", ...body },
      { status: 400, param, ...(message ? { message } : {}) },
    );
  await bad({ input: "" }, "input", /[Ee]mpty/);
  await bad({ input: [] }, "input");
  await bad({ input: ["fine", ""] }, "input[1]", /[Ee]mpty/);
  await bad({ input: [[1, 2], []] }, "input[1]", /[Ee]mpty/);
  await bad({ input: [1, -2] }, "input[1]");
  await bad({ input: Array.from({ length: 2049 }, () => "x") }, "input", /2048/);
  await bad({ input: 42 }, "input");
  await bad({}, "input");
  await bad({ input: "x", encoding_format: "int8" }, "encoding_format");
  await bad({ input: "x", dimensions: 0 }, "dimensions");
  await bad({ input: "x", dimensions: 1.5 }, "dimensions");
  await bad({ input: "x", dimensions: 8 }, "dimensions", /does not support shortened/);
  await bad({ model: "tiny-embed-mrl", input: "x", dimensions: 65 }, "dimensions", /64/);
  await bad({ input: "x", frobnicate: true }, "frobnicate", /frobnicate/);
  await bad({ input: [[999999]] }, "input", /vocabulary/);
  await bad({ model: "tiny-chat", input: "x" }, "model", /does not support embeddings/);
  await expectError(
    t,
    "/embeddings",
    { model: "no-such-model", input: "x" },
    { status: 404, param: "model", code: "model_not_found" },
  );
});

void t.test(
  "an input longer than the context → 400 context_length_exceeded, and nothing is metered",
  async (t) => {
    const requestId = await expectError(
      t,
      "/embeddings",
      { model: "tiny-embed", input: ["short", "word ".repeat(400)] },
      { status: 400, param: "input", code: "context_length_exceeded", message: /input\[1\]/ },
    );
    t.ok(requestId, "the refused request still has an id");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    t.equal((await stack.usageByPrefix(`${requestId}-`)).rows, 0, "no usage recorded");
  },
);

void t.test("chat to an embedding model → 400 naming model", async (t) => {
  await expectError(
    t,
    "/chat/completions",
    { model: "tiny-embed", messages: [{ role: "user", content: "hi" }] },
    { status: 400, param: "model", message: /does not support chat/ },
  );
});
