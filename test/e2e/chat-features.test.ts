// Every field an OpenAI chat client sends, through the official SDK: sampling, stops, penalties, structured output
// enforced by grammar, tools (forced, automatic, streamed) and tool results in the history.
import t, { type Test } from "tap";
import { Ajv2020 } from "ajv/dist/2020.js";
import type OpenAI from "openai";
import { openapiErrors } from "../support/openapi.js";
import { DEFAULT_CATALOGUE, startStack } from "../support/stack.js";
import { openaiClient, rawRequest } from "../support/client.js";

// Structured answers from a random model are long: give them the room of a real context.
const stack = await startStack({
  catalogue: DEFAULT_CATALOGUE.replace("context_length: 512", "context_length: 2048"),
});
t.teardown(() => stack.stop());
const client = openaiClient(stack);
const user = (content: string): OpenAI.ChatCompletionMessageParam[] => [{ role: "user", content }];

function valid(t: Test, completion: unknown): void {
  t.same(openapiErrors("CreateChatCompletionResponse", completion), [], "valid CreateChatCompletionResponse");
}

void t.test("same seed and temperature give the same text; other seeds differ", async (t) => {
  const ask = (seed: number, temperature: number) =>
    client.chat.completions.create({
      model: "tiny-chat",
      messages: user("seeded"),
      max_tokens: 24,
      seed,
      temperature,
    });
  const [a, b, c, greedy1, greedy2] = await Promise.all([
    ask(7, 1),
    ask(7, 1),
    ask(8, 1),
    ask(1, 0),
    ask(2, 0),
  ]);
  valid(t, a);
  t.equal(a.choices[0]?.message.content, b.choices[0]?.message.content, "seed 7 twice → same text");
  t.not(a.choices[0]?.message.content, c.choices[0]?.message.content, "seed 8 → different text");
  t.equal(
    greedy1.choices[0]?.message.content,
    greedy2.choices[0]?.message.content,
    "temperature 0 is greedy",
  );
});

void t.test("top_p, penalties and max_completion_tokens are applied", async (t) => {
  const completion = await client.chat.completions.create({
    model: "tiny-chat",
    messages: user("penalties"),
    max_completion_tokens: 9,
    top_p: 0.5,
    presence_penalty: 1.5,
    frequency_penalty: -0.5,
  });
  valid(t, completion);
  t.equal(completion.usage?.completion_tokens, 9);
  const row = await stack.waitForUsage(completion.id);
  t.equal(row.completion_tokens, 9);
});

void t.test("unsupported fields get a 400 naming them", async (t) => {
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ logprobs: true }, "logprobs", /not supported/],
    [{ top_logprobs: 3 }, "top_logprobs", /not supported/],
    [{ n: 3 }, "n", /Only 1/],
    [{ store: true }, "store", /nothing is retained/],
    [
      {
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "look" },
              { type: "image_url", image_url: { url: "data:image/png;base64,AA==" } },
            ],
          },
        ],
      },
      "messages[0].content[1]",
      /no vision capability/,
    ],
    [
      {
        response_format: {
          type: "json_schema",
          json_schema: { name: "x", schema: { type: "string", pattern: "^a" } },
        },
      },
      "response_format.json_schema.schema",
      /pattern at #\/pattern/,
    ],
    [
      {
        response_format: {
          type: "json_schema",
          json_schema: {
            name: "x",
            schema: { type: "object", properties: { n: { type: "integer", minimum: 3 } } },
          },
        },
      },
      "response_format.json_schema.schema",
      /minimum at #\/properties\/n\/minimum/,
    ],
    [{ response_format: { type: "xml" } }, "response_format.type", /./],
    [{ tool_choice: "required" }, "tool_choice", /needs at least one tool/],
    [
      {
        tools: [{ type: "function", function: { name: "f" } }],
        tool_choice: { type: "function", function: { name: "g" } },
      },
      "tool_choice",
      /'g'/,
    ],
    [{ tools: [{ type: "function", function: { name: "bad name!" } }] }, "tools[0].function.name", /./],
    [
      {
        tools: [
          {
            type: "function",
            function: {
              name: "f",
              parameters: { type: "object", properties: { a: { type: "string", pattern: "x" } } },
            },
          },
        ],
      },
      "tools[0].function.parameters",
      /pattern/,
    ],
    [{ presence_penalty: 3 }, "presence_penalty", /./],
  ];
  for (const [fields, param, message] of cases) {
    const response = await rawRequest(stack, "/chat/completions", {
      body: JSON.stringify({ model: "tiny-chat", messages: user("x"), max_tokens: 2, ...fields }),
    });
    t.equal(response.status, 400, `${param}: ${response.text}`);
    const error = (response.json as { error: { param: string; message: string } }).error;
    t.equal(error.param, param);
    t.match(error.message, message);
    t.same(openapiErrors("ErrorResponse", response.json), []);
  }
});

