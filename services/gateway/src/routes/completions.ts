import type { FastifyInstance, FastifyReply } from "fastify";
import { trace } from "@opentelemetry/api";
import type { Bus } from "@llmaas/bus";
import type { Catalogue } from "@llmaas/catalogue";
import { openai, PlatformError, type FinishReason } from "@llmaas/contracts";
import {
  mergeEvents,
  startInference,
  superviseCalls,
  timeoutError,
  type InferenceCall,
} from "../inference.js";
import { EventStream } from "../sse.js";
import { addCosts, admitIfEnforced, generationCost, inputTokenBound, type Quotas } from "../quotas/index.js";
import { parseBody } from "../validation.js";
import { apiKeyOf, attributionOf } from "../auth/index.js";
import { resolveModel } from "../model-resolution.js";
import { isScreened, screenPrompt, type GuardrailOptions } from "../guardrail/screening.js";
import { newId, toSampling } from "./chat.js";

export interface CompletionRouteOptions {
  bus: Bus;
  catalogue: Catalogue;
  acceptTimeoutMs: number;
  requestTimeoutMs: number;
  /** null where enforcement is switched off. */
  quotas: Quotas | null;
  guardrail: GuardrailOptions;
}

/** OpenAI's default for the legacy endpoint, which predates "until the model stops". */
const DEFAULT_MAX_TOKENS = 16;

type Prompt = string | number[];

/** One prompt, or several: each becomes a choice of its own, as in OpenAI's API. */
function promptsOf(prompt: openai.CompletionRequest["prompt"]): Prompt[] {
  if (typeof prompt === "string") return [prompt];
  if (prompt.every((item) => typeof item === "number")) return [prompt];
  return prompt;
}

function finishReasonOf(reason: FinishReason): "stop" | "length" {
  return reason === "length" ? "length" : "stop";
}

export function registerCompletionRoutes(app: FastifyInstance, options: CompletionRouteOptions): void {
  const { bus, catalogue } = options;

  app.post("/v1/completions", async (request, reply) => {
    const body = parseBody(openai.CompletionRequest, request.body);
    const apiKey = apiKeyOf(request);
    const { model, headers } = resolveModel(catalogue, body.model, "completion", apiKey);
    void reply.headers(headers);
    const prompts = promptsOf(body.prompt);
    if (body.echo && prompts.some((prompt) => typeof prompt !== "string")) {
      throw new PlatformError("invalid_request", "echo is supported with text prompts only.", "echo");
    }
    const requestId = newId("cmpl");
    trace.getActiveSpan()?.setAttributes({
      "gen_ai.operation.name": "text_completion",
      "gen_ai.request.model": model.id,
      "gen_ai.response.id": requestId,
    });
    if (isScreened(apiKey) && prompts.some((prompt) => typeof prompt !== "string")) {
      // The gateway cannot read token ids, so it could not screen them: refused rather than let through unscreened.
      throw new PlatformError(
        "invalid_request",
        "This project screens prompts with its guardrail, which reads text: send the prompt as text, not token ids.",
        "prompt",
      );
    }
    await screenPrompt(
      options.guardrail,
      reply,
      apiKey,
      requestId,
      prompts.filter((prompt): prompt is string => typeof prompt === "string"),
    );
    const sampling = toSampling({ ...body, max_tokens: body.max_tokens ?? DEFAULT_MAX_TOKENS });
    const costs = prompts.map((prompt) => generationCost(model, inputTokenBound(prompt), sampling.maxTokens));
    const admission = await admitIfEnforced(options.quotas, reply, apiKey, model, addCosts(costs));
    // Each prompt is metered on its own; one prompt keeps the id the client sees.
    const requestIdOf = (index: number): string =>
      prompts.length === 1 ? requestId : `${requestId}-${index}`;
    const calls: InferenceCall[] = [];
    try {
      for (const [index, prompt] of prompts.entries()) {
        calls.push(
          await startInference(
            bus,
            {
              requestId: requestIdOf(index),
              model: model.id,
              principal: attributionOf(apiKey),
              endUser: body.user ?? null,
              input: { kind: "completion", prompt },
              sampling,
              tokenAllowance: admission ? Number(costs[index]?.tokens) : null,
            },
            { acceptTimeoutMs: options.acceptTimeoutMs },
          ),
        );
      }
    } catch (error) {
      calls.forEach((call) => call.cancel());
      // The prompt that failed to start may have reached a worker too late to answer: metering has the last word.
      admission?.settleWhen([
        ...calls.map((call, index) => ({ requestId: requestIdOf(index), usage: call.usage })),
        { requestId: requestIdOf(calls.length), usage: Promise.resolve(null) },
      ]);
      if (error instanceof PlatformError && error.param === "prompt" && prompts.length > 1) {
        throw new PlatformError(error.code, error.message, `prompt[${calls.length}]`);
      }
      throw error;
    }
    admission?.settleWhen(calls.map((call, index) => ({ requestId: requestIdOf(index), usage: call.usage })));
    void reply.header("x-request-id", requestId);
    const supervision = superviseCalls(reply.raw, calls, options.requestTimeoutMs);
    const meta = { id: requestId, created: Math.floor(Date.now() / 1000), model: model.id };
    const echoes = prompts.map((prompt) => (body.echo && typeof prompt === "string" ? prompt : ""));
    try {
      if (body.stream) {
        await streamCompletion(
          reply,
          calls,
          meta,
          echoes,
          body.stream_options?.include_usage === true,
          supervision.timedOut,
        );
        return reply;
      }
      return await collectCompletion(calls, meta, echoes, supervision.timedOut);
    } finally {
      supervision.release();
    }
  });
}

