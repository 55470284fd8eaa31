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
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseCatalogue } from "@llmaas/catalogue";
import { createLlama } from "@llmaas/llm-worker/engine";
import { EmbeddingEngine } from "@llmaas/llm-worker/embeddings";
import { writeTinyModel, tinyModelPresets } from "@llmaas/tiny-models";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { DEFAULT_CATALOGUE, startStack, type Stack } from "../test/support/stack.js";
import { openaiClient } from "../test/support/client.js";
import { fixed, formatTable, machineInfo, median, parseFlags, progress, stderrLogger } from "./common.js";

const flags = parseFlags({ batches: 10, rounds: 5, batchSize: 64, warmup: 3 });
if (flags.batches < 1 || flags.rounds < 1 || flags.batchSize < 1 || flags.batchSize > 2048) {
  console.error("--batches and --rounds must be at least 1, --batch-size between 1 and 2048");
  process.exit(2);
}
const MODEL_ID = "tiny-embed";
/** One thread is the llm-worker's default (bench/threads.ts); 4 contexts, the catalogue's default sequences. */
const RUNTIME = { threads: 1, sequences: 4, contextLength: 512 };
const DIMENSIONS = 64;

/**
 * The tests' catalogue, so that the entry stays valid as the catalogue schema grows, plus an embedding model made
 * from its chat entry; the worker and the in-process engine load this very text.
 */
function benchCatalogue(chatPath: string, embedPath: string): string {
  const document = parseYaml(DEFAULT_CATALOGUE) as { models?: Array<Record<string, unknown>> };
  const chat = document.models?.find((candidate) => candidate.id === "tiny-chat");
  if (!chat || !document.models) throw new Error("the tests' catalogue has no tiny-chat");
  chat.source = chatPath;
  document.models.push({
    ...chat,
    id: MODEL_ID,
    source: embedPath,
    capabilities: ["embeddings"],
    context_length: RUNTIME.contextLength,
    embeddings: { dimensions: DIMENSIONS },
    runtime: { threads: RUNTIME.threads, sequences: RUNTIME.sequences },
  });
  return stringifyYaml(document);
}

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

