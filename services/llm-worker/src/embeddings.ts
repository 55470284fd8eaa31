import type { Span } from "@opentelemetry/api";
import {
  resolveModelFile,
  type Llama,
  type LlamaEmbeddingContext,
  type LlamaModel,
  type Token,
} from "node-llama-cpp";
import { ensureStream, type Bus } from "@llmaas/bus";
import {
  encodeFloat32Base64,
  llmEmbed,
  PlatformError,
  usageStream,
  type EmbeddingInput,
  type EmbeddingRequest,
  type EmbeddingResult,
  type UsageStatus,
} from "@llmaas/contracts";
import type { CatalogueModel } from "@llmaas/catalogue";
import { usageEventOf } from "@llmaas/usage";
import type { UsageOutbox } from "@llmaas/usage";

/** Inputs as token ids, checked against the model's context window; `promptTokens` is what will be evaluated. */
export interface PreparedEmbeddings {
  tokens: Token[][];
  promptTokens: number;
}

/**
 * One catalogue embedding model with a small pool of embedding contexts (`runtime.sequences` of them). llama.cpp
 * embeds one input per evaluation of a context, so a request's inputs are spread across the pool concurrently.
 */
export class EmbeddingEngine {
  private readonly free: LlamaEmbeddingContext[];
  private readonly waiters: Array<(context: LlamaEmbeddingContext) => void> = [];

  private constructor(
    readonly entry: CatalogueModel,
    /** The length of the model's vectors, as checked against the catalogue at load. */
    readonly dimensions: number,
    private readonly model: LlamaModel,
    private readonly contexts: readonly [LlamaEmbeddingContext, ...LlamaEmbeddingContext[]],
  ) {
    this.free = [...contexts];
  }

  static async load(
    llama: Llama,
    entry: CatalogueModel,
    options: { threads: number; modelsDir: string },
  ): Promise<EmbeddingEngine> {
    if (!entry.embeddings) throw new Error(`catalogue model ${entry.id} has no embeddings settings`);
    const modelPath = entry.resolvedSource.startsWith("hf:")
      ? await resolveModelFile(entry.resolvedSource, { directory: options.modelsDir, cli: false })
      : entry.resolvedSource;
    const model = await llama.loadModel({ modelPath });
    const contexts: LlamaEmbeddingContext[] = [];
    for (let i = 0; i < entry.runtime.sequences; i++) {
      contexts.push(
        await model.createEmbeddingContext({
          contextSize: entry.context_length,
          // llama.cpp pools the embedding over one batch, so an input split over several would be embedded by
          // its last part only: a batch holds the whole context.
          batchSize: entry.context_length,
          threads: entry.runtime.threads ?? options.threads,
        }),
      );
    }
    const [first, ...others] = contexts;
    if (!first) throw new Error(`catalogue model ${entry.id} needs at least one sequence`);
    // The gateway sizes its batches and checks `dimensions` from the catalogue, so it must match the weights.
    const { vector } = await first.getEmbeddingFor("dimensions");
    if (vector.length !== entry.embeddings.dimensions) {
      throw new Error(
        `catalogue model ${entry.id} says embeddings.dimensions ${entry.embeddings.dimensions}, ` +
          `but its weights produce vectors of ${vector.length}`,
      );
    }
    return new EmbeddingEngine(entry, vector.length, model, [first, ...others]);
  }

  /** The longest input, in evaluated tokens: llama.cpp refuses one that fills the whole context. */
  get maxInputTokens(): number {
    return this.entry.context_length - 1;
  }

  prepare(inputs: EmbeddingInput[], firstIndex: number, dimensions: number | null): PreparedEmbeddings {
    if (dimensions !== null && dimensions > this.dimensions) {
      throw new PlatformError(
        "invalid_request",
        `The model \`${this.entry.id}\` produces ${this.dimensions} dimensions; ${dimensions} were requested.`,
        "dimensions",
      );
    }
    let promptTokens = 0;
    const tokens = inputs.map((input, position) => {
      const index = firstIndex + position;
      const ids =
        typeof input === "string" ? this.model.tokenize(input, false) : this.checkedTokens(input, index);
      // Counted as the context will evaluate it, with the beginning and end tokens the model's vocabulary adds.
      const length = this.contexts[0].calculateInputLength(ids);
      if (length === 0) {
        throw new PlatformError("invalid_request", `input[${index}] has no tokens to embed.`, "input");
      }
      if (length > this.maxInputTokens) {
        throw new PlatformError(
          "context_length_exceeded",
          `This model's maximum input length is ${this.maxInputTokens} tokens, however input[${index}] has ` +
            `${length} tokens. Please reduce the length of the input.`,
          "input",
        );
      }
      promptTokens += length;
      return ids;
    });
    return { tokens, promptTokens };
  }