interface Meta {
  id: string;
  created: number;
  model: string;
}

function usageOf(promptTokens: number, completionTokens: number): openai.CompletionUsage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

async function collectCompletion(
  calls: InferenceCall[],
  meta: Meta,
  echoes: string[],
  timedOut: () => boolean,
): Promise<openai.Completion> {
  const choices = calls.map((_, index) => ({
    index,
    text: echoes[index] ?? "",
    logprobs: null,
    finish_reason: null as "stop" | "length" | null,
  }));
  let promptTokens = 0;
  let completionTokens = 0;
  try {
    for await (const [index, event] of mergeEvents(calls)) {
      const choice = choices[index];
      if (!choice) continue;
      if (event.type === "chunk") choice.text += event.text;
      if (event.type === "done") {
        choice.finish_reason = finishReasonOf(event.finishReason);
        promptTokens += event.usage.promptTokens;
        completionTokens += event.usage.completionTokens;
      }
    }
  } catch (error) {
    calls.forEach((call) => call.cancel());
    throw timedOut() ? timeoutError() : error;
  }
  if (choices.some((choice) => choice.finish_reason === null)) {
    throw timedOut()
      ? timeoutError()
      : new PlatformError("internal_error", "The model ended without a result.");
  }
  return { ...meta, object: "text_completion", choices, usage: usageOf(promptTokens, completionTokens) };
}

async function streamCompletion(
  reply: FastifyReply,
  calls: InferenceCall[],
  meta: Meta,
  echoes: string[],
  includeUsage: boolean,
  timedOut: () => boolean,
): Promise<void> {
  const stream = new EventStream(reply, meta.id);
  // Unlike chat chunks, OpenAI's schema has no `usage: null` here: chunks before the last carry no usage at all.
  const chunk = (index: number, text: string, finishReason: "stop" | "length" | null): openai.Completion => ({
    ...meta,
    object: "text_completion",
    choices: [{ index, text, logprobs: null, finish_reason: finishReason }],
  });
  echoes.forEach((echo, index) => echo && stream.send(chunk(index, echo, null)));
  let promptTokens = 0;
  let completionTokens = 0;
  try {
    for await (const [index, event] of mergeEvents(calls)) {
      if (event.type === "chunk" && event.text) stream.send(chunk(index, event.text, null));
      if (event.type === "done") {
        stream.send(chunk(index, "", finishReasonOf(event.finishReason)));
        promptTokens += event.usage.promptTokens;
        completionTokens += event.usage.completionTokens;
      }
    }
    if (includeUsage) {
      stream.send({
        ...meta,
        object: "text_completion",
        choices: [],
        usage: usageOf(promptTokens, completionTokens),
      });
    }
    stream.done();
  } catch (error) {
    calls.forEach((call) => call.cancel());
    stream.fail(error, timedOut());
  }
}
