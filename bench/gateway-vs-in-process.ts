/**
 * What the platform adds on top of the model: the same chat request generated (A) in this process through the
 * llm-worker's own ModelEngine, and (B) through the official openai client → gateway (HTTP, SSE) → NATS →
 * llm-worker process → back. Same model file, same catalogue entry (threads, sequences, context), same prompt,
 * greedy decoding with a fixed seed. See bench/README.md for how to read the output.
 *
 *   pnpm bench [--runs 30] [--rounds 3] [--max-tokens 64] [--warmup 5]
 */
import { performance } from "node:perf_hooks";
import { ModelEngine } from "@llmaas/llm-worker/engine";
import type { Stack } from "../test/support/stack.js";
import { plainClient } from "../test/support/client.js";
import {
  fixed,
  formatTable,
  generateInProcess,
  interleavedRounds,
  interruptible,
  machineInfo,
  median,
  medianOfEach,
  MODEL_ID,
  onPlatform,
  parseFlags,
  percentile,
  printJsonSummary,
  roundNumbers,
  roundsTable,
  SameWork,
  SEED,
  streamThroughGateway,
  withEngine,
  type BenchRuntime,
  type GatewayGeneration,
  type Generation,
  type RoundRow,
} from "./common.js";

const flags = parseFlags({ runs: 30, rounds: 3, maxTokens: 64, warmup: 5 }, ({ runs, rounds, maxTokens }) =>
  runs < 1 || rounds < 1 || maxTokens < 1
    ? "--runs, --rounds and --max-tokens must be at least 1"
    : undefined,
);
/** One thread is the llm-worker's default (bench/threads.ts); the context leaves room for a larger --max-tokens. */
const RUNTIME: BenchRuntime = { threads: 1, sequences: 4, contextLength: 2048 };

type Timed<G extends Generation> = G & { firstTokenMs: number; completionMs: number };
type Sample = Timed<Generation>;

/** Completion is when the call returns: `generate` resolved (A), or the SSE stream ended with [DONE] (B). */
async function timed<G extends Generation>(generate: () => Promise<G>): Promise<Timed<G>> {
  const started = performance.now();
  const result = await generate();
  const finished = performance.now();
  return { ...result, firstTokenMs: result.firstTokenAt - started, completionMs: finished - started };
}

const runInProcess = (engine: ModelEngine) => timed(() => generateInProcess(engine, flags.maxTokens));
const runThroughGateway = (client: ReturnType<typeof plainClient>) =>
  timed(() => streamThroughGateway(client, flags.maxTokens));
type GatewaySample = Timed<GatewayGeneration>;

const tokensPerSecond = (sample: Sample): number => sample.completionTokens / (sample.completionMs / 1000);

interface PathFigures {
  firstTokenP50: number;
  firstTokenP99: number;
  completionP50: number;
  completionP99: number;
  tokensPerSecond: number;
}

interface RoundFigures {
  a: PathFigures;
  b: PathFigures;
  added: { firstTokenP50: number; firstTokenP99: number; completionP50: number; completionP99: number };
  tokensPerSecondRatio: number;
  /** B's p50 of the worker's own start-to-finish time, to tell the pipe's cost from a slower generation. */
  bWorkerP50: number;
}

function pathFigures(samples: Sample[]): PathFigures {
  const firstTokens = samples.map((sample) => sample.firstTokenMs);
  const completions = samples.map((sample) => sample.completionMs);
  return {
    firstTokenP50: percentile(firstTokens, 50),
    firstTokenP99: percentile(firstTokens, 99),
    completionP50: percentile(completions, 50),
    completionP99: percentile(completions, 99),
    tokensPerSecond: median(samples.map(tokensPerSecond)),
  };
}

/** Added latency is the difference of the two distributions' percentiles, not a percentile of paired differences. */
function roundFigures(a: Sample[], b: Sample[], bWorkerMs: number[]): RoundFigures {
  const fa = pathFigures(a);
  const fb = pathFigures(b);
  return {
    a: fa,
    b: fb,
    added: {
      firstTokenP50: fb.firstTokenP50 - fa.firstTokenP50,
      firstTokenP99: fb.firstTokenP99 - fa.firstTokenP99,
      completionP50: fb.completionP50 - fa.completionP50,
      completionP99: fb.completionP99 - fa.completionP99,
    },
    tokensPerSecondRatio: fb.tokensPerSecond / fa.tokensPerSecond,
    bWorkerP50: percentile(bWorkerMs, 50),
  };
}

/**
 * How long each B request spent in the worker, accepted to done, from the usage record it published (millisecond
 * resolution). Read after the round, so the reads cost the measured runs nothing.
 */
async function workerMs(stack: Stack, samples: GatewaySample[]): Promise<number[]> {
  const ids = samples.map((sample) => sample.requestId).filter(Boolean);
  const last = ids.at(-1);
  if (last === undefined) return [];
  // Metering batches its writes; once the last request is recorded the earlier ones normally are too.
  await stack.waitForUsage(last);
  const rows = await stack.db
    .selectFrom("usage_events")
    .select(["started_at", "finished_at"])
    .where("request_id", "in", ids)
    .execute();
  return rows.map((row) => new Date(row.finished_at).getTime() - new Date(row.started_at).getTime());
}

