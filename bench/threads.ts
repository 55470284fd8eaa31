/**
 * How fast llama.cpp generates in this process for a few thread counts, to justify the llm-worker's default of one
 * thread per context (services/llm-worker/src/config.ts, DEFAULT_THREADS). See bench/README.md.
 *
 *   pnpm exec tsx bench/threads.ts [--runs 5] [--max-tokens 64] [--default-max-tokens 20] [--default-timeout-s 30]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import {
  LlamaChat,
  resolveChatWrapper,
  type ChatWrapper,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
} from "node-llama-cpp";
import { createLlama, toChatHistory } from "@llmaas/llm-worker/engine";
import {
  fixed,
  formatTable,
  machineInfo,
  median,
  MODEL_ID,
  parseFlags,
  progress,
  PROMPT,
  SEED,
  stderrLogger,
  writeBenchModel,
} from "./common.js";

const flags = parseFlags({ runs: 5, maxTokens: 64, defaultMaxTokens: 20, defaultTimeoutS: 30 });
const CONTEXT_SIZE = 2048;
const CONCURRENT_SEQUENCES = 4;
const history = toChatHistory(PROMPT);

interface RunResult {
  tokens: number;
  firstTokenMs: number;
  totalMs: number;
  aborted: boolean;
}

interface Setting {
  label: string;
  /** Undefined leaves the choice to node-llama-cpp, as a context created without `threads` would. */
  threads: number | undefined;
  maxTokens: number;
  timeoutMs: number;
  context: LlamaContext;
  sequences: LlamaContextSequence[];
  runs: RunResult[][];
}

async function generate(
  sequence: LlamaContextSequence,
  chatWrapper: ChatWrapper,
  maxTokens: number,
  timeoutMs: number,
): Promise<RunResult> {
  // Every run evaluates the prompt again, so runs do the same work whatever ran on the sequence before.
  await sequence.clearHistory();
  const chat = new LlamaChat({ contextSequence: sequence, chatWrapper, autoDisposeSequence: false });
  const started = performance.now();
  let firstToken: number | undefined;
  let tokens = 0;
  try {
    const result = await chat.generateResponse(history, {
      temperature: 0,
      seed: SEED,
      maxTokens,
      signal: AbortSignal.timeout(timeoutMs),
      stopOnAbortSignal: true,
      onToken: (generated) => {
        firstToken ??= performance.now();
        tokens += generated.length;
      },
    });
    const finished = performance.now();
    return {
      tokens,
      firstTokenMs: (firstToken ?? finished) - started,
      totalMs: finished - started,
      aborted: result.metadata.stopReason === "abort",
    };
  } finally {
    chat.dispose({ disposeSequence: false });
  }
}

async function createSetting(
  model: LlamaModel,
  label: string,
  threads: number | undefined,
  sequences: number,
  maxTokens: number,
  timeoutMs: number,
): Promise<Setting> {
  const context = await model.createContext({
    contextSize: CONTEXT_SIZE,
    sequences,
    ...(threads === undefined ? {} : { threads }),
  });
  return {
    label,
    threads,
    maxTokens,
    timeoutMs,
    context,
    sequences: Array.from({ length: sequences }, () => context.getSequence()),
    runs: [],
  };
}

/** One run of a setting: one generation per sequence, all at once, batched by llama.cpp in one context. */
async function runOnce(
  setting: Setting,
  chatWrapper: ChatWrapper,
): Promise<{ wallMs: number; runs: RunResult[] }> {
  const started = performance.now();
  const runs = await Promise.all(
    setting.sequences.map((sequence) =>
      generate(sequence, chatWrapper, setting.maxTokens, setting.timeoutMs),
    ),
  );
  return { wallMs: performance.now() - started, runs };
}

function summarise(setting: Setting, walls: number[]) {
  const flat = setting.runs.flat();
  const perRequestRate = flat.map((run) => run.tokens / (run.totalMs / 1000));
  const aggregateRate = setting.runs.map(
    (runs, index) => runs.reduce((sum, run) => sum + run.tokens, 0) / ((walls[index] ?? Number.NaN) / 1000),
  );
  return {
    label: setting.label,
    threads: setting.threads ?? "default",
    idealThreads: setting.context.idealThreads,
    sequences: setting.sequences.length,
    maxTokens: setting.maxTokens,
    runs: setting.runs.length,
    medianTokens: median(flat.map((run) => run.tokens)),
    medianFirstTokenMs: median(flat.map((run) => run.firstTokenMs)),
    medianRequestMs: median(flat.map((run) => run.totalMs)),
    medianRequestTokensPerSecond: median(perRequestRate),
    medianAggregateTokensPerSecond: median(aggregateRate),
    // Multi-threaded runs swing by an order of magnitude with the machine's load: the spread is part of the result.
    fastestWallMs: Math.min(...walls),
    slowestWallMs: Math.max(...walls),
    aborted: flat.filter((run) => run.aborted).length,
  };
}

