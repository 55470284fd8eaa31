import { randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply } from "fastify";
import { trace } from "@opentelemetry/api";
import type { Bus } from "@llmaas/bus";
import type { Catalogue, CatalogueModel } from "@llmaas/catalogue";
import {
  openai,
  PlatformError,
  type ChatInput,
  type FinishReason,
  type InferenceMessage,
  type SamplingParams,
  type ToolChoice,
} from "@llmaas/contracts";
import {
  PromptOverAllowance,
  startInference,
  superviseCalls,
  timeoutError,
  type InferenceCall,
} from "../inference.js";
import { grammarSchema } from "../json-schema.js";
import { apiKeyOf, attributionOf } from "../auth/index.js";
import { resolveModel } from "../model-resolution.js";
import { EventStream } from "../sse.js";
import { screenPrompt, type GuardrailOptions } from "../guardrail/screening.js";
import { admitIfEnforced, generationCost, inputTokenBound, type Quotas } from "../quotas/index.js";
import { parseBody } from "../validation.js";

export interface ChatRouteOptions {
  bus: Bus;
  catalogue: Catalogue;
  acceptTimeoutMs: number;
  requestTimeoutMs: number;
  /** null where enforcement is switched off. */
  quotas: Quotas | null;
  guardrail: GuardrailOptions;
}

export function newId(prefix: string): string {
  return `${prefix}-${randomBytes(16).toString("base64url").replace(/[-_]/g, "x")}`;
}

type RequestMessage = openai.ChatCompletionRequest["messages"][number];

/** Text parts are joined; an image part is refused unless the model can see. */
function textOf(model: CatalogueModel, content: RequestMessage["content"], param: string): string {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  return content
    .map((part, index) => {
      if (part.type === "text") return part.text;
      throw new PlatformError(
        "invalid_request",
        model.capabilities.includes("vision")
          ? "Image inputs are not available on this deployment yet."
          : `The model \`${model.id}\` has no vision capability: it does not accept image inputs.`,
        `${param}[${index}]`,
      );
    })
    .join("");
}

function toMessages(model: CatalogueModel, messages: RequestMessage[]): InferenceMessage[] {
  return messages.map((message, index): InferenceMessage => {
    const content = textOf(model, message.content, `messages[${index}].content`);
    switch (message.role) {
      case "assistant":
        return {
          role: "assistant",
          content,
          toolCalls: (message.tool_calls ?? []).map((call) => ({
            id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
          })),
        };
      case "tool":
        return { role: "tool", toolCallId: message.tool_call_id, content };
      default:
        return { role: message.role, content };
    }
  });
}

function toToolChoice(body: openai.ChatCompletionRequest): ToolChoice {
  const choice = body.tool_choice;
  const tools = body.tools ?? [];
  if (choice === undefined) return { mode: tools.length ? "auto" : "none" };
  if (typeof choice === "string") {
    if (choice !== "none" && tools.length === 0) {
      throw new PlatformError(
        "invalid_request",
        `tool_choice '${choice}' needs at least one tool in 'tools'.`,
        "tool_choice",
      );
    }
    return { mode: choice };
  }
  const name = choice.function.name;
  if (!tools.some((tool) => tool.function.name === name)) {
    throw new PlatformError(
      "invalid_request",
      `tool_choice names '${name}', which is not in 'tools'.`,
      "tool_choice",
    );
  }
  return { mode: "function", name };
}

