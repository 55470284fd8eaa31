/**
 * Throughput of many requests at once: the same N streams (default 16) generated (A) in this process as N
 * concurrent generations on one llm-worker ModelEngine, i.e. one llama.cpp context with N sequences that decode in
 * the same batches, and (B) as N concurrent streams of the official openai client → gateway (HTTP, SSE) → NATS →
 * the llm-worker process, which loads the very same catalogue text (so its context has the same N sequences).
 * Aggregate tokens/s = all completion tokens / wall time from the first request sent to the last stream finished.
 * The same with one stream, interleaved with the rest, shows what batching gains. See bench/README.md.
 *
 *   pnpm exec tsx bench/concurrency.ts [--streams 16] [--max-tokens 64] [--batches 5] [--rounds 3] [--warmup 2]
 */
import { performance } from "node:perf_hooks";
import { ModelEngine } from "@llmaas/llm-worker/engine";
import type { Stack } from "../test/support/stack.js";
import { plainClient } from "../test/support/client.js";
import {
  fixed,
  formatTable,
  generateInProcess,
  interruptible,
  machineInfo,
  median,
  medianOfEach,
  MODEL_ID,
  onPlatform,
  parseFlags,
  percentile,
  printJsonSummary,
  progress,
  roundNumbers,
  roundsTable,
  SameWork,
  SEED,
  streamThroughGateway,
  withEngine,
  type BenchRuntime,
  type Generation,
  type RoundRow,
} from "./common.js";

const flags = parseFlags(
  { streams: 16, maxTokens: 64, batches: 5, rounds: 3, warmup: 2 },
  ({ streams, maxTokens, batches, rounds }) =>
    streams < 2 || maxTokens < 1 || batches < 1 || rounds < 1
      ? "--streams must be at least 2; --max-tokens, --batches and --rounds at least 1"
      : undefined,
);
/** One thread (the worker's default); as many sequences as streams, so that none of them waits for a sequence. */
const RUNTIME: BenchRuntime = { threads: 1, sequences: flags.streams, contextLength: 2048 };

/** B's streams also carry the gateway's request id, which keys the worker's usage record. */
type StreamSample = Generation & { requestId?: string };

interface BatchSample {
  /** When the batch was sent (its first request); a stream's first token is timed from here. */
  started: number;
  /** First request sent to last stream finished. */
  wallMs: number;
  streams: StreamSample[];
}

/** All streams of a batch are started in the same tick, and the batch ends when the last one has. */
async function runBatch(size: number, stream: () => Promise<StreamSample>): Promise<BatchSample> {
  const started = performance.now();
  const streams = await Promise.all(Array.from({ length: size }, stream));
  return { started, wallMs: performance.now() - started, streams };
}

const totalTokens = (batch: BatchSample): number =>
  batch.streams.reduce((sum, stream) => sum + stream.completionTokens, 0);
const aggregateTokensPerSecond = (batch: BatchSample): number => totalTokens(batch) / (batch.wallMs / 1000);

/**
 * How long the worker held a B batch, from its first acceptance to its last `done`, read from the usage records it
 * published (millisecond resolution). Waiting for them, untimed, after each B batch also lets metering finish its
 * writes before the next measurement starts.
 */
async function workerWallMs(stack: Stack, batch: BatchSample): Promise<number> {
  const rows = [];
  for (const { requestId } of batch.streams) if (requestId) rows.push(await stack.waitForUsage(requestId));
  if (rows.length === 0) return Number.NaN;
  const started = Math.min(...rows.map((row) => new Date(row.started_at).getTime()));
  const finished = Math.max(...rows.map((row) => new Date(row.finished_at).getTime()));
  return finished - started;
}

interface PathFigures {
  /** Median over the round's batches. */
  tokensPerSecond: number;
  /** Over every stream of the round's batches. */
  firstTokenP50: number;
  firstTokenP99: number;
  /** Median over the round's batches. */
  wallP50: number;
}

interface SizeFigures {
  a: PathFigures;
  b: PathFigures;
  tokensPerSecondRatio: number;
  /** B's tokens over the worker's own first-accepted-to-last-done time, median over the round's batches. */
  bWorkerTokensPerSecond: number;
}

interface RoundFigures {
  many: SizeFigures;
  one: SizeFigures;
  /** Aggregate tokens/s with N streams over that with one stream, per path. */
  batchingGainA: number;
  batchingGainB: number;
}

function pathFigures(batches: BatchSample[]): PathFigures {
  const firstTokens = batches.flatMap((batch) =>
    batch.streams.map((stream) => stream.firstTokenAt - batch.started),
  );
  return {
    tokensPerSecond: median(batches.map(aggregateTokensPerSecond)),
    firstTokenP50: percentile(firstTokens, 50),
    firstTokenP99: percentile(firstTokens, 99),
    wallP50: median(batches.map((batch) => batch.wallMs)),
  };
}

interface SizeSamples {
  a: BatchSample[];
  b: BatchSample[];
  bWorkerMs: number[];
}

