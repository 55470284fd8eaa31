import type { FastifyInstance } from "fastify";
import { trace } from "@opentelemetry/api";
import type { Bus } from "@llmaas/bus";
import type { Catalogue } from "@llmaas/catalogue";
import {
  decodeFloat32Base64,
  float32Base64Length,
  llmEmbed,
  openai,
  PlatformError,
  type EmbeddingInput,
  type TokenUsage,
} from "@llmaas/contracts";
import { apiKeyOf, attributionOf } from "../auth/index.js";
import { resolveModel } from "../model-resolution.js";
import { admitIfEnforced, embeddingCost, inputTokenBound, type Quotas } from "../quotas/index.js";
import { parseBody } from "../validation.js";
import { newId } from "./chat.js";

export interface EmbeddingRouteOptions {
  bus: Bus;
  catalogue: Catalogue;
  requestTimeoutMs: number;
  /** null where enforcement is switched off. */
  quotas: Quotas | null;
}

/**
 * Inputs per worker request: small enough that a large request spreads across the model's workers (and across
 * each worker's contexts), large enough that the bus round trip stays a small part of the work.
 */
const INPUTS_PER_BATCH = 16;
/** NATS's own default, for a server that does not say. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Room in each message for what is not inputs or vectors: ids, principal, JSON envelope, headers. */
const ENVELOPE_BYTES = 8 * 1024;

export interface Batch {
  firstIndex: number;
  inputs: EmbeddingInput[];
}

function inputsOf(input: openai.EmbeddingRequest["input"]): EmbeddingInput[] {
  if (typeof input === "string") return [input];
  if (input.every((item) => typeof item === "number")) return [input];
  return input;
}

/** Consecutive inputs in batches whose request and reply each fit in one NATS message. */
export function batchesOf(inputs: EmbeddingInput[], vectorBytes: number, budget: number): Batch[] {
  const batches: Batch[] = [];
  let current: Batch = { firstIndex: 0, inputs: [] };
  let requestBytes = 0;
  inputs.forEach((input, index) => {
    const inputBytes = Buffer.byteLength(JSON.stringify(input)) + 1;
    if (inputBytes > budget) {
      throw new PlatformError(
        "invalid_request",
        `input[${index}] is ${inputBytes} bytes long; an input may be at most ${budget} bytes.`,
        "input",
      );
    }
    const full =
      current.inputs.length >= INPUTS_PER_BATCH ||
      requestBytes + inputBytes > budget ||
      (current.inputs.length + 1) * vectorBytes > budget;
    if (current.inputs.length > 0 && full) {
      batches.push(current);
      current = { firstIndex: index, inputs: [] };
      requestBytes = 0;
    }
    current.inputs.push(input);
    requestBytes += inputBytes;
  });
  batches.push(current);
  return batches;
}

export function registerEmbeddingRoutes(app: FastifyInstance, options: EmbeddingRouteOptions): void {
  const { bus, catalogue } = options;

  app.post("/v1/embeddings", async (request, reply): Promise<openai.EmbeddingResponse> => {
    const body = parseBody(openai.EmbeddingRequest, request.body);
    const apiKey = apiKeyOf(request);
    const { model, headers } = resolveModel(catalogue, body.model, "embeddings", apiKey);
    const settings = model.embeddings;
    if (!settings) throw new PlatformError("internal_error", `The catalogue lacks ${model.id}'s embeddings.`);
    const dimensions = body.dimensions ?? null;
    if (dimensions !== null && !settings.matryoshka) {
      throw new PlatformError(
        "invalid_request",
        `The model \`${model.id}\` does not support shortened embeddings: leave out dimensions.`,
        "dimensions",
      );
    }
    if (dimensions !== null && dimensions > settings.dimensions) {
      throw new PlatformError(
        "invalid_request",
        `The model \`${model.id}\` produces ${settings.dimensions} dimensions; ${dimensions} were requested.`,
        "dimensions",
      );
    }
    void reply.headers(headers);
    const requestId = newId("embd");
    void reply.header("x-request-id", requestId);
    trace.getActiveSpan()?.setAttributes({
      "gen_ai.operation.name": "embeddings",
      "gen_ai.request.model": model.id,
      "gen_ai.response.id": requestId,
    });

    const maxPayload = bus.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
    const vectorBytes = float32Base64Length(dimensions ?? settings.dimensions) + 3;
    const inputs = inputsOf(body.input);
    const batches = batchesOf(inputs, vectorBytes, maxPayload - ENVELOPE_BYTES);
    const admission = await admitIfEnforced(
      options.quotas,
      reply,
      apiKey,
      model,
      embeddingCost(model, inputs.map(inputTokenBound)),
    );
    // Every batch is its own worker request, metered under its own id; a failed one fails the whole request.
    const settlements = batches.map((_, n) => {
      let report: (usage: TokenUsage | null) => void = () => undefined;
      const usage = new Promise<TokenUsage | null>((resolve) => {
        report = resolve;
      });
      return { requestId: `${requestId}-${n}`, usage, report };
    });
    admission?.settleWhen(settlements);
    const results = await Promise.all(
      batches.map(async (batch, n) => {
        const settlement = settlements[n] as (typeof settlements)[number];
        const result = await bus
          .request(
            llmEmbed,
            llmEmbed.forModel(model.id),
            {
              requestId: settlement.requestId,
              model: model.id,
              principal: attributionOf(apiKey),
              endUser: body.user ?? null,
              inputs: batch.inputs,
              firstIndex: batch.firstIndex,
              dimensions,
            },
            { timeoutMs: options.requestTimeoutMs },
          )
          .catch((error: unknown) => {
            // The worker may still have embedded the batch: metering has the last word on what it used.
            settlement.report(null);
            throw error;
          });
        settlement.report({ promptTokens: result.promptTokens, completionTokens: 0 });
        if (result.embeddings.length !== batch.inputs.length) {
          throw new PlatformError("internal_error", "The model returned the wrong number of embeddings.");
        }
        return result;
      }),
    );

    const asFloats = body.encoding_format !== "base64";
    const promptTokens = results.reduce((sum, result) => sum + result.promptTokens, 0);
    return {
      object: "list",
      data: results
        .flatMap((result) => result.embeddings)
        .map((embedding, index) => ({
          object: "embedding",
          index,
          embedding: asFloats ? decodeFloat32Base64(embedding) : embedding,
        })),
      model: model.id,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    };
  });
}