function toChatInput(model: CatalogueModel, body: openai.ChatCompletionRequest): ChatInput {
  const toolChoice = toToolChoice(body);
  const tools = (body.tools ?? []).map((tool, index) => ({
    name: tool.function.name,
    description: tool.function.description ?? null,
    parameters: grammarSchema(
      tool.function.parameters ?? { type: "object", properties: {} },
      `tools[${index}].function.parameters`,
    ),
  }));
  if (tools.length > 0 && toolChoice.mode !== "none" && !model.capabilities.includes("tools")) {
    throw new PlatformError("invalid_request", `The model \`${model.id}\` does not support tools.`, "tools");
  }
  const names = new Set(tools.map((tool) => tool.name));
  if (names.size !== tools.length) {
    throw new PlatformError("invalid_request", "Tool names must be unique.", "tools");
  }
  const format = body.response_format ?? { type: "text" as const };
  const output: ChatInput["output"] =
    format.type === "json_schema"
      ? {
          type: "json_schema",
          schema: grammarSchema(format.json_schema.schema ?? {}, "response_format.json_schema.schema"),
        }
      : format;
  if (output.type !== "text" && toolChoice.mode === "auto") {
    throw new PlatformError(
      "invalid_request",
      "response_format cannot be combined with tool_choice 'auto': set tool_choice to 'none', 'required' or a " +
        "function.",
      "response_format",
    );
  }
  return {
    kind: "chat",
    messages: toMessages(model, body.messages),
    tools: toolChoice.mode === "none" ? [] : tools,
    toolChoice,
    parallelToolCalls: body.parallel_tool_calls ?? true,
    output,
  };
}

export function toSampling(body: {
  max_tokens?: number | null | undefined;
  max_completion_tokens?: number | null | undefined;
  temperature?: number | null | undefined;
  top_p?: number | null | undefined;
  seed?: number | null | undefined;
  stop?: string | string[] | null | undefined;
  presence_penalty?: number | null | undefined;
  frequency_penalty?: number | null | undefined;
}): SamplingParams {
  const stop = body.stop ?? [];
  return {
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? null,
    temperature: body.temperature ?? null,
    topP: body.top_p ?? null,
    seed: body.seed ?? null,
    stop: typeof stop === "string" ? [stop] : stop,
    presencePenalty: body.presence_penalty ?? null,
    frequencyPenalty: body.frequency_penalty ?? null,
  };
}

/** A cancelled generation is reported as an ordinary stop: the client asked for it. */
function openAIFinishReason(reason: FinishReason): openai.ChatFinishReason {
  return reason === "cancelled" ? "stop" : reason;
}

export function registerChatRoutes(app: FastifyInstance, options: ChatRouteOptions): void {
  const { bus, catalogue } = options;

  app.post("/v1/chat/completions", async (request, reply) => {
    const body = parseBody(openai.ChatCompletionRequest, request.body);
    const apiKey = apiKeyOf(request);
    const { model, headers } = resolveModel(catalogue, body.model, "chat", apiKey);
    void reply.headers(headers);
    const requestId = newId("chatcmpl");
    trace.getActiveSpan()?.setAttributes({
      "gen_ai.operation.name": "chat",
      "gen_ai.request.model": model.id,
      "gen_ai.response.id": requestId,
    });
    // Checked before admission, so that bad input is refused without touching any limit.
    const input = toChatInput(model, body);
    const sampling = toSampling(body);
    // Every message's text, whatever its role: all of it comes from the client. Screened before admission, so a
    // blocked prompt uses none of the key's limits.
    await screenPrompt(
      options.guardrail,
      reply,
      apiKey,
      requestId,
      input.messages.map((message) => message.content),
    );
    let cost = generationCost(model, inputTokenBound(input), sampling.maxTokens);
    let admission = await admitIfEnforced(options.quotas, reply, apiKey, model, cost);
    const start = (): Promise<InferenceCall> =>
      startInference(
        bus,
        {
          requestId,
          model: model.id,
          principal: attributionOf(apiKey),
          endUser: body.user ?? null,
          input,
          sampling,
          tokenAllowance: admission ? Number(cost.tokens) : null,
        },
        { acceptTimeoutMs: options.acceptTimeoutMs },
      );
    let call: InferenceCall;
    try {
      try {
        call = await start();
      } catch (error) {
        if (!(error instanceof PromptOverAllowance) || !admission) throw error;
        // The chat template made the prompt longer than the bound it was admitted with (tool definitions, mostly):
        // admitted again for the prompt the worker counted, which may be refused like any other request.
        admission.release();
        admission = null;
        cost = generationCost(model, error.promptTokens, sampling.maxTokens);
        admission = await admitIfEnforced(options.quotas, reply, apiKey, model, cost);
        call = await start();
      }
    } catch (error) {
      // A worker may have accepted too late to answer: metering has the last word on what it used.
      admission?.settleWhen([{ requestId, usage: Promise.resolve(null) }]);
      throw error;
    }
    admission?.settleWhen([{ requestId, usage: call.usage }]);
    void reply.header("x-request-id", requestId);
    const supervision = superviseCalls(reply.raw, [call], options.requestTimeoutMs);
    const meta = { id: requestId, created: Math.floor(Date.now() / 1000), model: model.id };
    try {
      if (body.stream) {
        await streamChat(
          reply,
          call,
          meta,
          body.stream_options?.include_usage === true,
          supervision.timedOut,
        );
        return reply;
      }
      return await collectChat(call, meta, supervision.timedOut);
    } finally {
      supervision.release();
    }
  });
}