function sizeFigures(samples: SizeSamples): SizeFigures {
  const a = pathFigures(samples.a);
  const b = pathFigures(samples.b);
  return {
    a,
    b,
    tokensPerSecondRatio: b.tokensPerSecond / a.tokensPerSecond,
    bWorkerTokensPerSecond: median(
      samples.b.map((batch, index) => totalTokens(batch) / ((samples.bWorkerMs[index] ?? Number.NaN) / 1000)),
    ),
  };
}

function printRounds(rounds: RoundFigures[], overall: RoundFigures): void {
  const n = flags.streams;
  const rows: RoundRow<RoundFigures>[] = [
    [`aggregate tokens/s, ${n} streams, A in-process`, (r) => r.many.a.tokensPerSecond, 1],
    [`aggregate tokens/s, ${n} streams, B gateway`, (r) => r.many.b.tokensPerSecond, 1],
    [`aggregate tokens/s, ${n} streams, ratio B/A`, (r) => r.many.tokensPerSecondRatio, 3],
    [`B in the worker, ${n} streams (usage records)`, (r) => r.many.bWorkerTokensPerSecond, 1],
    [`first token p50 ms, ${n} streams, A`, (r) => r.many.a.firstTokenP50, 2],
    [`first token p50 ms, ${n} streams, B`, (r) => r.many.b.firstTokenP50, 2],
    [`first token p99 ms, ${n} streams, A`, (r) => r.many.a.firstTokenP99, 2],
    [`first token p99 ms, ${n} streams, B`, (r) => r.many.b.firstTokenP99, 2],
    [`batch wall p50 ms, ${n} streams, A`, (r) => r.many.a.wallP50, 2],
    [`batch wall p50 ms, ${n} streams, B`, (r) => r.many.b.wallP50, 2],
    ["tokens/s, 1 stream, A in-process", (r) => r.one.a.tokensPerSecond, 1],
    ["tokens/s, 1 stream, B gateway", (r) => r.one.b.tokensPerSecond, 1],
    ["tokens/s, 1 stream, ratio B/A", (r) => r.one.tokensPerSecondRatio, 3],
    ["B in the worker, 1 stream (usage records)", (r) => r.one.bWorkerTokensPerSecond, 1],
    ["first token p50 ms, 1 stream, A", (r) => r.one.a.firstTokenP50, 2],
    ["first token p50 ms, 1 stream, B", (r) => r.one.b.firstTokenP50, 2],
    [`batching gain A (${n} vs 1 stream)`, (r) => r.batchingGainA, 3],
    [`batching gain B (${n} vs 1 stream)`, (r) => r.batchingGainB, 3],
  ];
  console.log(
    `\nPer round (${flags.batches} batches of each kind per round; tokens/s and batch wall: median of the ` +
      `batches; first token: percentile of all the round's streams)`,
  );
  console.log(roundsTable(rows, rounds, overall));
}

function printSummary(overall: RoundFigures): void {
  const n = flags.streams;
  console.log(`\nSummary (median of ${flags.rounds} rounds)`);
  const row = (label: string, size: SizeFigures, pick: (path: PathFigures) => number, digits: number) => [
    label,
    fixed(pick(size.a), digits),
    fixed(pick(size.b), digits),
    fixed(pick(size.b) / pick(size.a), 3),
  ];
  console.log(
    formatTable(
      ["", "A in-process", "B gateway", "B/A"],
      [
        [
          `aggregate tokens/s, ${n} streams`,
          fixed(overall.many.a.tokensPerSecond, 1),
          fixed(overall.many.b.tokensPerSecond, 1),
          fixed(overall.many.tokensPerSecondRatio, 3),
        ],
        row(`first token p50 ms, ${n} streams`, overall.many, (path) => path.firstTokenP50, 2),
        row(`first token p99 ms, ${n} streams`, overall.many, (path) => path.firstTokenP99, 2),
        row(`batch wall p50 ms, ${n} streams`, overall.many, (path) => path.wallP50, 2),
        [
          "tokens/s, 1 stream",
          fixed(overall.one.a.tokensPerSecond, 1),
          fixed(overall.one.b.tokensPerSecond, 1),
          fixed(overall.one.tokensPerSecondRatio, 3),
        ],
        row("first token p50 ms, 1 stream", overall.one, (path) => path.firstTokenP50, 2),
        [
          `batching gain (${n} vs 1 stream)`,
          `${fixed(overall.batchingGainA, 3)}x`,
          `${fixed(overall.batchingGainB, 3)}x`,
          "",
        ],
      ],
    ),
  );
  console.log(
    `In the worker (its usage records, ms resolution) B's ${n} streams ran at ` +
      `${fixed(overall.many.bWorkerTokensPerSecond, 1)} tokens/s from the first acceptance to the last done, ` +
      `against ${fixed(overall.many.a.tokensPerSecond, 1)} tokens/s for the same work in this process (A) and ` +
      `${fixed(overall.many.b.tokensPerSecond, 1)} tokens/s seen by the client (B).`,
  );
  console.log(
    "B/A of a first-token or wall row is the ratio of the two medians; the tokens/s ratios are medians of the " +
      "rounds' ratios.",
  );
}

