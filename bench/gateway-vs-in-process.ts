/**
 * What the platform adds on top of the model: the same chat request generated (A) in this process through the
 * llm-worker's own ModelEngine, and (B) through the official openai client → gateway (HTTP, SSE) → NATS →
 * llm-worker process → back. Same model file, same catalogue entry (threads, sequences, context), same prompt,
 * greedy decoding with a fixed seed. See bench/README.md for how to read the output.
 *
 *   pnpm bench [--runs 30] [--rounds 3] [--max-tokens 64] [--warmup 5]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseCatalogue } from "@llmaas/catalogue";
import type { ChatInput } from "@llmaas/contracts";
import { createLlama, ModelEngine } from "@llmaas/llm-worker/engine";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { DEFAULT_CATALOGUE, startStack, type Stack } from "../test/support/stack.js";
import { openaiClient } from "../test/support/client.js";
import {
  fixed,
  formatTable,
  greedySampling,
  machineInfo,
  median,
  MODEL_ID,
  parseFlags,
  percentile,
  progress,
  PROMPT,
  SEED,
  stderrLogger,
  writeBenchModel,
} from "./common.js";

const flags = parseFlags({ runs: 30, rounds: 3, maxTokens: 64, warmup: 5 });
if (flags.runs < 1 || flags.rounds < 1 || flags.maxTokens < 1) {
  console.error("--runs, --rounds and --max-tokens must be at least 1");
  process.exit(2);
}
/** One thread is the llm-worker's default (bench/threads.ts); the context leaves room for a larger --max-tokens. */
const RUNTIME = { threads: 1, sequences: 4, contextLength: 2048 };

/**
 * The tests' catalogue, so that the entry stays valid as the catalogue schema grows, with the model file and the
 * runtime pinned: the worker and the in-process engine load this very text.
 */
function benchCatalogue(modelPath: string): string {
  const document = parseYaml(DEFAULT_CATALOGUE) as { models?: Array<Record<string, unknown>> };
  const model = document.models?.find((candidate) => candidate.id === MODEL_ID);
  if (!model) throw new Error(`the tests' catalogue has no ${MODEL_ID}`);
  model.source = modelPath;
  model.context_length = RUNTIME.contextLength;
  model.runtime = { threads: RUNTIME.threads, sequences: RUNTIME.sequences };
  return stringifyYaml(document);
}

interface Sample {
  firstTokenMs: number;
  completionMs: number;
  completionTokens: number;
  text: string;
}

interface GatewaySample extends Sample {
  /** The gateway's request id (also each chunk's `id`), which keys the usage record the worker publishes. */
  requestId: string;
}

/** The request as the gateway hands it to the worker for a plain chat completion without tools. */
const chatInput: ChatInput = {
  kind: "chat",
  messages: PROMPT,
  tools: [],
  toolChoice: { mode: "none" },
  parallelToolCalls: true,
  output: { type: "text" },
};
const sampling = greedySampling(flags.maxTokens);

/** Prepared per run, as the worker prepares each request it receives; that cost belongs to both paths. */
async function runInProcess(engine: ModelEngine): Promise<Sample> {
  const started = performance.now();
  let firstToken: number | undefined;
  let text = "";
  const prepared = engine.prepare(chatInput, sampling);
  const result = await engine.generate(prepared, {
    sampling,
    signal: new AbortController().signal,
    onEvent: (event) => {
      if (event.type !== "text" || !event.text) return;
      firstToken ??= performance.now();
      text += event.text;
    },
  });
  const finished = performance.now();
  return {
    firstTokenMs: (firstToken ?? Number.NaN) - started,
    completionMs: finished - started,
    completionTokens: result.completionTokens,
    text,
  };
}

/** Completion is the end of the SSE stream ([DONE]), which is when an SDK caller gets control back. */
async function runThroughGateway(client: ReturnType<typeof openaiClient>): Promise<GatewaySample> {
  const started = performance.now();
  let firstToken: number | undefined;
  let text = "";
  let completionTokens = Number.NaN;
  let requestId = "";
  const stream = await client.chat.completions.create({
    model: MODEL_ID,
    messages: PROMPT,
    max_tokens: flags.maxTokens,
    temperature: 0,
    seed: SEED,
    stream: true,
    stream_options: { include_usage: true },
  });
  for await (const chunk of stream) {
    requestId ||= chunk.id;
    // The gateway opens with an empty role-only delta; the first token is the first non-empty content.
    const content = chunk.choices[0]?.delta.content;
    if (content) {
      firstToken ??= performance.now();
      text += content;
    }
    if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
  }
  const finished = performance.now();
  return {
    firstTokenMs: (firstToken ?? Number.NaN) - started,
    completionMs: finished - started,
    completionTokens,
    text,
    requestId,
  };
}

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

