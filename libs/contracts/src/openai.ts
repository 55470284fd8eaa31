import { z } from "zod";
import { MAX_EMBEDDING_INPUTS } from "./subjects.js";

/**
 * The OpenAI wire shapes the gateway accepts and returns. Request schemas are strict: a field the platform does not
 * understand is refused with a 400 naming it rather than silently ignored, so a client never believes a setting
 * took effect when it did not.
 */

const TextContentPart = z.strictObject({ type: z.literal("text"), text: z.string() });
const ImageContentPart = z.strictObject({
  type: z.literal("image_url"),
  image_url: z.strictObject({ url: z.string(), detail: z.enum(["auto", "low", "high"]).optional() }),
});

const TextContent = z.union([z.string(), z.array(TextContentPart).min(1)]);
const UserContent = z.union([
  z.string(),
  z.array(z.discriminatedUnion("type", [TextContentPart, ImageContentPart])).min(1),
]);

const FunctionName = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, "function names are 1-64 letters, digits, underscores or dashes");

const SystemMessage = z.strictObject({
  role: z.enum(["system", "developer"]),
  content: TextContent,
  name: z.string().optional(),
});
const UserMessage = z.strictObject({
  role: z.literal("user"),
  content: UserContent,
  name: z.string().optional(),
});
const AssistantToolCall = z.strictObject({
  id: z.string().min(1),
  type: z.literal("function"),
  function: z.strictObject({ name: FunctionName, arguments: z.string() }),
});
const AssistantMessage = z.strictObject({
  role: z.literal("assistant"),
  content: TextContent.nullable().optional(),
  name: z.string().optional(),
  refusal: z.string().nullable().optional(),
  tool_calls: z.array(AssistantToolCall).optional(),
});
const ToolMessage = z.strictObject({
  role: z.literal("tool"),
  content: TextContent,
  tool_call_id: z.string().min(1),
});

export const ChatCompletionMessage = z.discriminatedUnion("role", [
  SystemMessage,
  UserMessage,
  AssistantMessage,
  ToolMessage,
]);
export type ChatCompletionMessage = z.infer<typeof ChatCompletionMessage>;

const Stop = z.union([z.string(), z.array(z.string()).min(1).max(4)]).nullable();

const Tool = z.strictObject({
  type: z.literal("function"),
  function: z.strictObject({
    name: FunctionName,
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullable().optional(),
  }),
});

const ToolChoice = z.union([
  z.enum(["none", "auto", "required"]),
  z.strictObject({ type: z.literal("function"), function: z.strictObject({ name: FunctionName }) }),
]);

const ResponseFormat = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("text") }),
  z.strictObject({ type: z.literal("json_object") }),
  z.strictObject({
    type: z.literal("json_schema"),
    json_schema: z.strictObject({
      name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
      description: z.string().optional(),
      schema: z.record(z.string(), z.unknown()).optional(),
      strict: z.boolean().nullable().optional(),
    }),
  }),
]);

const Penalty = z.number().min(-2).max(2).nullable().optional();
const StreamOptions = z.strictObject({ include_usage: z.boolean().optional() }).nullable().optional();
/** Accepted only at values that ask for nothing the platform does not do. */
const OnlyOne = z.literal(1, { error: "Only 1 is supported." }).nullable().optional();