const personSchema = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 12 },
    age: { type: "integer" },
    score: { type: "number" },
    member: { type: "boolean" },
    role: { enum: ["admin", "user", "guest"] },
    tags: { type: "array", items: { type: "string", maxLength: 6 }, maxItems: 3 },
    address: {
      type: "object",
      properties: {
        city: { type: "string", maxLength: 10 },
        zip: { anyOf: [{ type: "string", maxLength: 5 }, { type: "null" }] },
      },
      required: ["city", "zip"],
      additionalProperties: false,
    },
  },
  required: ["name", "age", "score", "member", "role", "tags", "address"],
  additionalProperties: false,
} as const;

void t.test("json_schema answers parse and validate in 50 of 50 runs", async (t) => {
  const validate = new Ajv2020({ strict: false }).compile(personSchema);
  let valid = 0;
  const failures: string[] = [];
  for (let batch = 0; batch < 10; batch++) {
    const completions = await Promise.all(
      Array.from({ length: 5 }, (_, index) =>
        client.chat.completions.create({
          model: "tiny-chat",
          messages: user(`Describe person ${batch * 5 + index} as JSON.`),
          response_format: {
            type: "json_schema",
            json_schema: { name: "person", schema: personSchema, strict: true },
          },
          temperature: 1,
        }),
      ),
    );
    for (const completion of completions) {
      const text = completion.choices[0]?.message.content ?? "";
      try {
        if (validate(JSON.parse(text)) && completion.choices[0]?.finish_reason === "stop") valid++;
        else failures.push(`${text} ${JSON.stringify(validate.errors)}`);
      } catch (error) {
        failures.push(`${text}: ${String(error)}`);
      }
    }
  }
  t.equal(valid, 50, `all valid; failures: ${failures.slice(0, 3).join("\n")}`);
});

void t.test("json_object answers are JSON", async (t) => {
  const completion = await client.chat.completions.create({
    model: "tiny-chat",
    messages: user("Reply in JSON."),
    response_format: { type: "json_object" },
    seed: 3,
  });
  valid(t, completion);
  const choice = completion.choices[0];
  if (choice?.finish_reason === "stop")
    t.doesNotThrow(() => JSON.parse(choice.message.content ?? "") as unknown);
  else t.equal(choice?.finish_reason, "length", "only an answer cut by the context may be unfinished");
});

const weatherTool: OpenAI.ChatCompletionTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather for a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string", maxLength: 20 }, unit: { enum: ["celsius", "fahrenheit"] } },
      required: ["city", "unit"],
      additionalProperties: false,
    },
  },
};
const timeTool: OpenAI.ChatCompletionTool = {
  type: "function",
  function: {
    name: "get_time",
    parameters: {
      type: "object",
      properties: { zone: { type: "string", maxLength: 10 } },
      required: ["zone"],
    },
  },
};

function checkToolCall(
  t: Test,
  call: { id?: string; type?: string; function?: { name?: string; arguments?: string } } | undefined,
  names: string[],
) {
  t.match(call?.id, /^call_/, "tool call id");
  t.equal(call?.type, "function");
  t.ok(names.includes(call?.function?.name ?? ""), `name ${call?.function?.name}`);
  const args = JSON.parse(call?.function?.arguments ?? "") as Record<string, unknown>;
  if (call?.function?.name === "get_weather") {
    t.type(args.city, "string");
    t.ok(["celsius", "fahrenheit"].includes(String(args.unit)));
  } else {
    t.type(args.zone, "string");
  }
}

