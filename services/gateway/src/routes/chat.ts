import { randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply } from "fastify";
import { trace } from "@opentelemetry/api";
import type { Bus } from "@llmaas/bus";
import type { Catalogue } from "@llmaas/catalogue";
import {
  openai,
  PlatformError,
  toPlatformError,
  type FinishReason,
  type InferenceMessage,
  type SamplingParams,
} from "@llmaas/contracts";
import { errorBody } from "../errors.js";
import { startInference, type InferenceCall } from "../inference.js";
import { parseBody } from "../validation.js";
import { modelNotFound } from "./models.js";

export interface ChatRouteOptions {
  bus: Bus;
  catalogue: Catalogue;
  acceptTimeoutMs: number;
  requestTimeoutMs: number;
}

function newCompletionId(): string {
  return `chatcmpl-${randomBytes(16).toString("base64url").replace(/[-_]/g, "x")}`;
}

function textOf(content: string | Array<{ text: string }> | null | undefined): string {
  if (content === null || content === undefined) return "";
  return typeof content === "string" ? content : content.map((part) => part.text).join("");
}

function toSampling(body: openai.ChatCompletionRequest): SamplingParams {
  const stop = body.stop ?? [];
  return {
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? null,
    temperature: body.temperature ?? null,
    topP: body.top_p ?? null,
    seed: body.seed ?? null,
    stop: typeof stop === "string" ? [stop] : stop,
  };
}

/** A cancelled generation is reported to the client as an ordinary stop: the client asked for it. */
function openAIFinishReason(reason: FinishReason): openai.ChatFinishReason {
  return reason === "length" ? "length" : "stop";
}

export function registerChatRoutes(app: FastifyInstance, options: ChatRouteOptions): void {
  const { bus, catalogue } = options;

  app.post("/v1/chat/completions", async (request, reply) => {
    const body = parseBody(openai.ChatCompletionRequest, request.body);
    const model = catalogue.find(body.model);
    if (!model) throw modelNotFound(body.model);
    if (!model.capabilities.includes("chat")) {
      throw new PlatformError(
        "invalid_request",
        `The model \`${model.id}\` does not support chat completions.`,
        "model",
      );
    }
    const requestId = newCompletionId();
    trace.getActiveSpan()?.setAttributes({
      "gen_ai.operation.name": "chat",
      "gen_ai.request.model": model.id,
      "gen_ai.response.id": requestId,
    });
    const messages: InferenceMessage[] = body.messages.map((message) => ({
      role: message.role,
      content: textOf(message.content),
    }));

    const call = await startInference(
      bus,
      {
        requestId,
        model: model.id,
        principal: request.principal,
        endUser: body.user ?? null,
        messages,
        sampling: toSampling(body),
      },
      { acceptTimeoutMs: options.acceptTimeoutMs },
    );
    void reply.header("x-request-id", requestId);

    // A client that goes away, or a request that runs past its deadline, stops the worker.
    const timeout = setTimeout(() => {
      timedOut = true;
      call.cancel();
    }, options.requestTimeoutMs);
    let timedOut = false;
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) call.cancel();
    });

    const meta = { id: requestId, created: Math.floor(Date.now() / 1000), model: model.id };
    try {
      if (body.stream) {
        await streamChat(reply, call, meta, body.stream_options?.include_usage === true, () => timedOut);
        return reply;
      }
      return await collectChat(call, meta, () => timedOut);
    } finally {
      clearTimeout(timeout);
    }
  });
}

interface CompletionMeta {
  id: string;
  created: number;
  model: string;
}

function timeoutError(): PlatformError {
  return new PlatformError("request_timeout", "The request took too long to complete and was cancelled.");
}

async function collectChat(
  call: InferenceCall,
  meta: CompletionMeta,
  timedOut: () => boolean,
): Promise<openai.ChatCompletionResponse> {
  let content = "";
  try {
    for await (const event of call.events) {
      if (event.type === "chunk") {
        content += event.text;
        continue;
      }
      const { promptTokens, completionTokens } = event.usage;
      return {
        ...meta,
        object: "chat.completion",
        choices: [
          {
            index: 0,
            message: { role: "assistant", content, refusal: null },
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
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-request-id": meta.id,
    "x-accel-buffering": "no",
  });
  const send = (data: unknown): void => {
    raw.write(`data: ${JSON.stringify(data)}\n\n`);
  };
  const chunk = (
    delta: openai.ChatCompletionChunk["choices"][number]["delta"],
    finishReason: openai.ChatFinishReason | null,
  ): openai.ChatCompletionChunk => ({
    ...meta,
    object: "chat.completion.chunk",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    ...(includeUsage ? { usage: null } : {}),
  });

  send(chunk({ role: "assistant", content: "" }, null));
  try {
    for await (const event of call.events) {
      if (event.type === "chunk") {
        if (event.text) send(chunk({ content: event.text }, null));
        continue;
      }
      send(chunk({}, openAIFinishReason(event.finishReason)));
      if (includeUsage) {
        const { promptTokens, completionTokens } = event.usage;
        send({
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
    raw.write("data: [DONE]\n\n");
  } catch (error) {
    // Headers are gone: the error travels in the stream, as OpenAI sends it.
    if (!raw.destroyed) send(errorBody(timedOut() ? timeoutError() : toPlatformError(error)));
  } finally {
    raw.end();
  }
}