const run = interruptible("the current batch");

async function measure(engine: ModelEngine, stack: Stack): Promise<void> {
  const client = plainClient(stack);
  const machineBefore = machineInfo();
  const work = new SameWork(flags.maxTokens, "stream");
  const check = (label: string, batch: BatchSample): void =>
    batch.streams.forEach((stream, index) => work.check(`${label} stream ${index + 1}`, stream));
  const a = (size: number) => runBatch(size, () => generateInProcess(engine, flags.maxTokens));
  const b = (size: number) => runBatch(size, () => streamThroughGateway(client, flags.maxTokens));

  // JIT, the gateway's first key lookups, every sequence's first prompt: none of it is what is being compared.
  for (let index = 0; index < flags.warmup; index++) {
    run.stopIfInterrupted();
    check("warm-up A", await a(flags.streams));
    const warm = await b(flags.streams);
    check("warm-up B", warm);
    await workerWallMs(stack, warm);
    check("warm-up A 1 stream", await a(1));
    const warmOne = await b(1);
    check("warm-up B 1 stream", warmOne);
    await workerWallMs(stack, warmOne);
  }
  progress(`warmed up with ${flags.warmup} batches of each kind`);

  const rounds: RoundFigures[] = [];
  for (let round = 1; round <= flags.rounds; round++) {
    const many: SizeSamples = { a: [], b: [], bWorkerMs: [] };
    const one: SizeSamples = { a: [], b: [], bWorkerMs: [] };
    // Interleaved, so that whatever else the shared machine does falls on both paths and both sizes alike.
    for (let batch = 1; batch <= flags.batches; batch++) {
      const label = `round ${round} batch ${batch}`;
      for (const [size, samples] of [
        [flags.streams, many],
        [1, one],
      ] as const) {
        run.stopIfInterrupted();
        const sampleA = await a(size);
        check(`${label} A ${size}`, sampleA);
        samples.a.push(sampleA);
        run.stopIfInterrupted();
        const sampleB = await b(size);
        check(`${label} B ${size}`, sampleB);
        samples.b.push(sampleB);
        samples.bWorkerMs.push(await workerWallMs(stack, sampleB));
      }
    }
    const figuresMany = sizeFigures(many);
    const figuresOne = sizeFigures(one);
    rounds.push({
      many: figuresMany,
      one: figuresOne,
      batchingGainA: figuresMany.a.tokensPerSecond / figuresOne.a.tokensPerSecond,
      batchingGainB: figuresMany.b.tokensPerSecond / figuresOne.b.tokensPerSecond,
    });
    progress(
      `round ${round}/${flags.rounds}: ${flags.streams} streams, aggregate tokens/s ` +
        `A ${fixed(figuresMany.a.tokensPerSecond, 1)}, B ${fixed(figuresMany.b.tokensPerSecond, 1)}`,
    );
  }

  const overall = medianOfEach(rounds);
  console.log(
    `\nModel ${MODEL_ID} (tiny random weights), threads ${RUNTIME.threads}, ${RUNTIME.sequences} sequences in one ` +
      `context, context ${RUNTIME.contextLength} per sequence; ${flags.streams} concurrent streams, ` +
      `max_tokens ${flags.maxTokens}, temperature 0, seed ${SEED}; ${flags.warmup} warm-up + ${flags.rounds} ` +
      `rounds x ${flags.batches} batches of each kind, interleaved A ${flags.streams}, B ${flags.streams}, A 1, B 1`,
  );
  const verdict = (mismatches: number): string =>
    mismatches === 0 ? "yes" : `NO (${mismatches} of ${work.checked} streams differ)`;
  console.log(
    `Same work on both paths: completion tokens always ${flags.maxTokens} per stream ` +
      `(${flags.streams * flags.maxTokens} per batch of ${flags.streams}): ${verdict(work.mismatchedTokens)}; ` +
      `identical text in every stream: ${verdict(work.mismatchedText)}`,
  );
  printRounds(rounds, overall);
  printSummary(overall);
  printJsonSummary({ bench: "concurrency", model: MODEL_ID, runtime: RUNTIME, flags }, machineBefore, {
    sameWork: {
      streams: work.checked,
      mismatchedTokens: work.mismatchedTokens,
      mismatchedText: work.mismatchedText,
    },
    unit: { tokensPerSecond: "completion tokens / s", firstToken: "ms", wall: "ms" },
    median: roundNumbers(overall),
    rounds: rounds.map((round) => roundNumbers(round)),
  });
}

await onPlatform(run, MODEL_ID, RUNTIME, (platform) =>
  withEngine(platform, ModelEngine, (engine) => measure(engine, platform.stack)),
);