/**
 * Runs the settings in turn (1, 2, default, 1, 2, default, ...) so that whatever else the shared machine is doing
 * falls on all of them alike; the first round is a warm-up and is discarded.
 */
async function measure(settings: Setting[], chatWrapper: ChatWrapper, title: string) {
  const walls = new Map<Setting, number[]>(settings.map((setting) => [setting, []]));
  for (let round = 0; round <= flags.runs; round++) {
    for (const setting of settings) {
      const { wallMs, runs } = await runOnce(setting, chatWrapper);
      const tokens = runs.reduce((sum, run) => sum + run.tokens, 0);
      progress(
        `${title} ${round === 0 ? "warm-up" : `run ${round}/${flags.runs}`} threads=${setting.label}: ` +
          `${tokens} tokens in ${fixed(wallMs, 0)} ms${runs.some((run) => run.aborted) ? " (cut off)" : ""}`,
      );
      if (round === 0) continue;
      setting.runs.push(runs);
      walls.get(setting)?.push(wallMs);
    }
  }
  return settings.map((setting) => summarise(setting, walls.get(setting) ?? []));
}

type Summary = ReturnType<typeof summarise>;

function printTable(title: string, summaries: Summary[], baseline: Summary | undefined): void {
  console.log(`\n${title}`);
  console.log(
    formatTable(
      [
        "threads",
        "used",
        "seqs",
        "max_tokens",
        "runs",
        "tokens",
        "first token ms",
        "request ms",
        "tok/s per request",
        "tok/s total",
        "wall ms min-max",
        "vs 1 thread 1 seq",
        "cut off",
      ],
      summaries.map((summary) => [
        summary.label,
        String(summary.idealThreads),
        String(summary.sequences),
        String(summary.maxTokens),
        String(summary.runs),
        fixed(summary.medianTokens, 0),
        fixed(summary.medianFirstTokenMs, 1),
        fixed(summary.medianRequestMs, 1),
        fixed(summary.medianRequestTokensPerSecond, 1),
        fixed(summary.medianAggregateTokensPerSecond, 1),
        `${fixed(summary.fastestWallMs, 0)}-${fixed(summary.slowestWallMs, 0)}`,
        baseline
          ? `${fixed(summary.medianAggregateTokensPerSecond / baseline.medianAggregateTokensPerSecond, 3)}x`
          : "",
        String(summary.aborted),
      ]),
    ),
  );
}

const dir = await mkdtemp(join(tmpdir(), "llmaas-bench-threads-"));
const llama = await createLlama({ gpu: false, logger: stderrLogger });
try {
  const model = await llama.loadModel({ modelPath: await writeBenchModel(dir, MODEL_ID) });
  const chatWrapper = resolveChatWrapper(model);
  const machine = machineInfo();
  progress(
    `llama.cpp: ${llama.cpuMathCores} math cores, maxThreads ${llama.maxThreads}; machine ${JSON.stringify(machine)}`,
  );
  const defaultTimeoutMs = flags.defaultTimeoutS * 1000;
  const noTimeout = 10 * 60_000;

  const single = await measure(
    [
      await createSetting(model, "1", 1, 1, flags.maxTokens, noTimeout),
      await createSetting(model, "2", 2, 1, flags.maxTokens, noTimeout),
      await createSetting(model, "default", undefined, 1, flags.defaultMaxTokens, defaultTimeoutMs),
    ],
    chatWrapper,
    "one sequence",
  );
  const concurrent = await measure(
    [
      await createSetting(model, "1", 1, CONCURRENT_SEQUENCES, flags.maxTokens, noTimeout),
      await createSetting(model, "2", 2, CONCURRENT_SEQUENCES, flags.maxTokens, noTimeout),
    ],
    chatWrapper,
    `${CONCURRENT_SEQUENCES} sequences`,
  );

  printTable("One request at a time (medians; tok/s = completion tokens / request time)", single, single[0]);
  printTable(
    `${CONCURRENT_SEQUENCES} concurrent requests on one context (medians; tok/s total = all tokens / wall time of the batch)`,
    concurrent,
    single[0],
  );
  console.log(
    JSON.stringify({
      bench: "threads",
      machine: { ...machine, llamaMathCores: llama.cpuMathCores, llamaMaxThreads: llama.maxThreads },
      flags,
      single,
      concurrent,
    }),
  );
} finally {
  // The model file is mapped into memory by now, so it can go first; nothing is left behind if dispose fails.
  await rm(dir, { recursive: true, force: true });
  await llama.dispose();
}