  /** Token ids must exist in this model's vocabulary; llama.cpp would abort the process on one that does not. */
  private checkedTokens(tokens: number[], index: number): Token[] {
    const vocabularySize = this.model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? Infinity;
    const bad = tokens.find((token) => token >= vocabularySize);
    if (bad !== undefined) {
      throw new PlatformError(
        "invalid_request",
        `Token id ${bad} of input[${index}] is not in this model's vocabulary.`,
        "input",
      );
    }
    return tokens as Token[];
  }

  /** One unit-length vector per input, in input order, cut to `dimensions` when given. */
  async embed(prepared: PreparedEmbeddings, dimensions: number | null): Promise<Float32Array[]> {
    return Promise.all(
      prepared.tokens.map((tokens) =>
        this.withContext(async (context) => {
          const { vector } = await context.getEmbeddingFor(tokens);
          return unitLength(vector.slice(0, dimensions ?? this.dimensions));
        }),
      ),
    );
  }

  /** Contexts are handed out in arrival order, so concurrent requests share the pool fairly. */
  private async withContext<T>(use: (context: LlamaEmbeddingContext) => Promise<T>): Promise<T> {
    const context =
      this.free.pop() ?? (await new Promise<LlamaEmbeddingContext>((resolve) => this.waiters.push(resolve)));
    try {
      return await use(context);
    } finally {
      const next = this.waiters.shift();
      if (next) next(context);
      else this.free.push(context);
    }
  }

  async dispose(): Promise<void> {
    await Promise.all(this.contexts.map((context) => context.dispose()));
    await this.model.dispose();
  }
}

/**
 * OpenAI's vectors have unit length, so clients compare them with a dot product; a shortened (Matryoshka) vector
 * is renormalised the same way.
 */
function unitLength(vector: readonly number[]): Float32Array {
  const norm = Math.sqrt(vector.reduce((sum, value) => sum + value * value, 0));
  return Float32Array.from(vector, (value) => (norm > 0 ? value / norm : value));
}

export interface EmbeddingWorkerOptions {
  bus: Bus;
  engines: EmbeddingEngine[];
  workerId: string;
  /** The process's one outbox: each request's usage goes there, to be published until acknowledged. */
  usageOutbox: UsageOutbox;
}

export interface EmbeddingWorker {
  /** Stops taking requests and answers those in flight; their usage is then in the outbox. */
  stop(): Promise<void>;
}

/**
 * Answers embedding requests for each loaded embedding model, with the vectors in the reply. Each request's usage
 * is published to JetStream once it has been evaluated, whatever the outcome; a request refused before evaluation
 * (too long, bad token ids) costs nothing.
 */
export async function startEmbeddingWorker(options: EmbeddingWorkerOptions): Promise<EmbeddingWorker> {
  const { bus, engines, workerId, usageOutbox } = options;
  await ensureStream(bus, usageStream);

  const running = new Set<Promise<unknown>>();
  const track = <T>(work: Promise<T>): Promise<T> => {
    running.add(work);
    void work.finally(() => running.delete(work)).catch(() => undefined);
    return work;
  };

  const subscriptions = engines.map((engine) =>
    bus.serve(
      llmEmbed,
      llmEmbed.forModel(engine.entry.id),
      (request, { span }) => track(embed(engine, request, span)),
      { queue: llmEmbed.queueGroup(engine.entry.id) },
    ),
  );

  async function embed(
    engine: EmbeddingEngine,
    request: EmbeddingRequest,
    span: Span,
  ): Promise<EmbeddingResult> {
    const prepared = engine.prepare(request.inputs, request.firstIndex, request.dimensions);
    span.setAttributes({
      "gen_ai.operation.name": "embeddings",
      "gen_ai.request.model": engine.entry.id,
      "gen_ai.response.id": request.requestId,
      "gen_ai.usage.input_tokens": prepared.promptTokens,
    });
    const startedAt = new Date();
    let status: UsageStatus = "failed";
    try {
      const vectors = await engine.embed(prepared, request.dimensions);
      status = "completed";
      return {
        workerId,
        embeddings: vectors.map((vector) => encodeFloat32Base64(vector)),
        promptTokens: prepared.promptTokens,
      };
    } finally {
      usageOutbox.enqueue(
        usageEventOf(request, {
          model: engine.entry.id,
          operation: "embeddings",
          promptTokens: prepared.promptTokens,
          completionTokens: 0,
          status,
          servedBy: workerId,
          startedAt,
        }),
      );
    }
  }

  return {
    async stop() {
      await Promise.all(subscriptions.map((subscription) => subscription.drain()));
      await Promise.allSettled(running);
    },
  };
}
