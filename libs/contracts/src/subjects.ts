import { z } from "zod";
import { ErrorPayload } from "./errors.js";
import { eventSubject, requestSubject } from "./definitions.js";
import { AuthPrincipal } from "./auth.js";

/**
 * Model ids may contain dots (`granite-3.1-8b`), which separate NATS subject tokens; anything outside a safe set
 * is percent-encoded so one model id is always exactly one token.
 */
export function subjectToken(value: string): string {
  return value.replace(
    /[^A-Za-z0-9_-]/g,
    (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// inference

export const ToolCall = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  /** JSON text, exactly as the model produced it (OpenAI's `function.arguments`). */
  arguments: z.string(),
});
export type ToolCall = z.infer<typeof ToolCall>;

export const InferenceMessage = z.discriminatedUnion("role", [
  z.object({ role: z.enum(["system", "developer", "user"]), content: z.string() }),
  z.object({ role: z.literal("assistant"), content: z.string(), toolCalls: z.array(ToolCall).default([]) }),
  z.object({ role: z.literal("tool"), toolCallId: z.string(), content: z.string() }),
]);
export type InferenceMessage = z.infer<typeof InferenceMessage>;

/** A JSON Schema already checked by the gateway to be within what grammar-constrained decoding supports. */
export const JsonSchema = z.record(z.string(), z.unknown());
export type JsonSchema = z.infer<typeof JsonSchema>;

export const ToolDefinition = z.object({
  name: z.string().min(1),
  description: z.string().nullable(),
  parameters: JsonSchema,
});
export type ToolDefinition = z.infer<typeof ToolDefinition>;

/** `auto` lets the model decide; `required` and `function` force a call, enforced by a grammar. */
export const ToolChoice = z.discriminatedUnion("mode", [
  z.object({ mode: z.enum(["none", "auto", "required"]) }),
  z.object({ mode: z.literal("function"), name: z.string().min(1) }),
]);
export type ToolChoice = z.infer<typeof ToolChoice>;

/** What shape the answer must take; anything but `text` is enforced during generation by a grammar. */
export const OutputFormat = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text") }),
  z.object({ type: z.literal("json_object") }),
  z.object({ type: z.literal("json_schema"), schema: JsonSchema }),
]);
export type OutputFormat = z.infer<typeof OutputFormat>;

export const SamplingParams = z.object({
  maxTokens: z.number().int().positive().nullable(),
  temperature: z.number().min(0).max(2).nullable(),
  topP: z.number().min(0).max(1).nullable(),
  seed: z.number().int().nullable(),
  stop: z.array(z.string()).max(4),
  presencePenalty: z.number().min(-2).max(2).nullable(),
  frequencyPenalty: z.number().min(-2).max(2).nullable(),
});
export type SamplingParams = z.infer<typeof SamplingParams>;

export const ChatInput = z.object({
  kind: z.literal("chat"),
  messages: z.array(InferenceMessage).min(1),
  tools: z.array(ToolDefinition),
  toolChoice: ToolChoice,
  parallelToolCalls: z.boolean(),
  output: OutputFormat,
});
export type ChatInput = z.infer<typeof ChatInput>;

/** The legacy completions API: raw text (or token ids) continued without a chat template. */
export const CompletionInput = z.object({
  kind: z.literal("completion"),
  prompt: z.union([z.string(), z.array(z.number().int().nonnegative()).min(1)]),
});
export type CompletionInput = z.infer<typeof CompletionInput>;

export const InferenceRequest = z.object({
  requestId: z.string().min(1),
  model: z.string().min(1),
  principal: AuthPrincipal,
  /** The application's end user, kept for metering only. */
  endUser: z.string().max(256).nullable(),
  input: z.discriminatedUnion("kind", [ChatInput, CompletionInput]),
  sampling: SamplingParams,
  /**
   * Input and output tokens together may not exceed this: what the gateway reserved for the request on its limits
   * (docs/quotas.md). The worker shortens the generation to fit, so metered usage never passes a reservation. null
   * where quotas are not enforced.
   */
  tokenAllowance: z.number().int().positive().nullable().default(null),
  /** Where the worker publishes this request's InferenceEvents; an inbox only the requesting gateway reads. */
  eventsSubject: z.string().regex(/^llm\.v1\.events\.[A-Za-z0-9_%-]+$/),
});
export type InferenceRequest = z.infer<typeof InferenceRequest>;