void t.test("a forced tool_choice returns a well-formed tool call", async (t) => {
  const completion = await client.chat.completions.create({
    model: "tiny-chat",
    messages: user("What is the weather in Paris?"),
    tools: [weatherTool, timeTool],
    tool_choice: { type: "function", function: { name: "get_weather" } },
  });
  valid(t, completion);
  const choice = completion.choices[0];
  t.equal(choice?.finish_reason, "tool_calls");
  t.equal(choice?.message.content, null);
  t.equal(choice?.message.tool_calls?.length, 1);
  checkToolCall(t, choice?.message.tool_calls?.[0], ["get_weather"]);
  const row = await stack.waitForUsage(completion.id);
  t.equal(row.completion_tokens, completion.usage?.completion_tokens);
});

void t.test("tool_choice required picks one of the tools", async (t) => {
  const completion = await client.chat.completions.create({
    model: "tiny-chat",
    messages: user("Use a tool."),
    tools: [weatherTool, timeTool],
    tool_choice: "required",
  });
  valid(t, completion);
  t.equal(completion.choices[0]?.finish_reason, "tool_calls");
  checkToolCall(t, completion.choices[0]?.message.tool_calls?.[0], ["get_weather", "get_time"]);
});

void t.test("a forced tool call streams as OpenAI tool-call deltas", async (t) => {
  const stream = await client.chat.completions.create({
    model: "tiny-chat",
    messages: user("Weather in Oslo?"),
    tools: [weatherTool],
    tool_choice: { type: "function", function: { name: "get_weather" } },
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks: OpenAI.ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  for (const chunk of chunks) t.same(openapiErrors("CreateChatCompletionStreamResponse", chunk), []);
  const deltas = chunks.flatMap((chunk) => chunk.choices[0]?.delta.tool_calls ?? []);
  t.ok(deltas.length >= 2, "the arguments arrive in several deltas");
  t.ok(deltas[0]?.id && deltas[0].function?.name === "get_weather", "the first delta names the call");
  t.ok(deltas.slice(1).every((delta) => delta.id === undefined && delta.function?.name === undefined));
  const args = deltas.map((delta) => delta.function?.arguments ?? "").join("");
  checkToolCall(
    t,
    { id: deltas[0]?.id, type: "function", function: { name: "get_weather", arguments: args } },
    ["get_weather"],
  );
  t.equal(chunks.find((chunk) => chunk.choices[0]?.finish_reason)?.choices[0]?.finish_reason, "tool_calls");
  t.ok(chunks.at(-1)?.usage, "usage chunk");
});

void t.test("tool_choice auto lets the model answer (the random model answers in text)", async (t) => {
  const completion = await client.chat.completions.create({
    model: "tiny-chat",
    messages: user("Hello"),
    tools: [weatherTool],
    max_tokens: 8,
  });
  valid(t, completion);
  t.ok(["stop", "length", "tool_calls"].includes(completion.choices[0]?.finish_reason ?? ""));
});

void t.test("a history with tool calls and tool results is accepted", async (t) => {
  const completion = await client.chat.completions.create({
    model: "tiny-chat",
    messages: [
      { role: "system", content: "You answer with the tools' results." },
      { role: "user", content: "Weather in Rome?" },
      {
        role: "assistant",
        content: null,
        tool_calls: [
          {
            id: "call_1",
            type: "function",
            function: { name: "get_weather", arguments: '{"city":"Rome","unit":"celsius"}' },
          },
        ],
      },
      { role: "tool", tool_call_id: "call_1", content: '{"temperature": 21}' },
    ],
    tools: [weatherTool],
    max_tokens: 6,
  });
  valid(t, completion);
  t.equal(completion.usage?.completion_tokens, 6);
});