/** Every figure of every round is reduced on its own: the median of the rounds' p99s, and so on. */
function medianOfRounds(rounds: RoundFigures[]): RoundFigures {
  const of = (pick: (round: RoundFigures) => number): number => median(rounds.map(pick));
  const path = (pick: (round: RoundFigures) => PathFigures): PathFigures => ({
    firstTokenP50: of((round) => pick(round).firstTokenP50),
    firstTokenP99: of((round) => pick(round).firstTokenP99),
    completionP50: of((round) => pick(round).completionP50),
    completionP99: of((round) => pick(round).completionP99),
    tokensPerSecond: of((round) => pick(round).tokensPerSecond),
  });
  return {
    a: path((round) => round.a),
    b: path((round) => round.b),
    added: {
      firstTokenP50: of((round) => round.added.firstTokenP50),
      firstTokenP99: of((round) => round.added.firstTokenP99),
      completionP50: of((round) => round.added.completionP50),
      completionP99: of((round) => round.added.completionP99),
    },
    tokensPerSecondRatio: of((round) => round.tokensPerSecondRatio),
    bWorkerP50: of((round) => round.bWorkerP50),
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

/** Both paths must have done the same work, or the comparison means nothing; counted, and reported. */
class WorkCheck {
  mismatchedTokens = 0;
  mismatchedText = 0;
  private reference: string | undefined;

  check(label: string, sample: Sample): void {
    if (sample.completionTokens !== flags.maxTokens) {
      this.mismatchedTokens++;
      progress(`WARNING ${label}: ${sample.completionTokens} completion tokens, expected ${flags.maxTokens}`);
    }
    this.reference ??= sample.text;
    if (sample.text !== this.reference) {
      this.mismatchedText++;
      progress(`WARNING ${label}: output differs from the first run's`);
    }
  }
}

function printRounds(rounds: RoundFigures[], overall: RoundFigures): void {
  const rows: Array<[string, (round: RoundFigures) => number, number]> = [
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

const rounded = (figures: RoundFigures): RoundFigures =>
  JSON.parse(
    JSON.stringify(figures, (_, value: unknown) =>
      typeof value === "number" ? Number(value.toFixed(3)) : value,
    ),
  ) as RoundFigures;

/** Ctrl-C ends the run between two requests, so that the platform is always stopped and its database dropped. */
class Interrupted extends Error {}
let interrupted = false;
process.once("SIGINT", () => {
  interrupted = true;
  progress("interrupted: stopping after the current request (Ctrl-C again to abort at once)");
});
function stopIfInterrupted(): void {
  if (interrupted) throw new Interrupted();
}

async function measure(engine: ModelEngine, stack: Stack): Promise<void> {
  const client = openaiClient(stack);
  const machineBefore = machineInfo();
  const work = new WorkCheck();

  // JIT, the gateway's first key lookup, the sequences' first prompt: none of it is what is being compared.
  for (let index = 0; index < flags.warmup; index++) {
    stopIfInterrupted();
    work.check("warm-up A", await runInProcess(engine));
    work.check("warm-up B", await runThroughGateway(client));
  }
  progress(`warmed up with ${flags.warmup} runs of each path`);

  const rounds: RoundFigures[] = [];
  for (let round = 1; round <= flags.rounds; round++) {
    const a: Sample[] = [];
    const b: GatewaySample[] = [];
    // Interleaved, so that whatever else the shared machine does falls on both paths alike.
    for (let run = 1; run <= flags.runs; run++) {
      stopIfInterrupted();
      const sampleA = await runInProcess(engine);
      const sampleB = await runThroughGateway(client);
      work.check(`round ${round} run ${run} A`, sampleA);
      work.check(`round ${round} run ${run} B`, sampleB);
      a.push(sampleA);
      b.push(sampleB);
    }
    const figures = roundFigures(a, b, await workerMs(stack, b));
    rounds.push(figures);
    progress(
      `round ${round}/${flags.rounds}: completion p50 A ${fixed(figures.a.completionP50)} ms, ` +
        `B ${fixed(figures.b.completionP50)} ms`,
    );
  }

  const overall = medianOfRounds(rounds);
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
  console.log(
    JSON.stringify({
      bench: "gateway-vs-in-process",
      model: MODEL_ID,
      runtime: RUNTIME,
      flags,
      machine: { ...machineBefore, loadavgAfter: machineInfo().loadavg },
      sameWork: { mismatchedTokens: work.mismatchedTokens, mismatchedText: work.mismatchedText },
      unit: "ms",
      median: rounded(overall),
      rounds: rounds.map(rounded),
    }),
  );
}

const dir = await mkdtemp(join(tmpdir(), "llmaas-bench-"));
const llama = await createLlama({ gpu: false, logger: stderrLogger });
let stack: Stack | undefined;
let engine: ModelEngine | undefined;
try {
  const yaml = benchCatalogue(await writeBenchModel(dir));
  const entry = parseCatalogue(yaml, dir).find(MODEL_ID);
  if (!entry) throw new Error(`${MODEL_ID} is missing from the bench catalogue`);
  progress("starting the platform (Postgres database, NATS namespace, auth, metering, llm-worker, gateway)");
  stack = await startStack({ catalogue: yaml });
  engine = await ModelEngine.load(llama, entry, { threads: RUNTIME.threads, modelsDir: dir });
  await measure(engine, stack);
} catch (error) {
  // On a terminal, Ctrl-C reaches the services too, so a failure after it is part of the interruption.
  if (!interrupted) throw error;
  process.exitCode = 130;
} finally {
  await engine?.dispose();
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
  await llama.dispose();
}
