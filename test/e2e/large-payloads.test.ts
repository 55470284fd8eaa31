// Requests larger than one NATS message (1 MB) go from the gateway to the worker that serves them: a 4 MB chat
// message is an ordinary 400 context_length_exceeded (it used to be a 500: the bus refused the message), and a long
// document of more than 32,000 tokens is answered by a model whose context holds it, with its prompt tokens metered.
// An embeddings response of over 20 MB (2048 inputs of 1024 dimensions) comes back whole.
import t from "tap";
import { openaiClient } from "../support/client.js";
import { startStack } from "../support/stack.js";

const LONG_CONTEXT = 40_960;
const CATALOGUE = `
models:
  - id: tiny-chat
    owned_by: llmaas
    created: 2026-11-21
    source: "{{chatModel}}"
    capabilities: [chat, completion]
    context_length: 512
    pricing: { input_per_million: 0.5, output_per_million: 1.5 }
    runtime: { threads: 1, sequences: 2 }
  - id: tiny-long
    owned_by: llmaas
    created: 2026-11-21
    source: "{{chatModel}}"
    capabilities: [chat]
    context_length: ${LONG_CONTEXT}
    pricing: { input_per_million: 0.5, output_per_million: 1.5 }
    runtime: { threads: 1, sequences: 1 }
  - id: tiny-embed-wide
    owned_by: llmaas
    created: 2026-11-21
    source: "{{wideEmbedModel}}"
    capabilities: [embeddings]
    context_length: 256
    embeddings: { dimensions: 1024 }
    pricing: { input_per_million: 0.1 }
    runtime: { threads: 1, sequences: 4 }
`;

const stack = await startStack({ catalogue: CATALOGUE });
t.teardown(() => stack.stop());
const client = openaiClient(stack);

/** Words the tiny models' vocabulary holds whole: about one token each. */
const WORDS = ["the", "water", "people", "number", "sound", "world", "answer", "question", "model", "light"];
function documentOf(words: number): string {
  return Array.from({ length: words }, (_, index) => WORDS[(index * 7) % WORDS.length]).join(" ");
}

void t.test("a 4 MB chat message is a 400 context_length_exceeded, not a 5xx", async (t) => {
  const content = documentOf(700_000);
  t.ok(Buffer.byteLength(content) > 4_000_000, `${Buffer.byteLength(content)} bytes in one message`);
  const response = await fetch(`${stack.baseURL}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "tiny-chat", messages: [{ role: "user", content }], max_tokens: 4 }),
  });
  const body = (await response.json()) as { error?: { code?: string; param?: string } };
  t.equal(response.status, 400);
  t.equal(body.error?.code, "context_length_exceeded");
  t.equal(body.error?.param, "messages");
});

void t.test("a document of more than 32,000 tokens is answered and metered", async (t) => {
  const content = `Summarize: ${documentOf(33_000)}`;
  const completion = await client.chat.completions.create(
    {
      model: "tiny-long",
      messages: [{ role: "user", content }],
      max_tokens: 8,
      temperature: 0,
    },
    // Evaluating 33,000 tokens on one thread took over the client's usual minute in a loaded CI run.
    { timeout: 300_000 },
  );
  const promptTokens = completion.usage?.prompt_tokens ?? 0;
  t.ok(promptTokens >= 32_000, `${promptTokens} prompt tokens`);
  t.equal(completion.choices[0]?.finish_reason, "length");
  const recorded = await stack.waitForUsage(completion.id, 60_000);
  t.equal(recorded.prompt_tokens, promptTokens, "metered as answered");
});

void t.test("an embeddings response of over 20 MB crosses the bus", async (t) => {
  const input = Array.from({ length: 2048 }, (_, index) => `${documentOf(1 + (index % 5))} ${index}`);
  const response = await fetch(`${stack.baseURL}/embeddings`, {
    method: "POST",
    headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "tiny-embed-wide", input }),
  });
  const text = await response.text();
  t.equal(response.status, 200);
  t.ok(text.length > 20_000_000, `${(text.length / 1e6).toFixed(1)} MB of response`);
  const body = JSON.parse(text) as {
    data: { index: number; embedding: number[] }[];
    usage: { prompt_tokens: number };
  };
  t.equal(body.data.length, 2048, "a vector for every input");
  t.ok(
    body.data.every((item, index) => item.index === index && item.embedding.length === 1024),
    "in order, 1024 dimensions each",
  );
  const metered = await stack.usageByPrefix(`${response.headers.get("x-request-id") ?? "none"}-`);
  t.equal(metered.promptTokens, body.usage.prompt_tokens, "the batches' tokens metered as answered");
});
