import { randomBytes, randomInt } from "node:crypto";
import {
  getLlama,
  LlamaChat,
  LlamaCompletion,
  LlamaLogLevel,
  TokenBias,
  resolveChatWrapper,
  resolveModelFile,
  type ChatHistoryItem,
  type ChatModelFunctions,
  type ChatModelResponse,
  type ChatWrapper,
  type GbnfJsonSchema,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaGrammar,
  type LlamaModel,
  type LLamaContextualRepeatPenalty,
  type Token,
} from "node-llama-cpp";
import {
  PlatformError,
  type ChatInput,
  type CompletionInput,
  type FinishReason,
  type InferenceMessage,
  type SamplingParams,
  type ToolDefinition,
} from "@llmaas/contracts";
import type { CatalogueModel } from "@llmaas/catalogue";
import { Pool } from "@llmaas/lifecycle";
import { forcedToolCallSchema, GrammarCache } from "./grammars.js";
import { ForcedToolCallStream } from "./tool-call-stream.js";

export interface EngineLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export async function createLlama(options: { gpu: "auto" | false; logger: EngineLogger }): Promise<Llama> {
  return getLlama({
    gpu: options.gpu,
    // A missing prebuilt binary should fail start-up with a clear error, not start a source build.
    build: "never",
    logLevel: LlamaLogLevel.warn,
    logger: (level, message) => {
      if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal)
        options.logger.error({ level }, message);
      else options.logger.warn({ level }, message);
    },
  });
}

/** How a chat answer is produced: free text, text under a grammar, the model's own tool calling, or a forced call. */
type ChatMode =
  | { type: "text" }
  | { type: "grammar"; output: Exclude<ChatInput["output"], { type: "text" }> }
  | { type: "functions"; functions: ChatModelFunctions; maxParallel: number }
  | { type: "forced-tool"; tools: ToolDefinition[] };

/** A request rendered and checked against the context window, ready to generate from. */
export type PreparedRequest =
  | { kind: "chat"; history: ChatHistoryItem[]; mode: ChatMode; promptTokens: number; maxTokens: number }
  | { kind: "completion"; tokens: Token[]; promptTokens: number; maxTokens: number };

export type GenerationEvent =
  | { type: "text"; text: string }
  | { type: "tool_call"; index: number; id?: string; name?: string; arguments: string };

export interface GenerationResult {
  finishReason: FinishReason;
  completionTokens: number;
}

export interface GenerateOptions {
  sampling: SamplingParams;
  signal: AbortSignal;
  onEvent: (event: GenerationEvent) => void;
}

function toolCallId(): string {
  return `call_${randomBytes(12).toString("base64url")}`;
}

/** OpenAI's penalties are additive on logits, as llama.cpp's presence and frequency penalties are. */
function repeatPenaltyOf(sampling: SamplingParams): false | LLamaContextualRepeatPenalty {
  const presencePenalty = sampling.presencePenalty ?? 0;
  const frequencyPenalty = sampling.frequencyPenalty ?? 0;
  if (presencePenalty === 0 && frequencyPenalty === 0) return false;
  return { penalty: 1, presencePenalty, frequencyPenalty, penalizeNewLine: true };
}

/** OpenAI's defaults: sampling at temperature 1 with no nucleus cut, and a fresh draw unless a seed is given. */
function samplingOptions(sampling: SamplingParams) {
  return {
    temperature: sampling.temperature ?? 1,
    topP: sampling.topP ?? 1,
    seed: sampling.seed ?? randomInt(2 ** 31),
    repeatPenalty: repeatPenaltyOf(sampling),
  };
}

/**
 * OpenAI's history (assistant tool calls, then one `tool` message per call) becomes node-llama-cpp's, where a
 * call and its result are one item of the model's response; the chat template then renders them in the model's
 * own tool-calling syntax.
 */