async function runThroughGateway(client: ReturnType<typeof openaiClient>): Promise<Sample> {
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

function medianOfRounds(rounds: RoundFigures[]): RoundFigures {
  const of = (pick: (round: RoundFigures) => number): number => median(rounds.map(pick));
  const path = (pick: (round: RoundFigures) => PathFigures): PathFigures => ({
    batchMsP50: of((round) => pick(round).batchMsP50),
    embeddingsPerSecond: of((round) => pick(round).embeddingsPerSecond),
  });
  return { a: path((round) => round.a), b: path((round) => round.b), ratio: of((round) => round.ratio) };
}

const rounded = (figures: RoundFigures): RoundFigures =>
  JSON.parse(
    JSON.stringify(figures, (_, value: unknown) =>
      typeof value === "number" ? Number(value.toFixed(3)) : value,
    ),
  ) as RoundFigures;

const dir = await mkdtemp(join(tmpdir(), "llmaas-bench-"));
let stack: Stack | undefined;
let engine: EmbeddingEngine | undefined;
let cleaning: Promise<void> | undefined;
// The stack is a database and four processes: they must go even when the run is interrupted.
const cleanup = (): Promise<void> =>
  (cleaning ??= (async () => {
    await engine?.dispose();
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  })());
process.once("SIGINT", () => {
  progress("interrupted; stopping the platform");
  void cleanup().finally(() => process.exit(130));
});

const llama = await createLlama({ gpu: false, logger: stderrLogger });
try {
  const chatModel = await writeTinyModel(join(dir, "tiny-chat.gguf"), tinyModelPresets["tiny-chat"]);
  const embedModel = await writeTinyModel(join(dir, "tiny-embed.gguf"), tinyModelPresets["tiny-embed"]);
  const yaml = benchCatalogue(chatModel.path, embedModel.path);
  const entry = parseCatalogue(yaml, dir).find(MODEL_ID);
  if (!entry) throw new Error(`${MODEL_ID} is missing from the bench catalogue`);

  progress("starting the platform (Postgres database, NATS namespace, auth, metering, llm-worker, gateway)");
  stack = await startStack({ catalogue: yaml });
  engine = await EmbeddingEngine.load(llama, entry, { threads: RUNTIME.threads, modelsDir: dir });
  const client = openaiClient(stack);
  const machineBefore = machineInfo();
  const work = new WorkCheck();

  for (let index = 0; index < flags.warmup; index++) {
    work.check("warm-up A", await runInProcess(engine));
    work.check("warm-up B", await runThroughGateway(client));
  }
  progress(`warmed up with ${flags.warmup} batches of each path`);

  const rounds: RoundFigures[] = [];
  for (let round = 1; round <= flags.rounds; round++) {
    const a: Sample[] = [];
    const b: Sample[] = [];
    // Interleaved, so that whatever else the shared machine does falls on both paths alike.
    for (let batch = 1; batch <= flags.batches; batch++) {
      const sampleA = await runInProcess(engine);
      const sampleB = await runThroughGateway(client);
      work.check(`round ${round} batch ${batch} A`, sampleA);
      work.check(`round ${round} batch ${batch} B`, sampleB);
      a.push(sampleA);
      b.push(sampleB);
    }
    const fa = pathFigures(a);
    const fb = pathFigures(b);
    rounds.push({ a: fa, b: fb, ratio: fb.embeddingsPerSecond / fa.embeddingsPerSecond });
    progress(
      `round ${round}/${flags.rounds}: A ${fixed(fa.embeddingsPerSecond, 0)}/s, ` +
        `B ${fixed(fb.embeddingsPerSecond, 0)}/s`,
    );
  }

  const overall = medianOfRounds(rounds);
  console.log(
    `\nModel ${MODEL_ID} (tiny random weights, ${DIMENSIONS} dimensions), threads ${RUNTIME.threads}, ` +
      `${RUNTIME.sequences} embedding contexts, context ${RUNTIME.contextLength}; batches of ${flags.batchSize} ` +
      `inputs; ${flags.warmup} warm-up + ${flags.rounds} rounds x ${flags.batches} batches of each path, ` +
      `interleaved A,B`,
  );
  console.log(
    `Same work on both paths (tokens and float32 vectors): ` +
      `${work.mismatches === 0 ? "yes" : `NO (${work.mismatches} batches differ)`}`,
  );
  const rows: Array<[string, (round: RoundFigures) => number, number]> = [
    ["embeddings/s (median), A in-process", (r) => r.a.embeddingsPerSecond, 0],
    ["embeddings/s (median), B gateway", (r) => r.b.embeddingsPerSecond, 0],
    ["ratio B/A", (r) => r.ratio, 3],
    ["ms per batch p50, A in-process", (r) => r.a.batchMsP50, 2],
    ["ms per batch p50, B gateway", (r) => r.b.batchMsP50, 2],
  ];
  console.log(`\nPer round (${flags.batches} batches of each path per round)`);
  console.log(
    formatTable(
      ["figure", ...rounds.map((_, index) => `round ${index + 1}`), "median of rounds"],
      rows.map(([label, pick, digits]) => [
        label,
        ...rounds.map((round) => fixed(pick(round), digits)),
        fixed(pick(overall), digits),
      ]),
    ),
  );
  console.log(
    JSON.stringify({
      bench: "embeddings",
      model: MODEL_ID,
      runtime: RUNTIME,
      flags,
      machine: { ...machineBefore, loadavgAfter: machineInfo().loadavg },
      sameWork: { mismatches: work.mismatches },
      median: rounded(overall),
      rounds: rounds.map(rounded),
    }),
  );
} finally {
  await cleanup();
  await llama.dispose();
}