function printRounds(rounds: RoundFigures[], overall: RoundFigures): void {
  const rows: RoundRow<RoundFigures>[] = [
    ["first token p50, A in-process", (r) => r.a.firstTokenP50, 2],
    ["first token p50, B gateway", (r) => r.b.firstTokenP50, 2],
    ["first token p50, added B-A", (r) => r.added.firstTokenP50, 2],
    ["first token p99, A in-process", (r) => r.a.firstTokenP99, 2],
    ["first token p99, B gateway", (r) => r.b.firstTokenP99, 2],
    ["first token p99, added B-A", (r) => r.added.firstTokenP99, 2],
    ["completion p50, A in-process", (r) => r.a.completionP50, 2],
    ["completion p50, B gateway", (r) => r.b.completionP50, 2],
    ["completion p50, added B-A", (r) => r.added.completionP50, 2],
    ["completion p99, A in-process", (r) => r.a.completionP99, 2],
    ["completion p99, B gateway", (r) => r.b.completionP99, 2],
    ["completion p99, added B-A", (r) => r.added.completionP99, 2],
    ["tokens/s (median), A in-process", (r) => r.a.tokensPerSecond, 1],
    ["tokens/s (median), B gateway", (r) => r.b.tokensPerSecond, 1],
    ["tokens/s ratio B/A", (r) => r.tokensPerSecondRatio, 3],
    ["B in the worker p50 (usage record)", (r) => r.bWorkerP50, 0],
  ];
  console.log(`\nPer round (ms unless stated; ${flags.runs} runs of each path per round)`);
  console.log(roundsTable(rows, rounds, overall));
}

function printSummary(overall: RoundFigures): void {
  console.log(`\nSummary (median of ${flags.rounds} rounds; ms unless stated)`);
  const row = (label: string, a: number, b: number, added: number): string[] => [
    label,
    fixed(a),
    fixed(b),
    fixed(added),
  ];
  console.log(
    formatTable(
      ["", "A in-process", "B gateway", "added B-A"],
      [
        row(
          "time to first token p50",
          overall.a.firstTokenP50,
          overall.b.firstTokenP50,
          overall.added.firstTokenP50,
        ),
        row(
          "time to first token p99",
          overall.a.firstTokenP99,
          overall.b.firstTokenP99,
          overall.added.firstTokenP99,
        ),
        row(
          "time to completion p50",
          overall.a.completionP50,
          overall.b.completionP50,
          overall.added.completionP50,
        ),
        row(
          "time to completion p99",
          overall.a.completionP99,
          overall.b.completionP99,
          overall.added.completionP99,
        ),
        [
          "tokens/s (median)",
          fixed(overall.a.tokensPerSecond, 1),
          fixed(overall.b.tokensPerSecond, 1),
          `B/A ${fixed(overall.tokensPerSecondRatio, 3)}`,
        ],
      ],
    ),
  );
  console.log(
    `Of B's ${fixed(overall.b.completionP50)} ms (p50), the worker held the request for ` +
      `${fixed(overall.bWorkerP50, 0)} ms (its usage record, ms resolution); A's engine took ` +
      `${fixed(overall.a.completionP50)} ms for the same work.`,
  );
}

const run = interruptible("the current request");

async function measure(engine: ModelEngine, stack: Stack): Promise<void> {
  const client = plainClient(stack);
  const machineBefore = machineInfo();
  const work = new SameWork(flags.maxTokens, "run");
  const rounds = await interleavedRounds(
    run,
    { ...flags, unit: "run" },
    {
      a: () => runInProcess(engine),
      b: () => runThroughGateway(client),
      check: (label, sample) => work.check(label, sample),
    },
    async (a, b) => roundFigures(a, b, await workerMs(stack, b)),
    (figures) =>
      `completion p50 A ${fixed(figures.a.completionP50)} ms, B ${fixed(figures.b.completionP50)} ms`,
  );

  const overall = medianOfEach(rounds);
  console.log(
    `\nModel ${MODEL_ID} (tiny random weights), threads ${RUNTIME.threads}, ${RUNTIME.sequences} sequences, ` +
      `context ${RUNTIME.contextLength}; max_tokens ${flags.maxTokens}, temperature 0, seed ${SEED}; ` +
      `${flags.warmup} warm-up + ${flags.rounds} rounds x ${flags.runs} runs of each path, interleaved A,B`,
  );
  const verdict = (mismatches: number): string =>
    mismatches === 0 ? "yes" : `NO (${mismatches} runs differ)`;
  console.log(
    `Same work on both paths: completion tokens always ${flags.maxTokens}: ${verdict(work.mismatchedTokens)}; ` +
      `identical text: ${verdict(work.mismatchedText)}`,
  );
  printRounds(rounds, overall);
  printSummary(overall);
  printJsonSummary(
    { bench: "gateway-vs-in-process", model: MODEL_ID, runtime: RUNTIME, flags },
    machineBefore,
    {
      sameWork: { mismatchedTokens: work.mismatchedTokens, mismatchedText: work.mismatchedText },
      unit: "ms",
      median: roundNumbers(overall),
      rounds: rounds.map((round) => roundNumbers(round)),
    },
  );
}

await onPlatform(run, MODEL_ID, RUNTIME, (platform) =>
  withEngine(platform, ModelEngine, (engine) => measure(engine, platform.stack)),
);