export function toChatHistory(messages: InferenceMessage[]): ChatHistoryItem[] {
  const results = new Map<string, string>();
  for (const message of messages)
    if (message.role === "tool") results.set(message.toolCallId, message.content);
  const history: ChatHistoryItem[] = [];
  for (const message of messages) {
    switch (message.role) {
      case "system":
      case "developer":
        history.push({ type: "system", text: message.content });
        break;
      case "user":
        history.push({ type: "user", text: message.content });
        break;
      case "assistant": {
        const response: ChatModelResponse["response"] = message.content ? [message.content] : [];
        for (const call of message.toolCalls) {
          response.push({
            type: "functionCall",
            name: call.name,
            params: parseJsonOrText(call.arguments),
            result: parseJsonOrText(results.get(call.id) ?? ""),
          });
        }
        history.push({ type: "model", response });
        break;
      }
      case "tool":
        break;
    }
  }
  return history;
}

function parseJsonOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function toFunctions(tools: ToolDefinition[]): ChatModelFunctions {
  return Object.fromEntries(
    tools.map((tool) => [
      tool.name,
      {
        ...(tool.description ? { description: tool.description } : {}),
        params: tool.parameters as GbnfJsonSchema,
      },
    ]),
  );
}

/**
 * One catalogue model loaded into one llama.cpp context with several sequences, so that many requests generate
 * in the same batches. Callers prepare a request first (cheap, and where context-length errors surface) and then
 * generate from it.
 */
export class ModelEngine {
  private readonly grammars: GrammarCache;
  private readonly noBias: TokenBias;

  private constructor(
    readonly entry: CatalogueModel,
    llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly chatWrapper: ChatWrapper,
    private readonly pool: Pool<LlamaContextSequence>,
  ) {
    this.grammars = new GrammarCache(llama);
    this.noBias = new TokenBias(model.tokenizer);
  }

  static async load(
    llama: Llama,
    entry: CatalogueModel,
    options: { threads: number; modelsDir: string },
  ): Promise<ModelEngine> {
    const modelPath = entry.resolvedSource.startsWith("hf:")
      ? await resolveModelFile(entry.resolvedSource, { directory: options.modelsDir, cli: false })
      : entry.resolvedSource;
    const model = await llama.loadModel({ modelPath });
    const sequences = entry.runtime.sequences;
    const context = await model.createContext({
      contextSize: entry.context_length,
      sequences,
      threads: entry.runtime.threads ?? options.threads,
      ...(entry.runtime.batch_size ? { batchSize: entry.runtime.batch_size } : {}),
    });
    const pool = new Pool(Array.from({ length: sequences }, () => context.getSequence()));
    return new ModelEngine(entry, llama, model, context, resolveChatWrapper(model), pool);
  }

  /** The context window one request may use: the catalogue's, unless llama.cpp gave less. */
  get contextLength(): number {
    return Math.min(this.entry.context_length, this.context.contextSize);
  }

  /**
   * `tokenAllowance`: input and output together stay within it (the request's quota reservation); `maxTokens` is 0
   * when the prompt alone reaches it.
   */
  prepare(
    input: ChatInput | CompletionInput,
    sampling: SamplingParams,
    tokenAllowance: number | null = null,
  ): PreparedRequest {
    if (input.kind === "completion") {
      const tokens =
        typeof input.prompt === "string"
          ? this.withBeginningToken(this.model.tokenize(input.prompt, false))
          : this.checkedTokens(input.prompt);
      const maxTokens = this.completionBudget(tokens.length, sampling, "prompt", tokenAllowance);
      return { kind: "completion", tokens, promptTokens: tokens.length, maxTokens };
    }
    const mode = chatModeOf(input);
    let history = toChatHistory(input.messages);
    if (mode.type === "forced-tool") {
      // The model still needs to know the tools it must call; the grammar only fixes the form of the call.
      history = [
        ...this.chatWrapper.addAvailableFunctionsSystemMessageToHistory(history, toFunctions(mode.tools), {
          documentParams: true,
        }),
      ];
    }
    const { contextText } = this.chatWrapper.generateContextState({
      chatHistory: [...history, { type: "model", response: [] }],
      ...(mode.type === "functions"
        ? { availableFunctions: mode.functions, documentFunctionParams: true }
        : {}),
    });
    const promptTokens = this.withBeginningToken(contextText.tokenize(this.model.tokenizer)).length;
    const maxTokens = this.completionBudget(promptTokens, sampling, "messages", tokenAllowance);
    return { kind: "chat", history, mode, promptTokens, maxTokens };
  }

