// A real client's chat completion crosses gateway → NATS → llm-worker → metering → Postgres, through the official
// openai SDK; every response and chunk is checked against OpenAI's published schemas.
import t, { type Test } from "tap";
import type OpenAI from "openai";
import { openapiErrors } from "../support/openapi.js";
import { startStack } from "../support/stack.js";
import { openaiClient, rawRequest } from "../support/client.js";

const stack = await startStack();
t.teardown(() => stack.stop());
const client = openaiClient(stack);

async function expectRecordedUsage(
  t: Test,
  requestId: string,
  usage: OpenAI.CompletionUsage | null | undefined,
) {
  t.ok(usage, "the response carries usage");
  const row = await stack.waitForUsage(requestId);
  t.equal(row.prompt_tokens, usage?.prompt_tokens, "prompt tokens in Postgres = prompt tokens returned");
  t.equal(
    row.completion_tokens,
    usage?.completion_tokens,
    "completion tokens in Postgres = completion tokens returned",
  );
  t.equal(row.key_id, stack.keyId);
  t.equal(row.status, "completed");
  return row;
}

void t.test("GET /v1/models lists the catalogue in OpenAI's shape", async (t) => {
  const list = await client.models.list();
  const raw = await rawRequest(stack, "/models");
  t.same(openapiErrors("ListModelsResponse", raw.json), []);
  t.same(
    list.data.map((model) => model.id),
    ["tiny-chat", "tiny-embed"],
  );
  const model = await client.models.retrieve("tiny-chat");
  t.same(openapiErrors("Model", model), []);
  t.equal(model.owned_by, "llmaas");
});

void t.test("non-streamed chat completion", async (t) => {
  const completion = await client.chat.completions.create({
    model: "tiny-chat",
    messages: [
      { role: "system", content: "You are terse." },
      { role: "user", content: "Say hello to the world." },
    ],
    max_tokens: 12,
    user: "end-user-42",
  });
  t.same(openapiErrors("CreateChatCompletionResponse", completion), []);
  t.equal(completion.object, "chat.completion");
  t.equal(completion.model, "tiny-chat");
  t.equal(completion.choices.length, 1);
  t.equal(completion.choices[0]?.finish_reason, "length", "the random model always runs to max_tokens");
  t.ok((completion.choices[0]?.message.content ?? "").length > 0, "some text came back");
  t.equal(completion.usage?.completion_tokens, 12);
  const row = await expectRecordedUsage(t, completion.id, completion.usage);
  t.equal(row.end_user, "end-user-42", "the end user is kept for metering");
});

void t.test("streamed chat completion with include_usage", async (t) => {
  const stream = await client.chat.completions.create({
    model: "chat-default",
    messages: [
      {
        role: "user",
        content: [
          { type: "text", text: "Stream " },
          { type: "text", text: "please." },
        ],
      },
    ],
    max_tokens: 10,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks: OpenAI.ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  for (const chunk of chunks)
    t.same(openapiErrors("CreateChatCompletionStreamResponse", chunk), [], "chunk valid");
  t.ok(chunks.length >= 3, "role chunk, content chunks, finish chunk");
  t.equal(chunks[0]?.choices[0]?.delta.role, "assistant");
  const finish = chunks.find((chunk) => chunk.choices[0]?.finish_reason);
  t.equal(finish?.choices[0]?.finish_reason, "length");
  const last = chunks.at(-1);
  t.same(last?.choices, [], "the usage chunk has no choices");
  t.equal(last?.usage?.completion_tokens, 10);
  t.ok(
    chunks.slice(0, -1).every((chunk) => chunk.usage === null),
    "chunks before the last carry usage: null",
  );
  t.equal(new Set(chunks.map((chunk) => chunk.id)).size, 1, "one id for the whole stream");
  t.equal(chunks[0]?.model, "tiny-chat", "the alias resolves to the model id");
  await expectRecordedUsage(t, chunks[0]?.id ?? "", last?.usage);
});

void t.test("the SSE stream ends with data: [DONE]", async (t) => {
  const response = await rawRequest(stack, "/chat/completions", {
    body: JSON.stringify({
      model: "tiny-chat",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 4,
      stream: true,
    }),
  });
  t.equal(response.status, 200);
  t.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
  const events = response.text.split("\n\n").filter(Boolean);
  t.equal(events.at(-1), "data: [DONE]");
  for (const event of events.slice(0, -1)) {
    t.ok(event.startsWith("data: "), "every event is a data line");
    t.same(openapiErrors("CreateChatCompletionStreamResponse", JSON.parse(event.slice(6))), []);
  }
  const id = (JSON.parse(events[0]?.slice(6) ?? "{}") as { id: string }).id;
  t.equal(response.headers.get("x-request-id"), id, "x-request-id names the completion");
  const row = await stack.waitForUsage(id);
  t.equal(row.completion_tokens, 4);
});

void t.test("stop sequences end the answer without returning the stop text", async (t) => {
  const probe = await client.chat.completions.create({
    model: "tiny-chat",
    messages: [{ role: "user", content: "repeat" }],
    max_tokens: 16,
    temperature: 0,
  });
  const text = probe.choices[0]?.message.content ?? "";
  const stop = text.slice(4, 7);
  t.ok(stop.length > 0, `probe text: ${JSON.stringify(text)}`);
  const stopped = await client.chat.completions.create({
    model: "tiny-chat",
    messages: [{ role: "user", content: "repeat" }],
    max_tokens: 16,
    temperature: 0,
    stop: [stop],
  });
  t.equal(stopped.choices[0]?.finish_reason, "stop");
  t.equal(stopped.choices[0]?.message.content, text.slice(0, text.indexOf(stop)));
  await expectRecordedUsage(t, stopped.id, stopped.usage);
});
