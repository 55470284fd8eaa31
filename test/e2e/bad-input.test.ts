// Bad input gets a clear OpenAI-style 4xx, never a 5xx, and nothing is generated or metered for it.
import t, { type Test } from "tap";
import { APIError } from "openai";
import { openapiErrors } from "../support/openapi.js";
import { startStack } from "../support/stack.js";
import { openaiClient, rawRequest } from "../support/client.js";

const stack = await startStack();
t.teardown(() => stack.stop());

const validBody = { model: "tiny-chat", messages: [{ role: "user", content: "hi" }], max_tokens: 4 };

interface Expected {
  status: number;
  code?: string | null;
  param?: string | null;
  message?: RegExp;
}

async function expectError(
  t: Test,
  request: Parameters<typeof rawRequest>[2] & { path?: string },
  expected: Expected,
): Promise<void> {
  const response = await rawRequest(stack, request.path ?? "/chat/completions", request);
  t.equal(response.status, expected.status, `status ${expected.status}: ${response.text}`);
  t.same(openapiErrors("ErrorResponse", response.json), [], "an OpenAI ErrorResponse");
  const error = (response.json as { error: { code: string | null; param: string | null; message: string } })
    .error;
  if (expected.code !== undefined) t.equal(error.code, expected.code, "code");
  if (expected.param !== undefined) t.equal(error.param, expected.param, "param");
  if (expected.message) t.match(error.message, expected.message, "message");
}

void t.test("no API key → 401", async (t) => {
  await expectError(
    t,
    { body: JSON.stringify(validBody), apiKey: null },
    { status: 401, message: /API key/ },
  );
  await expectError(t, { path: "/models", apiKey: null }, { status: 401 });
});

void t.test("wrong API key → 401 invalid_api_key", async (t) => {
  await expectError(
    t,
    { body: JSON.stringify(validBody), apiKey: "sk-lm-aaaaaaaaaaaa-" + "0".repeat(48) },
    {
      status: 401,
      code: "invalid_api_key",
    },
  );
  await expectError(
    t,
    { body: JSON.stringify(validBody), apiKey: "not-a-key" },
    { status: 401, code: "invalid_api_key" },
  );
  const tampered = stack.apiKey.slice(0, -1) + (stack.apiKey.endsWith("0") ? "1" : "0");
  await expectError(
    t,
    { body: JSON.stringify(validBody), apiKey: tampered },
    { status: 401, code: "invalid_api_key" },
  );
  // Beyond Node's 16 KiB of headers: refused before fastify, still in OpenAI's shape.
  await expectError(
    t,
    { body: JSON.stringify(validBody), apiKey: `sk-lm-proj-${"a".repeat(20_000)}` },
    { status: 431, code: null },
  );
  // A JWT-shaped or admin-shaped credential is looked up like any other, and refused the same way.
  for (const apiKey of ["eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln", "sk-lm-admin-nope"]) {
    await expectError(
      t,
      { body: JSON.stringify(validBody), apiKey },
      { status: 401, code: "invalid_api_key" },
    );
  }
});

void t.test("the SDK surfaces a 401 as AuthenticationError", async (t) => {
  const client = openaiClient(stack, "sk-lm-aaaaaaaaaaaa-" + "0".repeat(48));
  const error = await client.chat.completions
    .create({ ...validBody, messages: [{ role: "user", content: "x" }] })
    .catch((e: unknown) => e);
  t.ok(error instanceof APIError);
  t.equal((error as APIError).status, 401);
});

void t.test("malformed JSON → 400", async (t) => {
  await expectError(t, { body: '{"model": "tiny-chat", "messages": [' }, { status: 400 });
  await expectError(t, { body: "" }, { status: 400 });
  await expectError(t, { body: "[1,2]" }, { status: 400 });
  await expectError(t, { body: "hello", headers: { "content-type": "text/plain" } }, { status: 400 });
});

