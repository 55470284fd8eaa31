// An application written with LangChain JS for OpenAI runs unchanged: only the base URL and key differ.
import t from "tap";
import { ChatOpenAI, OpenAIEmbeddings } from "@langchain/openai";
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import { startStack } from "../support/stack.js";

const stack = await startStack();
t.teardown(() => stack.stop());
const configuration = { baseURL: stack.baseURL };

void t.test("ChatOpenAI invoke", async (t) => {
  const chat = new ChatOpenAI({
    model: "chat-default",
    apiKey: stack.apiKey,
    configuration,
    maxTokens: 8,
    maxRetries: 0,
  });
  const answer = await chat.invoke([new SystemMessage("Be brief."), new HumanMessage("Hello!")]);
  t.type(answer.content, "string");
  t.ok(answer.text.length > 0);
  t.equal(answer.usage_metadata?.output_tokens, 8);
  const requestId = answer.id ?? (answer.response_metadata as { id?: string }).id ?? "";
  const row = await stack.waitForUsage(requestId);
  t.equal(row.completion_tokens, answer.usage_metadata?.output_tokens);
  t.equal(row.prompt_tokens, answer.usage_metadata?.input_tokens);
});

void t.test("ChatOpenAI stream", async (t) => {
  const chat = new ChatOpenAI({
    model: "tiny-chat",
    apiKey: stack.apiKey,
    configuration,
    maxTokens: 6,
    maxRetries: 0,
    streamUsage: true,
  });
  let text = "";
  let chunks = 0;
  let outputTokens: number | undefined;
  for await (const chunk of await chat.stream("Tell me a story")) {
    chunks++;
    text += chunk.text;
    outputTokens = chunk.usage_metadata?.output_tokens ?? outputTokens;
  }
  t.ok(chunks > 1, `${chunks} chunks`);
  t.ok(text.length > 0);
  t.equal(outputTokens, 6);
});

void t.test("ChatOpenAI with structured output (json_schema)", async (t) => {
  const chat = new ChatOpenAI({ model: "tiny-chat", apiKey: stack.apiKey, configuration, maxRetries: 0 });
  const structured = chat.withStructuredOutput(
    {
      type: "object",
      properties: { answer: { type: "string", maxLength: 20 }, confident: { type: "boolean" } },
      required: ["answer", "confident"],
      additionalProperties: false,
    },
    { name: "reply", method: "jsonSchema" },
  );
  const result = (await structured.invoke("Answer as JSON")) as { answer: unknown; confident: unknown };
  t.type(result.answer, "string");
  t.type(result.confident, "boolean");
});

void t.test("OpenAIEmbeddings for documents and queries", async (t) => {
  const embeddings = new OpenAIEmbeddings({
    model: "tiny-embed",
    apiKey: stack.apiKey,
    configuration,
    maxRetries: 0,
  });
  const documents = await embeddings.embedDocuments(["first document", "second document", "third"]);
  t.equal(documents.length, 3);
  t.ok(documents.every((vector) => vector.length === 64));
  const query = await embeddings.embedQuery("first document");
  t.same(
    query.map((x) => x.toFixed(5)),
    documents[0]?.map((x) => x.toFixed(5)),
    "the same text embeds the same",
  );
});
