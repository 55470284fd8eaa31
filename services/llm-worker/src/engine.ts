import { randomInt } from "node:crypto";
import {
  getLlama,
  LlamaCompletion,
  LlamaLogLevel,
  resolveChatWrapper,
  resolveModelFile,
  type ChatHistoryItem,
  type ChatWrapper,
  type Llama,
  type LlamaContext,
  type LlamaModel,
  type LlamaText,
  type Token,
} from "node-llama-cpp";
import {
  PlatformError,
  type FinishReason,
  type InferenceMessage,
  type SamplingParams,
} from "@llmaas/contracts";
import type { CatalogueModel } from "@llmaas/catalogue";
import { SequencePool } from "./sequence-pool.js";

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

/** A rendered prompt, checked against the context, ready to generate from. */
export interface PreparedPrompt {
  tokens: Token[];
  stopTriggers: (LlamaText | string)[];
  maxTokens: number;
}

export interface GenerationResult {
  finishReason: FinishReason;
  completionTokens: number;
}

export interface GenerateOptions {
  sampling: SamplingParams;
  signal: AbortSignal;
  onText: (text: string) => void;
}

/**
 * One catalogue model loaded into one llama.cpp context with several sequences, so that many requests generate
 * in the same batches. Callers prepare a prompt first (cheap, and where context-length errors surface) and then
 * generate from it.
 */
export class ModelEngine {
  private constructor(
    readonly entry: CatalogueModel,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly chatWrapper: ChatWrapper,
    private readonly pool: SequencePool,
  ) {}

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
    const pool = new SequencePool(Array.from({ length: sequences }, () => context.getSequence()));
    return new ModelEngine(entry, model, context, resolveChatWrapper(model), pool);
  }

  /** The context window one request may use: the catalogue's, unless llama.cpp gave less. */
  get contextLength(): number {
    return Math.min(this.entry.context_length, this.context.contextSize);
  }

  get freeSequences(): number {
    return this.pool.available;
  }

  prepareChat(messages: InferenceMessage[], sampling: SamplingParams): PreparedPrompt {
    const chatHistory: ChatHistoryItem[] = messages.map((message): ChatHistoryItem => {
      switch (message.role) {
        case "system":
        case "developer":
          return { type: "system", text: message.content };
        case "user":
          return { type: "user", text: message.content };
        case "assistant":
          return { type: "model", response: [message.content] };
      }
    });
    chatHistory.push({ type: "model", response: [] });
    const { contextText, stopGenerationTriggers } = this.chatWrapper.generateContextState({ chatHistory });
    const tokens = this.withBeginningToken(contextText.tokenize(this.model.tokenizer));
    const room = this.contextLength - tokens.length;
    const requested = sampling.maxTokens;
    if (room < 1 || (requested !== null && requested > room)) {
      throw new PlatformError(
        "context_length_exceeded",
        `This model's maximum context length is ${this.contextLength} tokens. However, you requested ` +
          `${tokens.length + (requested ?? 1)} tokens (${tokens.length} in the messages, ${requested ?? 1} in the ` +
          `completion). Please reduce the length of the messages or completion.`,
        "messages",
      );
    }
    return {
      tokens,
      stopTriggers: [...stopGenerationTriggers, ...sampling.stop],
      maxTokens: requested ?? room,
    };
  }

  /** The prompt exactly as llama.cpp evaluates it, so the count billed is the count processed. */
  private withBeginningToken(tokens: Token[]): Token[] {
    const bos = this.model.tokens.bos;
    if (!this.model.tokens.shouldPrependBosToken || bos === null) return tokens;
    return tokens[0] === bos ? tokens : [bos, ...tokens];
  }

  async generate(prompt: PreparedPrompt, options: GenerateOptions): Promise<GenerationResult> {
    const sequence = await this.pool.acquire(options.signal);
    const completion = new LlamaCompletion({ contextSequence: sequence, autoDisposeSequence: false });
    let completionTokens = 0;
    try {
      const { sampling } = options;
      const result = await completion.generateCompletionWithMeta(prompt.tokens, {
        maxTokens: prompt.maxTokens,
        // OpenAI's defaults: sampling at temperature 1 with no nucleus cut and no repeat penalty.
        temperature: sampling.temperature ?? 1,
        topP: sampling.topP ?? 1,
        // Without a seed llama.cpp's sampler repeats itself across requests; OpenAI's contract is a fresh draw.
        seed: sampling.seed ?? randomInt(2 ** 31),
        repeatPenalty: false,
        customStopTriggers: prompt.stopTriggers,
        disableContextShift: true,
        signal: options.signal,
        stopOnAbortSignal: true,
        onToken: (tokens) => {
          completionTokens += tokens.length;
        },
        onTextChunk: options.onText,
      });
      return { finishReason: finishReasonOf(result.metadata.stopReason), completionTokens };
    } finally {
      completion.dispose({ disposeSequence: false });
      this.pool.release(sequence);
    }
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }
}

function finishReasonOf(stopReason: string): FinishReason {
  if (stopReason === "maxTokens") return "length";
  if (stopReason === "abort") return "cancelled";
  return "stop";
}