export const InferenceAccepted = z.object({
  workerId: z.string(),
  promptTokens: z.number().int().nonnegative(),
  /**
   * false when the prompt alone reaches the request's `tokenAllowance` (a chat template that added more than the
   * gateway's bound allowed for): nothing was generated, and `promptTokens` tells the gateway what to reserve before
   * it asks again.
   */
  started: z.boolean().default(true),
});
export type InferenceAccepted = z.infer<typeof InferenceAccepted>;

/** Workers of one model share a queue group on this subject, so NATS spreads requests across them. */
export const llmChat = {
  ...requestSubject("llm.v1.chat.*", InferenceRequest, InferenceAccepted),
  forModel: (modelId: string) => `llm.v1.chat.${subjectToken(modelId)}`,
  queueGroup: (modelId: string) => `llm-worker.${subjectToken(modelId)}`,
};

export const FinishReason = z.enum(["stop", "length", "tool_calls", "cancelled"]);
export type FinishReason = z.infer<typeof FinishReason>;

export const TokenUsage = z.object({
  promptTokens: z.number().int().nonnegative(),
  completionTokens: z.number().int().nonnegative(),
});
export type TokenUsage = z.infer<typeof TokenUsage>;

/** What a worker streams back for one request, in order; `seq` lets the gateway detect a lost message. */
export const InferenceEvent = z.discriminatedUnion("type", [
  z.object({ type: z.literal("chunk"), seq: z.number().int().nonnegative(), text: z.string() }),
  /** A tool call as deltas: its first event names it, later ones append to its arguments. */
  z.object({
    type: z.literal("tool_call"),
    seq: z.number().int().nonnegative(),
    index: z.number().int().nonnegative(),
    id: z.string().optional(),
    name: z.string().optional(),
    arguments: z.string(),
  }),
  z.object({
    type: z.literal("done"),
    seq: z.number().int().nonnegative(),
    finishReason: FinishReason,
    usage: TokenUsage,
  }),
  z.object({
    type: z.literal("error"),
    seq: z.number().int().nonnegative(),
    error: ErrorPayload,
  }),
]);
export type InferenceEvent = z.infer<typeof InferenceEvent>;

export const inferenceEvents = {
  ...eventSubject("llm.v1.events.*", InferenceEvent),
  forRequest: (requestId: string) => `llm.v1.events.${subjectToken(requestId)}`,
};

export const InferenceCancel = z.object({ requestId: z.string().min(1) });
export type InferenceCancel = z.infer<typeof InferenceCancel>;

/** Broadcast to every worker: the one holding the request stops generating; the others ignore it. */
export const llmCancel = eventSubject("llm.v1.cancel", InferenceCancel);

// ---------------------------------------------------------------------------------------------------------------
// metering (JetStream: persisted, so never any content)

export const UsageStatus = z.enum(["completed", "cancelled", "failed"]);
export type UsageStatus = z.infer<typeof UsageStatus>;

/** What a request did, as metering groups it: the completions usage covers both chat and legacy completions. */
export const UsageOperation = z.enum([
  "chat.completions",
  "completions",
  "embeddings",
  "audio.transcriptions",
  /** `POST /v1/guardrail/screen`, metered in inputs screened (the guardrail on an inference path is not metered). */
  "guardrail.screen",
]);
export type UsageOperation = z.infer<typeof UsageOperation>;

const usageCounts = {
  requestId: z.string().min(1),
  keyId: z.string(),
  endUser: z.string().nullable(),
  model: z.string(),
  operation: UsageOperation,
  /** Input tokens. */
  promptTokens: z.number().int().nonnegative(),
  /** Output tokens. */
  completionTokens: z.number().int().nonnegative(),
  /** Audio billed, in whole seconds (rounded up per request); absent from events published before audio. */
  audioSeconds: z.number().int().nonnegative().default(0),
  /** Texts screened by `POST /v1/guardrail/screen`; absent from events published before the guardrail. */
  screenedInputs: z.number().int().nonnegative().default(0),
  status: UsageStatus,
  servedBy: z.string(),
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
};

/** One request's usage, attributed to the organization, project and key that made it. */
export const UsageEvent = z.object({
  version: z.literal(2),
  organizationId: z.string(),
  projectId: z.string(),
  ...usageCounts,
});
export type UsageEvent = z.infer<typeof UsageEvent>;