export const ChatCompletionRequest = z.strictObject({
  model: z.string().min(1),
  messages: z.array(ChatCompletionMessage).min(1),
  stream: z.boolean().nullable().optional(),
  stream_options: StreamOptions,
  max_tokens: z.number().int().positive().nullable().optional(),
  max_completion_tokens: z.number().int().positive().nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  seed: z.number().int().nullable().optional(),
  stop: Stop.optional(),
  n: OnlyOne,
  presence_penalty: Penalty,
  frequency_penalty: Penalty,
  logprobs: z.literal(false, { error: "Log probabilities are not supported." }).nullable().optional(),
  top_logprobs: z.literal(0, { error: "Log probabilities are not supported." }).nullable().optional(),
  user: z.string().max(256).optional(),
  tools: z.array(Tool).max(128).optional(),
  tool_choice: ToolChoice.optional(),
  parallel_tool_calls: z.boolean().optional(),
  response_format: ResponseFormat.optional(),
  /** Nothing is ever stored; a client asking for storage is told so. */
  store: z
    .literal(false, { error: "Storing completions is not offered: nothing is retained." })
    .nullable()
    .optional(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

const TokenIds = z.array(z.number().int().nonnegative()).min(1);

export const CompletionRequest = z.strictObject({
  model: z.string().min(1),
  prompt: z.union([z.string(), z.array(z.string()).min(1), TokenIds, z.array(TokenIds).min(1)]),
  stream: z.boolean().nullable().optional(),
  stream_options: StreamOptions,
  /** OpenAI's default for this endpoint is 16. */
  max_tokens: z.number().int().positive().nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  seed: z.number().int().nullable().optional(),
  stop: Stop.optional(),
  n: OnlyOne,
  best_of: OnlyOne,
  presence_penalty: Penalty,
  frequency_penalty: Penalty,
  echo: z.boolean().nullable().optional(),
  logprobs: z.literal(0, { error: "Log probabilities are not supported." }).nullable().optional(),
  suffix: z.null({ error: "Suffixes (insertion) are not supported." }).optional(),
  user: z.string().max(256).optional(),
});
export type CompletionRequest = z.infer<typeof CompletionRequest>;

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
      message: z.object({
        role: z.literal("assistant"),
        content: z.string().nullable(),
        refusal: z.null(),
        tool_calls: z.array(AssistantToolCall).optional(),
      }),
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
      delta: z.object({
        role: z.literal("assistant").optional(),
        content: z.string().nullable().optional(),
        tool_calls: z
          .array(
            z.object({
              index: z.number().int(),
              id: z.string().optional(),
              type: z.literal("function").optional(),
              function: z.object({ name: z.string().optional(), arguments: z.string() }),
            }),
          )
          .optional(),
      }),
      logprobs: z.null(),
      finish_reason: ChatFinishReason.nullable(),
    }),
  ),
  usage: CompletionUsage.nullable().optional(),
});
export type ChatCompletionChunk = z.infer<typeof ChatCompletionChunk>;

export const Completion = z.object({
  id: z.string(),
  object: z.literal("text_completion"),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number().int(),
      text: z.string(),
      logprobs: z.null(),
      finish_reason: z.enum(["stop", "length", "content_filter"]).nullable(),
    }),
  ),
  usage: CompletionUsage.nullable().optional(),
});
export type Completion = z.infer<typeof Completion>;

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
  "requests",
  "insufficient_quota",
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

// ---------------------------------------------------------------------------------------------------------------
// embeddings

const EmbeddingText = z.string().min(1, { error: "Empty strings cannot be embedded." });
const EmbeddingTokens = z
  .array(z.number().int().nonnegative())
  .min(1, { error: "Empty token arrays cannot be embedded." });

export const EmbeddingRequest = z.strictObject({
  model: z.string().min(1),
  /** OpenAI refuses empty inputs rather than embedding nothing. */
  input: z.union(
    [
      EmbeddingText,
      z.array(EmbeddingText).min(1).max(MAX_EMBEDDING_INPUTS),
      EmbeddingTokens.max(MAX_EMBEDDING_INPUTS),
      z.array(EmbeddingTokens).min(1).max(MAX_EMBEDDING_INPUTS),
    ],
    {
      error:
        `input must be a non-empty string, an array of 1 to ${MAX_EMBEDDING_INPUTS} non-empty strings, an ` +
        `array of token ids, or an array of 1 to ${MAX_EMBEDDING_INPUTS} non-empty arrays of token ids.`,
    },
  ),
  encoding_format: z.enum(["float", "base64"]).optional(),
  dimensions: z.number().int().min(1).optional(),
  user: z.string().max(256).optional(),
});
export type EmbeddingRequest = z.infer<typeof EmbeddingRequest>;

export const Embedding = z.object({
  object: z.literal("embedding"),
  index: z.number().int(),
  /** Floats, or base64 of little-endian float32 when the client asks for `encoding_format: "base64"`. */
  embedding: z.union([z.array(z.number()), z.string()]),
});
export type Embedding = z.infer<typeof Embedding>;

export const EmbeddingResponse = z.object({
  object: z.literal("list"),
  data: z.array(Embedding),
  model: z.string(),
  usage: z.object({ prompt_tokens: z.number().int(), total_tokens: z.number().int() }),
});
export type EmbeddingResponse = z.infer<typeof EmbeddingResponse>;