  /** Prompt ids must exist in this model's vocabulary; llama.cpp would abort the process on one that does not. */
  private checkedTokens(tokens: number[]): Token[] {
    const vocabularySize = this.model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? Infinity;
    const bad = tokens.find((token) => token >= vocabularySize);
    if (bad !== undefined) {
      throw new PlatformError(
        "invalid_request",
        `Token id ${bad} is not in this model's vocabulary.`,
        "prompt",
      );
    }
    return tokens as Token[];
  }

  private completionBudget(
    promptTokens: number,
    sampling: SamplingParams,
    param: string,
    tokenAllowance: number | null,
  ): number {
    const room = this.contextLength - promptTokens;
    const requested = sampling.maxTokens;
    if (room < 1 || (requested !== null && requested > room)) {
      throw new PlatformError(
        "context_length_exceeded",
        `This model's maximum context length is ${this.contextLength} tokens. However, you requested ` +
          `${promptTokens + (requested ?? 1)} tokens (${promptTokens} in the ${param}, ${requested ?? 1} in the ` +
          `completion). Please reduce the length of the ${param} or completion.`,
        param,
      );
    }
    const budget = requested ?? room;
    // The generation is shortened rather than the request's reservation passed; 0 when the prompt alone fills it.
    return tokenAllowance === null ? budget : Math.max(0, Math.min(budget, tokenAllowance - promptTokens));
  }

  /** The prompt exactly as llama.cpp evaluates it, so the count billed is the count processed. */
  private withBeginningToken(tokens: Token[]): Token[] {
    const bos = this.model.tokens.bos;
    if (!this.model.tokens.shouldPrependBosToken || bos === null) return tokens;
    return tokens[0] === bos ? tokens : [bos, ...tokens];
  }

  async generate(request: PreparedRequest, options: GenerateOptions): Promise<GenerationResult> {
    const grammar = request.kind === "chat" ? await this.grammarFor(request.mode) : undefined;
    const sequence = await this.pool.acquire(options.signal);
    try {
      return request.kind === "chat"
        ? await this.generateChat(sequence, request, grammar, options)
        : await this.generateCompletion(sequence, request, options);
    } finally {
      this.pool.release(sequence);
    }
  }

  private grammarFor(mode: ChatMode): Promise<LlamaGrammar> | undefined {
    if (mode.type === "forced-tool") return this.grammars.forSchema(forcedToolCallSchema(mode.tools));
    if (mode.type !== "grammar") return undefined;
    return mode.output.type === "json_object"
      ? this.grammars.anyJson()
      : this.grammars.forSchema(mode.output.schema);
  }