export const usageRecorded = eventSubject("usage.v2.recorded", UsageEvent);

/**
 * Version 1, from before organizations, attributed to a bare tenant. Nothing publishes it any more; metering still
 * reads it so that events still in the stream when a deployment upgrades are counted, not dropped.
 */
export const UsageEventV1 = z.object({ version: z.literal(1), tenantId: z.string(), ...usageCounts });
export type UsageEventV1 = z.infer<typeof UsageEventV1>;

export const usageRecordedV1 = eventSubject("usage.v1.recorded", UsageEventV1);

export interface StreamDefinition {
  name: string;
  subjects: string[];
  /** Window within which a repeated `Nats-Msg-Id` is dropped by the server. */
  duplicateWindowMs: number;
  /** Kept this long after being written, so metering can be replayed after an incident. */
  maxAgeMs: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export const usageStream: StreamDefinition = {
  name: "USAGE",
  subjects: ["usage.v1.>", "usage.v2.>"],
  duplicateWindowMs: 15 * 60 * 1000,
  maxAgeMs: 30 * DAY_MS,
};

// ---------------------------------------------------------------------------------------------------------------
// embeddings

/** OpenAI's limit on inputs per request; the gateway splits them into smaller batches for the workers. */
export const MAX_EMBEDDING_INPUTS = 2048;

/** One text, or token ids of the model's own vocabulary. */
export const EmbeddingInput = z.union([z.string().min(1), z.array(z.number().int().nonnegative()).min(1)]);
export type EmbeddingInput = z.infer<typeof EmbeddingInput>;

export const EmbeddingRequest = z.object({
  /** Unique per batch: the usage of each batch is one event, keyed by this id. */
  requestId: z.string().min(1),
  model: z.string().min(1),
  principal: AuthPrincipal,
  /** The application's end user, kept for metering only. */
  endUser: z.string().max(256).nullable(),
  inputs: z.array(EmbeddingInput).min(1).max(MAX_EMBEDDING_INPUTS),
  /** Position of the first input in the client's request, so that errors name the input the client sent. */
  firstIndex: z.number().int().nonnegative(),
  /** Keep this many leading dimensions (the model allows it: checked by the gateway); null keeps them all. */
  dimensions: z.number().int().positive().nullable(),
});
export type EmbeddingRequest = z.infer<typeof EmbeddingRequest>;

export const EmbeddingResult = z.object({
  workerId: z.string(),
  /**
   * One unit-length vector per input, in input order, as base64 of little-endian float32: about a quarter of the
   * size of JSON numbers, and exactly OpenAI's `encoding_format: "base64"`, which the gateway passes through as is.
   */
  embeddings: z.array(z.base64()),
  /** Tokens evaluated, including any the model adds around each input. */
  promptTokens: z.number().int().nonnegative(),
});
export type EmbeddingResult = z.infer<typeof EmbeddingResult>;

/** Workers of one embedding model share a queue group on this subject; the reply carries the vectors. */
export const llmEmbed = {
  ...requestSubject("llm.v1.embed.*", EmbeddingRequest, EmbeddingResult),
  forModel: (modelId: string) => `llm.v1.embed.${subjectToken(modelId)}`,
  queueGroup: (modelId: string) => `llm-worker.${subjectToken(modelId)}`,
};

const FLOAT32_BYTES = 4;

/** Little-endian whatever the machine, as OpenAI's clients decode it. */
export function encodeFloat32Base64(values: ArrayLike<number>): string {
  const bytes = Buffer.allocUnsafe(values.length * FLOAT32_BYTES);
  for (let i = 0; i < values.length; i++) bytes.writeFloatLE(values[i] ?? 0, i * FLOAT32_BYTES);
  return bytes.toString("base64");
}

export function decodeFloat32Base64(text: string): number[] {
  const bytes = Buffer.from(text, "base64");
  return Array.from({ length: bytes.length / FLOAT32_BYTES }, (_, i) => bytes.readFloatLE(i * FLOAT32_BYTES));
}

/** Length of the base64 text of a vector of `dimensions` float32s. */
export function float32Base64Length(dimensions: number): number {
  return 4 * Math.ceil((dimensions * FLOAT32_BYTES) / 3);
}
