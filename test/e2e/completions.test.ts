// The legacy completions API: raw prompts continued without a chat template, one choice per prompt.
import t from "tap";
import type OpenAI from "openai";
import { completionChunkErrors, openapiErrors } from "../support/openapi.js";
import { startStack } from "../support/stack.js";
import { openaiClient, rawRequest } from "../support/client.js";
import { apiCall } from "../support/tenant.js";

const stack = await startStack();
t.teardown(() => stack.stop());
const client = openaiClient(stack);

async function recordedTokens(requestIds: string[]) {
  const rows = await Promise.all(requestIds.map((id) => stack.waitForUsage(id)));
  return {
    prompt: rows.reduce((sum, row) => sum + row.prompt_tokens, 0),
    completion: rows.reduce((sum, row) => sum + row.completion_tokens, 0),
    operations: [...new Set(rows.map((row) => row.operation))],
  };
}

void t.test("a string prompt, with OpenAI's default of 16 tokens", async (t) => {
  const completion = await client.completions.create({ model: "tiny-chat", prompt: "Once upon a time" });
  t.same(openapiErrors("CreateCompletionResponse", completion), []);
  t.equal(completion.object, "text_completion");
  t.equal(completion.choices.length, 1);
  t.equal(completion.usage?.completion_tokens, 16);
  t.equal(completion.choices[0]?.finish_reason, "length");
  const recorded = await recordedTokens([completion.id]);
  t.equal(recorded.prompt, completion.usage?.prompt_tokens);
  t.equal(recorded.completion, 16);
  t.same(recorded.operations, ["completions"]);
});

void t.test("an array of prompts gives one choice each; token prompts and echo", async (t) => {
  const completion = await client.completions.create({
    model: "tiny-chat",
    prompt: ["first prompt", "second"],
    max_tokens: 5,
    echo: true,
  });
  t.same(openapiErrors("CreateCompletionResponse", completion), []);
  t.same(
    completion.choices.map((choice) => choice.index),
    [0, 1],
  );
  t.ok(completion.choices[0]?.text.startsWith("first prompt"), "echo prepends the prompt");
  t.ok(completion.choices[1]?.text.startsWith("second"));
  const recorded = await recordedTokens([`${completion.id}-0`, `${completion.id}-1`]);
  t.equal(recorded.prompt, completion.usage?.prompt_tokens, "the two prompts' tokens add up");
  t.equal(recorded.completion, 10);

  // Token ids cannot be screened (docs/guardrail.md): this key sends them with its guardrail off.
  await apiCall(
    stack.baseURL,
    stack.adminKey,
    "POST",
    `/organization/projects/${stack.projectId}/api_keys/${stack.keyId}`,
    {
      guardrail_mode: "off",
    },
  );
  const tokens = await client.completions.create({
    model: "tiny-chat",
    prompt: [300, 301, 302],
    max_tokens: 3,
  });
  t.equal(tokens.usage?.prompt_tokens, 3, "token ids are used as given");
  t.equal(tokens.usage?.completion_tokens, 3);
});

void t.test("streamed, with stop sequences and usage", async (t) => {
  const stream = await client.completions.create({
    model: "tiny-chat",
    prompt: "Stream this",
    max_tokens: 12,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks: OpenAI.Completion[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  for (const chunk of chunks) t.same(completionChunkErrors(chunk), []);
  t.equal(chunks.at(-1)?.usage?.completion_tokens, 12);
  t.equal(chunks.find((chunk) => chunk.choices[0]?.finish_reason)?.choices[0]?.finish_reason, "length");
  const text = chunks.map((chunk) => chunk.choices[0]?.text ?? "").join("");
  const stop = text.slice(4, 7);
  t.ok(stop.length > 0, `streamed text: ${JSON.stringify(text)}`);
  // Greedy decoding gives the same text again, so the answer must end right before the stop text's first place.
  const stopped = await client.completions.create({
    model: "tiny-chat",
    prompt: "Stream this",
    max_tokens: 12,
    temperature: 0,
    stop,
  });
  t.equal(stopped.choices[0]?.finish_reason, "stop");
  t.equal(stopped.choices[0]?.text, text.slice(0, text.indexOf(stop)), "the stop text is not returned");
});

void t.test("bad input → 400 naming the parameter", async (t) => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ prompt: 5 }, "prompt"],
    [{ prompt: [] }, "prompt"],
    [{ prompt: "x", suffix: "y" }, "suffix"],
    [{ prompt: "x", logprobs: 2 }, "logprobs"],
    [{ prompt: "x", best_of: 3 }, "best_of"],
    [{ prompt: [1, 2], echo: true }, "echo"],
    [{ prompt: [999999] }, "prompt"],
    [{ prompt: "hello world ".repeat(400) }, "prompt"],
    [{ prompt: ["short", "hello world ".repeat(400)] }, "prompt[1]"],
  ];
  for (const [fields, param] of cases) {
    const response = await rawRequest(stack, "/completions", {
      body: JSON.stringify({ model: "tiny-chat", ...fields }),
    });
    t.equal(response.status, 400, `${param}: ${response.text}`);
    t.equal((response.json as { error: { param: string } }).error.param, param);
    t.same(openapiErrors("ErrorResponse", response.json), []);
  }
});