  private async generateChat(
    sequence: LlamaContextSequence,
    request: Extract<PreparedRequest, { kind: "chat" }>,
    grammar: LlamaGrammar | undefined,
    options: GenerateOptions,
  ): Promise<GenerationResult> {
    const chat = new LlamaChat({
      contextSequence: sequence,
      chatWrapper: this.chatWrapper,
      autoDisposeSequence: false,
    });
    const { count: countSamples, total: sampled } = this.sampleCounter();
    const { mode } = request;
    const forced = mode.type === "forced-tool" ? new ForcedToolCallStream() : undefined;
    const forcedId = toolCallId();
    const emitForced = (deltas: ReturnType<ForcedToolCallStream["push"]>): void => {
      for (const delta of deltas) {
        options.onEvent({
          type: "tool_call",
          index: 0,
          ...(delta.name !== undefined ? { id: forcedId, name: delta.name } : {}),
          arguments: delta.arguments,
        });
      }
    };
    const announced = new Set<number>();
    try {
      const common = {
        ...samplingOptions(options.sampling),
        maxTokens: request.maxTokens,
        customStopTriggers: options.sampling.stop,
        signal: options.signal,
        stopOnAbortSignal: true,
        // OpenAI returns what the model wrote, trailing whitespace included; trimming it would also leave the
        // trimmed tokens out of the count, so they would be generated but never billed.
        trimWhitespaceSuffix: false,
        tokenBias: countSamples,
        onTextChunk: (text: string) => {
          if (forced) emitForced(forced.push(text));
          else options.onEvent({ type: "text", text });
        },
      };
      const result =
        mode.type === "functions"
          ? await chat.generateResponse(request.history, {
              ...common,
              functions: mode.functions,
              documentFunctionParams: true,
              maxParallelFunctionCalls: mode.maxParallel,
              onFunctionCallParamsChunk: (chunk) => {
                const first = !announced.has(chunk.callIndex);
                announced.add(chunk.callIndex);
                options.onEvent({
                  type: "tool_call",
                  index: chunk.callIndex,
                  ...(first ? { id: toolCallId(), name: chunk.functionName } : {}),
                  arguments: chunk.paramsChunk,
                });
              },
            })
          : await chat.generateResponse(request.history, { ...common, ...(grammar ? { grammar } : {}) });
      if (forced) emitForced(forced.finish());
      const stopReason = result.metadata.stopReason;
      const completionTokens = sampled();
      if (stopReason === "abort") return { finishReason: "cancelled", completionTokens };
      if (stopReason === "maxTokens") return { finishReason: "length", completionTokens };
      if (forced || stopReason === "functionCalls") return { finishReason: "tool_calls", completionTokens };
      return { finishReason: "stop", completionTokens };
    } finally {
      chat.dispose({ disposeSequence: false });
    }
  }

  private async generateCompletion(
    sequence: LlamaContextSequence,
    request: Extract<PreparedRequest, { kind: "completion" }>,
    options: GenerateOptions,
  ): Promise<GenerationResult> {
    const completion = new LlamaCompletion({ contextSequence: sequence, autoDisposeSequence: false });
    const { count: countSamples, total: sampled } = this.sampleCounter();
    try {
      const result = await completion.generateCompletionWithMeta(request.tokens, {
        ...samplingOptions(options.sampling),
        maxTokens: request.maxTokens,
        customStopTriggers: options.sampling.stop,
        disableContextShift: true,
        signal: options.signal,
        stopOnAbortSignal: true,
        tokenBias: countSamples,
        onTextChunk: (text) => options.onEvent({ type: "text", text }),
      });
      const stopReason = result.metadata.stopReason;
      const finishReason =
        stopReason === "maxTokens" ? "length" : stopReason === "abort" ? "cancelled" : "stop";
      return { finishReason, completionTokens: sampled() };
    } finally {
      completion.dispose({ disposeSequence: false });
    }
  }

  /**
   * Counts sampling steps, i.e. tokens generated. node-llama-cpp asks a token-bias function for its biases once per
   * sample; counting the tokens it hands to `onToken` instead would miss those it generates but holds back and
   * drops (trailing whitespace, the start of a stop sequence cut by max_tokens), which were computed and are
   * billed, as OpenAI bills them.
   */
  private sampleCounter(): { count: () => TokenBias; total: () => number } {
    let samples = 0;
    return {
      count: () => {
        samples++;
        return this.noBias;
      },
      total: () => samples,
    };
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }
}

function chatModeOf(input: ChatInput): ChatMode {
  const { tools, toolChoice, output } = input;
  if (tools.length > 0 && toolChoice.mode === "required") return { type: "forced-tool", tools };
  if (tools.length > 0 && toolChoice.mode === "function") {
    return { type: "forced-tool", tools: tools.filter((tool) => tool.name === toolChoice.name) };
  }
  if (tools.length > 0 && toolChoice.mode === "auto") {
    return {
      type: "functions",
      functions: toFunctions(tools),
      maxParallel: input.parallelToolCalls ? tools.length : 1,
    };
  }
  if (output.type !== "text") return { type: "grammar", output };
  return { type: "text" };
}
