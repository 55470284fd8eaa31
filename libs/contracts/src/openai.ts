import { z } from "zod";

/**
 * The OpenAI wire shapes the gateway accepts and returns. Request schemas are strict: a field the platform does not
 * understand is refused with a 400 naming it rather than silently ignored, so a client never believes a setting
 * took effect when it did not.
 */

const TextContentPart = z.strictObject({ type: z.literal("text"), text: z.string() });

const MessageContent = z.union([z.string(), z.array(TextContentPart).min(1)]);

const SystemMessage = z.strictObject({
  role: z.enum(["system", "developer"]),
  content: MessageContent,
  name: z.string().optional(),
});
const UserMessage = z.strictObject({
  role: z.literal("user"),
  content: MessageContent,
  name: z.string().optional(),
});
const AssistantMessage = z.strictObject({
  role: z.literal("assistant"),
  content: MessageContent.nullable().optional(),
  name: z.string().optional(),
});

export const ChatCompletionMessage = z.discriminatedUnion("role", [
  SystemMessage,
  UserMessage,
  AssistantMessage,
]);
export type ChatCompletionMessage = z.infer<typeof ChatCompletionMessage>;

const Stop = z.union([z.string(), z.array(z.string()).min(1).max(4)]).nullable();

export const ChatCompletionRequest = z.strictObject({
  model: z.string().min(1),
  messages: z.array(ChatCompletionMessage).min(1),
  stream: z.boolean().nullable().optional(),
  stream_options: z.strictObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  max_tokens: z.number().int().positive().nullable().optional(),
  max_completion_tokens: z.number().int().positive().nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  seed: z.number().int().nullable().optional(),
  stop: Stop.optional(),
  n: z.literal(1, { error: "Only n=1 is supported." }).nullable().optional(),
  user: z.string().max(256).optional(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

export const CompletionUsage = z.object({
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  total_tokens: z.number().int(),
});
export type CompletionUsage = z.infer<typeof CompletionUsage>;

export const ChatFinishReason = z.enum(["stop", "length", "tool_calls", "content_filter", "function_call"]);
export type ChatFinishReason = z.infer<typeof ChatFinishReason>;

export const ChatCompletionResponse = z.object({
  id: z.string(),
  object: z.literal("chat.completion"),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number().int(),
      message: z.object({ role: z.literal("assistant"), content: z.string().nullable(), refusal: z.null() }),
      logprobs: z.null(),
      finish_reason: ChatFinishReason,
    }),
  ),
  usage: CompletionUsage,
});
export type ChatCompletionResponse = z.infer<typeof ChatCompletionResponse>;

export const ChatCompletionChunk = z.object({
  id: z.string(),
  object: z.literal("chat.completion.chunk"),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number().int(),
      delta: z.object({ role: z.literal("assistant").optional(), content: z.string().optional() }),
      logprobs: z.null(),
      finish_reason: ChatFinishReason.nullable(),
    }),
  ),
  usage: CompletionUsage.nullable().optional(),
});
export type ChatCompletionChunk = z.infer<typeof ChatCompletionChunk>;

export const Model = z.object({
  id: z.string(),
  object: z.literal("model"),
  created: z.number().int(),
  owned_by: z.string(),
});
export type Model = z.infer<typeof Model>;

export const ModelList = z.object({ object: z.literal("list"), data: z.array(Model) });
export type ModelList = z.infer<typeof ModelList>;

export const OpenAIErrorType = z.enum([
  "invalid_request_error",
  "authentication_error",
  "not_found_error",
  "rate_limit_error",
  "server_error",
  "timeout_error",
]);

export const OpenAIErrorBody = z.object({
  error: z.object({
    message: z.string(),
    type: OpenAIErrorType,
    param: z.string().nullable(),
    code: z.string().nullable(),
  }),
});
export type OpenAIErrorBody = z.infer<typeof OpenAIErrorBody>;
