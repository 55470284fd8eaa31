/**
 * Embedding throughput: the same batch of inputs embedded (A) in this process through the llm-worker's own
 * EmbeddingEngine, and (B) through the official openai client (its default base64 encoding) → gateway → NATS
 * (split into worker requests) → llm-worker process → back. Same model file, same catalogue entry (threads,
 * embedding contexts, context size), same inputs, interleaved A, B, A, B, … so that drift on a shared machine
 * lands on both paths alike. Each batch is timed from the call until every vector is back; embeddings/s is the
 * batch size over that time, the median of a round's batches; every figure of the summary is the median of that
 * figure over the rounds. Every batch is checked to have evaluated the same tokens and returned bit-identical
 * float32 vectors on both paths. Needs Postgres and NATS, as the end-to-end tests do (see bench/README.md).
 *
 *   pnpm exec tsx bench/embeddings.ts [--batches 10] [--rounds 5] [--batch-size 64] [--warmup 3]
 */
import { performance } from "node:perf_hooks";
import { EmbeddingEngine } from "@llmaas/llm-worker/embeddings";
import type { Stack } from "../test/support/stack.js";
import { plainClient } from "../test/support/client.js";
import {
  fixed,
  interleavedRounds,
  interruptible,
  machineInfo,
  median,
  medianOfEach,
  onPlatform,
  parseFlags,
  printJsonSummary,
  progress,
  roundNumbers,
  roundsTable,
  withEngine,
  type BenchRuntime,
  type RoundRow,
} from "./common.js";

const flags = parseFlags(
  { batches: 10, rounds: 5, batchSize: 64, warmup: 3 },
  ({ batches, rounds, batchSize }) =>
    batches < 1 || rounds < 1 || batchSize < 1 || batchSize > 2048
      ? "--batches and --rounds must be at least 1, --batch-size between 1 and 2048"
      : undefined,
);
const MODEL_ID = "tiny-embed";
/** One thread is the llm-worker's default (bench/threads.ts); 4 contexts, the catalogue's default sequences. */
const RUNTIME: BenchRuntime = { threads: 1, sequences: 4, contextLength: 512 };

/** Sentences of a realistic length (about 20 tokens), all different, the same for every batch and both paths. */
const inputs = Array.from(
  { length: flags.batchSize },
  (_, index) =>
    `Sentence ${index}: the lighthouse keeper watched the storm roll over harbour number ${index % 9}.`,
);

interface Sample {
  ms: number;
  promptTokens: number;
  vectors: ArrayLike<number>[];
}

async function runInProcess(engine: EmbeddingEngine): Promise<Sample> {
  const started = performance.now();
  // Prepared per batch, as the worker prepares each request; that cost belongs to both paths.
  const prepared = engine.prepare(inputs, 0, null);
  const vectors = await engine.embed(prepared, null);
  return { ms: performance.now() - started, promptTokens: prepared.promptTokens, vectors };
}

async function runThroughGateway(client: ReturnType<typeof plainClient>): Promise<Sample> {
  const started = performance.now();
  const result = await client.embeddings.create({ model: MODEL_ID, input: inputs });
  return {
    ms: performance.now() - started,
    promptTokens: result.usage.prompt_tokens,
    vectors: result.data.map((item) => item.embedding),
  };
}

/** Both paths must have done the same work: the same tokens, and bit-identical float32 vectors. */
class WorkCheck {
  mismatches = 0;
  private reference: Sample | undefined;

  check(label: string, sample: Sample): void {
    this.reference ??= sample;
    const same =
      sample.promptTokens === this.reference.promptTokens &&
      sample.vectors.length === flags.batchSize &&
      sample.vectors.every((vector, index) => {
        const expected = this.reference?.vectors[index];
        return (
          expected !== undefined &&
          vector.length === expected.length &&
          Array.from(vector).every((value, i) => Math.fround(value) === Math.fround(expected[i] ?? NaN))
        );
      });
    if (!same) {
      this.mismatches++;
      progress(`WARNING ${label}: tokens or vectors differ from the first run's`);
    }
  }
}

interface PathFigures {
  batchMsP50: number;
  embeddingsPerSecond: number;
}

interface RoundFigures {
  a: PathFigures;
  b: PathFigures;
  ratio: number;
}

function pathFigures(samples: Sample[]): PathFigures {
  const batchMsP50 = median(samples.map((sample) => sample.ms));
  return {
    batchMsP50,
    embeddingsPerSecond: median(samples.map((sample) => flags.batchSize / (sample.ms / 1000))),
  };
}

const run = interruptible("the current batch");

async function measure(engine: EmbeddingEngine, stack: Stack): Promise<void> {
  const client = plainClient(stack);
  const machineBefore = machineInfo();
  const work = new WorkCheck();
  const rounds = await interleavedRounds(
    run,
    { warmup: flags.warmup, rounds: flags.rounds, runs: flags.batches, unit: "batch" },
    {
      a: () => runInProcess(engine),
      b: () => runThroughGateway(client),
      check: (label, sample) => work.check(label, sample),
    },
    (a, b): RoundFigures => {
      const fa = pathFigures(a);
      const fb = pathFigures(b);
      return { a: fa, b: fb, ratio: fb.embeddingsPerSecond / fa.embeddingsPerSecond };
    },
    (figures) =>
      `A ${fixed(figures.a.embeddingsPerSecond, 0)}/s, B ${fixed(figures.b.embeddingsPerSecond, 0)}/s`,
  );

  const overall = medianOfEach(rounds);
  console.log(
    `\nModel ${MODEL_ID} (tiny random weights, ${engine.dimensions} dimensions), threads ${RUNTIME.threads}, ` +
      `${RUNTIME.sequences} embedding contexts, context ${RUNTIME.contextLength}; batches of ${flags.batchSize} ` +
      `inputs; ${flags.warmup} warm-up + ${flags.rounds} rounds x ${flags.batches} batches of each path, ` +
      `interleaved A,B`,
  );
  console.log(
    `Same work on both paths (tokens and float32 vectors): ` +
      `${work.mismatches === 0 ? "yes" : `NO (${work.mismatches} batches differ)`}`,
  );
  const rows: RoundRow<RoundFigures>[] = [
    ["embeddings/s (median), A in-process", (r) => r.a.embeddingsPerSecond, 0],
    ["embeddings/s (median), B gateway", (r) => r.b.embeddingsPerSecond, 0],
    ["ratio B/A", (r) => r.ratio, 3],
    ["ms per batch p50, A in-process", (r) => r.a.batchMsP50, 2],
    ["ms per batch p50, B gateway", (r) => r.b.batchMsP50, 2],
  ];
  console.log(`\nPer round (${flags.batches} batches of each path per round)`);
  console.log(roundsTable(rows, rounds, overall));
  printJsonSummary({ bench: "embeddings", model: MODEL_ID, runtime: RUNTIME, flags }, machineBefore, {
    sameWork: { mismatches: work.mismatches },
    median: roundNumbers(overall),
    rounds: rounds.map((round) => roundNumbers(round)),
  });
}

await onPlatform(run, MODEL_ID, RUNTIME, (platform) =>
  withEngine(platform, EmbeddingEngine, (engine) => measure(engine, platform.stack)),
);