void t.test("wrong types → 400 naming the parameter", async (t) => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ ...validBody, messages: "hi" }, "messages"],
    [{ ...validBody, messages: [] }, "messages"],
    [{ ...validBody, messages: [{ role: "user", content: 42 }] }, "messages[0].content"],
    [{ ...validBody, messages: [{ role: "wizard", content: "hi" }] }, "messages[0].role"],
    [{ ...validBody, model: 7 }, "model"],
    [{ ...validBody, stream: "yes" }, "stream"],
    [{ ...validBody, max_tokens: "10" }, "max_tokens"],
    [{ ...validBody, max_tokens: 1.5 }, "max_tokens"],
    [{ ...validBody, stop: 5 }, "stop"],
    [{ ...validBody, n: 2 }, "n"],
    [{ ...validBody, frobnicate: true }, "frobnicate"],
  ];
  for (const [body, param] of cases) {
    await expectError(t, { body: JSON.stringify(body) }, { status: 400, param });
  }
});

void t.test("negative max_tokens → 400", async (t) => {
  await expectError(
    t,
    { body: JSON.stringify({ ...validBody, max_tokens: -1 }) },
    { status: 400, param: "max_tokens" },
  );
  await expectError(
    t,
    { body: JSON.stringify({ ...validBody, max_tokens: 0 }) },
    { status: 400, param: "max_tokens" },
  );
  await expectError(
    t,
    { body: JSON.stringify({ ...validBody, max_completion_tokens: -5 }) },
    { status: 400, param: "max_completion_tokens" },
  );
});

void t.test("out-of-range temperature and top_p → 400", async (t) => {
  await expectError(
    t,
    { body: JSON.stringify({ ...validBody, temperature: 2.5 }) },
    { status: 400, param: "temperature" },
  );
  await expectError(
    t,
    { body: JSON.stringify({ ...validBody, temperature: -0.1 }) },
    { status: 400, param: "temperature" },
  );
  await expectError(
    t,
    { body: JSON.stringify({ ...validBody, top_p: 1.1 }) },
    { status: 400, param: "top_p" },
  );
});

void t.test("unknown model → 404 model_not_found", async (t) => {
  await expectError(
    t,
    { body: JSON.stringify({ ...validBody, model: "gpt-17" }) },
    {
      status: 404,
      code: "model_not_found",
      param: "model",
    },
  );
  await expectError(t, { path: "/models/gpt-17" }, { status: 404, code: "model_not_found" });
});

void t.test("a prompt longer than the model's context → 400 context_length_exceeded", async (t) => {
  const long = "hello world ".repeat(400);
  for (const stream of [false, true]) {
    await expectError(
      t,
      { body: JSON.stringify({ ...validBody, stream, messages: [{ role: "user", content: long }] }) },
      {
        status: 400,
        code: "context_length_exceeded",
        param: "messages",
        message: /maximum context length is 512/,
      },
    );
  }
  // The prompt fits, but not with the completion asked for.
  await expectError(
    t,
    { body: JSON.stringify({ ...validBody, max_tokens: 100_000 }) },
    {
      status: 400,
      code: "context_length_exceeded",
    },
  );
});

void t.test("unknown route → 404 in OpenAI's shape", async (t) => {
  await expectError(t, { path: "/engines", body: "{}" }, { status: 404 });
});

void t.test("nothing was generated or metered for any of it, and the platform still serves", async (t) => {
  const rows = await stack.db
    .selectFrom("usage_events")
    .select(({ fn }) => fn.countAll<string>().as("n"))
    .executeTakeFirstOrThrow();
  t.equal(Number(rows.n), 0, "no usage recorded for refused requests");
  const completion = await openaiClient(stack).chat.completions.create({
    model: "tiny-chat",
    messages: [{ role: "user", content: "still there?" }],
    max_tokens: 3,
  });
  t.equal(completion.usage?.completion_tokens, 3);
  const workerLogs = stack.workers.map((worker) => worker.lines.join("\n")).join("\n");
  t.notMatch(workerLogs, /"level":50/, "no worker logged an error");
});