interface CompletionMeta {
  id: string;
  created: number;
  model: string;
}

type ToolCallOut = NonNullable<
  openai.ChatCompletionResponse["choices"][number]["message"]["tool_calls"]
>[number];

async function collectChat(
  call: InferenceCall,
  meta: CompletionMeta,
  timedOut: () => boolean,
): Promise<openai.ChatCompletionResponse> {
  let content = "";
  const toolCalls: ToolCallOut[] = [];
  try {
    for await (const event of call.events) {
      if (event.type === "chunk") {
        content += event.text;
      } else if (event.type === "tool_call") {
        const existing = toolCalls[event.index];
        if (existing) existing.function.arguments += event.arguments;
        else {
          toolCalls[event.index] = {
            id: event.id ?? "",
            type: "function",
            function: { name: event.name ?? "", arguments: event.arguments },
          };
        }
      } else {
        const { promptTokens, completionTokens } = event.usage;
        return {
          ...meta,
          object: "chat.completion",
          choices: [
            {
              index: 0,
              message: {
                role: "assistant",
                content: toolCalls.length && !content ? null : content,
                refusal: null,
                ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
              },
              logprobs: null,
              finish_reason: openAIFinishReason(event.finishReason),
            },
          ],
          usage: {
            prompt_tokens: promptTokens,
            completion_tokens: completionTokens,
            total_tokens: promptTokens + completionTokens,
          },
        };
      }
    }
  } catch (error) {
    throw timedOut() ? timeoutError() : error;
  }
  throw timedOut()
    ? timeoutError()
    : new PlatformError("internal_error", "The model ended without a result.");
}

async function streamChat(
  reply: FastifyReply,
  call: InferenceCall,
  meta: CompletionMeta,
  includeUsage: boolean,
  timedOut: () => boolean,
): Promise<void> {
  const stream = new EventStream(reply, meta.id);
  const chunk = (
    delta: openai.ChatCompletionChunk["choices"][number]["delta"],
    finishReason: openai.ChatFinishReason | null,
  ): openai.ChatCompletionChunk => ({
    ...meta,
    object: "chat.completion.chunk",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    ...(includeUsage ? { usage: null } : {}),
  });

  stream.send(chunk({ role: "assistant", content: "" }, null));
  try {
    for await (const event of call.events) {
      if (event.type === "chunk") {
        if (event.text) stream.send(chunk({ content: event.text }, null));
      } else if (event.type === "tool_call") {
        const announce = event.name !== undefined;
        stream.send(
          chunk(
            {
              tool_calls: [
                {
                  index: event.index,
                  ...(announce ? { id: event.id ?? "", type: "function" as const } : {}),
                  function: { ...(announce ? { name: event.name } : {}), arguments: event.arguments },
                },
              ],
            },
            null,
          ),
        );
      } else {
        stream.send(chunk({}, openAIFinishReason(event.finishReason)));
        if (includeUsage) {
          const { promptTokens, completionTokens } = event.usage;
          stream.send({
            ...meta,
            object: "chat.completion.chunk",
            choices: [],
            usage: {
              prompt_tokens: promptTokens,
              completion_tokens: completionTokens,
              total_tokens: promptTokens + completionTokens,
            },
          } satisfies openai.ChatCompletionChunk);
        }
      }
    }
    stream.done();
  } catch (error) {
    stream.fail(error, timedOut());
  }
}
