import { mkdtemp, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { Llama } from "node-llama-cpp";
import { parseCatalogue, type CatalogueModel } from "@llmaas/catalogue";
import { writeTinyModel, tinyModelPresets, type TinyModelPresetName } from "@llmaas/tiny-models";
import { createLlama, type EngineLogger, type ModelEngine } from "@llmaas/llm-worker/engine";
import type { ChatInput, SamplingParams } from "@llmaas/contracts";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import type { plainClient } from "../test/support/client.js";
import type { Stack, StackOptions } from "../test/support/stack.js";

export const MODEL_ID = "tiny-chat";

/** One conversation for every run, so that every run evaluates the same prompt. */
export const PROMPT = [
  { role: "system" as const, content: "You are a helpful assistant." },
  { role: "user" as const, content: "Tell me a short story about a lighthouse keeper and a storm." },
];

/** PROMPT as the gateway hands it to the worker for a plain chat completion: no tools, free text. */
const PROMPT_INPUT: ChatInput = {
  kind: "chat",
  messages: PROMPT,
  tools: [],
  toolChoice: { mode: "none" },
  parallelToolCalls: true,
  output: { type: "text" },
};

/** Greedy decoding with a fixed seed: both paths must do exactly the same work, token for token. */
export const SEED = 1234;

function greedySampling(maxTokens: number): SamplingParams {
  return {
    maxTokens,
    temperature: 0,
    topP: null,
    seed: SEED,
    stop: [],
    presencePenalty: null,
    frequencyPenalty: null,
  };
}

/** A tiny random-weight model the tests use; the chat one never ends a turn, so every run goes to max_tokens. */
export async function writeBenchModel(dir: string, model: TinyModelPresetName): Promise<string> {
  const { path } = await writeTinyModel(join(dir, `${model}.gguf`), tinyModelPresets[model]);
  return path;
}

/** llama.cpp's own warnings go to stderr, so that stdout stays the report. */
export const stderrLogger: EngineLogger = {
  warn: (obj, msg) => console.error(`[llama warn] ${msg}`, obj),
  error: (obj, msg) => console.error(`[llama error] ${msg}`, obj),
};

export function progress(message: string): void {
  console.error(message);
}

/** One generation of PROMPT, on either path. */
export interface Generation {
  /** `performance.now()` when the first non-empty text arrived; NaN if none did. */
  firstTokenAt: number;
  text: string;
  completionTokens: number;
}

export interface GatewayGeneration extends Generation {
  /** The gateway's request id (each chunk's `id`), which keys the usage record the worker publishes. */
  requestId: string;
}

/**
 * PROMPT generated in this process, as the llm-worker generates a request. Prepared per call, as the worker prepares
 * each request it receives: that cost belongs to both paths.
 */
export async function generateInProcess(engine: ModelEngine, maxTokens: number): Promise<Generation> {
  const sampling = greedySampling(maxTokens);
  let firstToken: number | undefined;
  let text = "";
  const result = await engine.generate(engine.prepare(PROMPT_INPUT, sampling), {
    sampling,
    signal: new AbortController().signal,
    onEvent: (event) => {
      if (event.type !== "text" || !event.text) return;
      firstToken ??= performance.now();
      text += event.text;
    },
  });
  return { firstTokenAt: firstToken ?? Number.NaN, text, completionTokens: result.completionTokens };
}

/**
 * PROMPT streamed through the gateway by the official client. It returns at the end of the SSE stream ([DONE]),
 * which is when an SDK caller gets control back.
 */
export async function streamThroughGateway(
  client: ReturnType<typeof plainClient>,
  maxTokens: number,
): Promise<GatewayGeneration> {
  let firstToken: number | undefined;
  let text = "";
  let completionTokens = Number.NaN;
  let requestId = "";
  const stream = await client.chat.completions.create({
    model: MODEL_ID,
    messages: PROMPT,
    max_tokens: maxTokens,
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
  return { firstTokenAt: firstToken ?? Number.NaN, text, completionTokens, requestId };
}

/** Both paths must have done the same work, or the comparison means nothing; counted, and reported. */
export class SameWork {
  checked = 0;
  mismatchedTokens = 0;
  mismatchedText = 0;
  private reference: string | undefined;

  /** `unit` is what the warnings call one generation ("run", "stream"). */
  constructor(
    private readonly maxTokens: number,
    private readonly unit: string,
  ) {}

  check(label: string, generation: Generation): void {
    this.checked++;
    if (generation.completionTokens !== this.maxTokens) {
      this.mismatchedTokens++;
      progress(
        `WARNING ${label}: ${generation.completionTokens} completion tokens, expected ${this.maxTokens}`,
      );
    }
    this.reference ??= generation.text;
    if (generation.text !== this.reference) {
      this.mismatchedText++;
      progress(`WARNING ${label}: output differs from the first ${this.unit}'s`);
    }
  }
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/**
 * Linear interpolation between closest ranks (numpy's default). With 30 samples p99 lies between the two
 * largest, so it is close to the maximum: more runs give a steadier tail.
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  const lowValue = sorted[low] ?? Number.NaN;
  const highValue = sorted[high] ?? Number.NaN;
  return lowValue + (highValue - lowValue) * (rank - low);
}

/** A plain text table; columns after the first are right-aligned, as they hold numbers. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => {
        const width = widths[column] ?? 0;
        return column === 0 ? cell.padEnd(width) : cell.padStart(width);
      })
      .join("  ")
      .trimEnd();
  return [line(headers), widths.map((width) => "-".repeat(width)).join("  "), ...rows.map(line)].join("\n");
}

export function fixed(value: number, digits = 2): string {
  return Number.isFinite(value) ? value.toFixed(digits) : "n/a";
}

/** A figure of a per-round table: its label, where a round's figures hold it, and its decimals. */
export type RoundRow<R> = readonly [label: string, pick: (round: R) => number, digits: number];

/** One row a figure, one column a round, and last the median of the rounds. */
export function roundsTable<R>(rows: readonly RoundRow<R>[], rounds: readonly R[], overall: R): string {
  return formatTable(
    ["figure", ...rounds.map((_, index) => `round ${index + 1}`), "median of rounds"],
    rows.map(([label, pick, digits]) => [
      label,
      ...rounds.map((round) => fixed(pick(round), digits)),
      fixed(pick(overall), digits),
    ]),
  );
}

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  loadavg: number[];
  node: string;
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model ?? "unknown",
    loadavg: loadavg().map((value) => Number(value.toFixed(2))),
    node: process.version,
  };
}

/**
 * The script's `--name value` (or `--name=value`) flags, all non-negative integers, over their defaults. An
 * unknown flag stops the script: a typo must not silently measure the defaults. So does a combination of values
 * that `problem` describes (it returns undefined for a good one).
 */
export function parseFlags<T extends Record<string, number>>(
  defaults: T,
  problem?: (flags: T) => string | undefined,
): T {
  // `pnpm bench -- --runs 5` passes the `--` through.
  const argv = process.argv.slice(2).filter((arg) => arg !== "--");
  try {
    const flags = parseIntegerFlags(argv, defaults);
    const message = problem?.(flags);
    if (message !== undefined) throw new Error(message);
    return flags;
  } catch (error) {
    console.error((error as Error).message);
    process.exit(2);
  }
}

function parseIntegerFlags<T extends Record<string, number>>(argv: readonly string[], defaults: T): T {
  const result: Record<string, number> = { ...defaults };
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index] ?? "";
    const [flag, inline] = arg.split("=", 2);
    const name = flag?.startsWith("--") ? kebabToCamel(flag.slice(2)) : undefined;
    if (name === undefined || !(name in defaults)) {
      throw new Error(
        `unknown argument ${arg}; flags: ${Object.keys(defaults).map(camelToKebab).join(", ")}`,
      );
    }
    const text = inline ?? argv[++index];
    const value = Number(text);
    if (!Number.isInteger(value) || value < 0)
      throw new Error(`${flag} needs a non-negative integer, got ${text}`);
    result[name] = value;
  }
  return result as T;
}

function kebabToCamel(text: string): string {
  return text.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

function camelToKebab(text: string): string {
  return `--${text.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

/** The runtime a bench pins in its catalogue entry; the worker and the in-process engine load the same text. */
export interface BenchRuntime {
  threads: number;
  sequences: number;
  contextLength: number;
}

/**
 * The tests' catalogue with one model's file, context length and runtime pinned, so that the entry stays valid as
 * the catalogue schema grows.
 */
function pinnedCatalogue(
  baseYaml: string,
  id: TinyModelPresetName,
  modelPath: string,
  runtime: BenchRuntime,
): string {
  const document = parseYaml(baseYaml) as { models?: Array<Record<string, unknown>> };
  const model = document.models?.find((candidate) => candidate.id === id);
  if (!model) throw new Error(`the base catalogue has no ${id}`);
  model.source = modelPath;
  model.context_length = runtime.contextLength;
  model.runtime = { threads: runtime.threads, sequences: runtime.sequences };
  return stringifyYaml(document);
}

/** The started platform, and the catalogue entry of the bench's model, as its llm-worker loaded it. */
export interface Platform {
  stack: Stack;
  entry: CatalogueModel;
  runtime: BenchRuntime;
  /** Holds the model file that `entry` points at. */
  dir: string;
}

/**
 * Starts the platform (a database and a bus namespace of its own, auth, metering, one llm-worker, the gateway) with
 * the tests' catalogue in which `model` is a freshly written tiny model with `runtime` pinned, runs `measure`, and
 * always stops the platform and drops its database, after a failure or Ctrl-C too.
 */
export async function onPlatform(
  run: Interruption,
  model: TinyModelPresetName,
  runtime: BenchRuntime,
  measure: (platform: Platform) => Promise<void>,
  stackOptions: Omit<StackOptions, "catalogue"> = {},
): Promise<void> {
  // Imported here, not above, so that a bench without the platform (threads.ts) does not load it either.
  const { DEFAULT_CATALOGUE, startStack } = await import("../test/support/stack.js");
  const dir = await mkdtemp(join(tmpdir(), "llmaas-bench-"));
  let stack: Stack | undefined;
  try {
    const catalogue = pinnedCatalogue(DEFAULT_CATALOGUE, model, await writeBenchModel(dir, model), runtime);
    const entry = parseCatalogue(catalogue, dir).find(model);
    if (!entry) throw new Error(`${model} is missing from the bench catalogue`);
    progress(
      "starting the platform (Postgres database, NATS namespace, auth, metering, llm-worker, gateway)",
    );
    stack = await startStack({ ...stackOptions, catalogue });
    await measure({ stack, entry, runtime, dir });
  } catch (error) {
    // On a terminal, Ctrl-C reaches the services too, so a failure after it is part of the interruption.
    if (!run.interrupted) throw error;
    process.exitCode = 130;
  } finally {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The platform's model loaded in this process by one of the llm-worker's own engines (`ModelEngine`,
 * `EmbeddingEngine`), from the very catalogue entry the worker loaded, for `use`.
 */
export async function withEngine<E extends { dispose(): Promise<void> }>(
  platform: Platform,
  engineClass: {
    load(llama: Llama, entry: CatalogueModel, options: { threads: number; modelsDir: string }): Promise<E>;
  },
  use: (engine: E) => Promise<void>,
): Promise<void> {
  const llama = await createLlama({ gpu: false, logger: stderrLogger });
  try {
    const engine = await engineClass.load(llama, platform.entry, {
      threads: platform.runtime.threads,
      modelsDir: platform.dir,
    });
    try {
      await use(engine);
    } finally {
      await engine.dispose();
    }
  } finally {
    await llama.dispose();
  }
}

/**
 * The report's last line: what was measured, with which flags and on what machine (its load before and after), then
 * the bench's own figures.
 */
export function printJsonSummary(
  head: { bench: string; model: string; runtime: BenchRuntime; flags: Record<string, number> },
  machineBefore: MachineInfo,
  figures: Record<string, unknown>,
): void {
  console.log(
    JSON.stringify({
      ...head,
      machine: { ...machineBefore, loadavgAfter: machineInfo().loadavg },
      ...figures,
    }),
  );
}

/** Every number rounded to `digits` decimals, for the JSON line. */
export function roundNumbers<T>(value: T, digits = 3): T {
  return JSON.parse(
    JSON.stringify(value, (_, item: unknown) =>
      typeof item === "number" ? Number(item.toFixed(digits)) : item,
    ),
  ) as T;
}

/** Thrown between two measurements once Ctrl-C was pressed. */
export class Interrupted extends Error {}

export interface Interruption {
  readonly interrupted: boolean;
  /** Throws Interrupted once Ctrl-C was pressed. */
  stopIfInterrupted(): void;
}

/**
 * Ctrl-C (or SIGTERM) ends a run between two measurements, so that a started platform is always stopped and its
 * database dropped. One Ctrl-C arrives several times: the terminal signals the whole process group, `pnpm exec`
 * sends SIGTERM to its child, and the tsx CLI relays the signal again when it did not see it acknowledged within
 * 30 ms (a busy event loop); so signals within a second of the first are taken for the same one. A later Ctrl-C
 * exits at once, without cleaning up. Under pnpm the shell prompt returns at once while this process cleans up.
 */
export function interruptible(what = "the current measurement"): Interruption {
  let interruptedAt: number | undefined;
  const onSignal = (): void => {
    const now = performance.now();
    if (interruptedAt === undefined) {
      interruptedAt = now;
      progress(`interrupted: stopping after ${what} (Ctrl-C again to abort at once)`);
    } else if (now - interruptedAt > 1000) {
      progress("aborted: the platform's database and bus namespace are left behind");
      process.exit(130);
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    get interrupted() {
      return interruptedAt !== undefined;
    },
    stopIfInterrupted() {
      if (interruptedAt !== undefined) throw new Interrupted();
    },
  };
}

/**
 * The median over several records of the same shape, each numeric field on its own (the median of the rounds'
 * p99s, and so on); nested objects are reduced field by field.
 */
export function medianOfEach<T>(records: readonly T[]): T {
  const reduce = (values: readonly unknown[]): unknown => {
    const first = values[0];
    if (typeof first === "number") return median(values as number[]);
    if (first === null || typeof first !== "object") return first;
    return Object.fromEntries(
      Object.keys(first).map((key) => [
        key,
        reduce(values.map((value) => (value as Record<string, unknown>)[key])),
      ]),
    );
  };
  return reduce(records) as T;
}

/** How an A/B comparison runs; `unit` is what one of a round's `runs` pairs is called. */
export interface Rounds {
  warmup: number;
  rounds: number;
  runs: number;
  unit: "run" | "batch";
}

const PLURAL = { run: "runs", batch: "batches" } as const;

/**
 * `warmup` pairs that are not counted (JIT, the gateway's first key lookups, the first prompts: none of it is what
 * is compared), then `rounds` rounds of `runs` pairs, interleaved A, B, A, B, … so that whatever else the shared
 * machine does falls on both paths alike. Every sample is checked; each round's samples are reduced to its figures,
 * which `describe` tells in a progress line.
 */
export async function interleavedRounds<A, B, F>(
  run: Interruption,
  { warmup, rounds, runs, unit }: Rounds,
  paths: { a: () => Promise<A>; b: () => Promise<B>; check: (label: string, sample: A | B) => void },
  figures: (a: A[], b: B[]) => F | Promise<F>,
  describe: (figures: F) => string,
): Promise<F[]> {
  for (let index = 0; index < warmup; index++) {
    run.stopIfInterrupted();
    paths.check("warm-up A", await paths.a());
    paths.check("warm-up B", await paths.b());
  }
  progress(`warmed up with ${warmup} ${PLURAL[unit]} of each path`);

  const results: F[] = [];
  for (let round = 1; round <= rounds; round++) {
    const a: A[] = [];
    const b: B[] = [];
    for (let index = 1; index <= runs; index++) {
      run.stopIfInterrupted();
      const sampleA = await paths.a();
      const sampleB = await paths.b();
      paths.check(`round ${round} ${unit} ${index} A`, sampleA);
      paths.check(`round ${round} ${unit} ${index} B`, sampleB);
      a.push(sampleA);
      b.push(sampleB);
    }
    const result = await figures(a, b);
    results.push(result);
    progress(`round ${round}/${rounds}: ${describe(result)}`);
  }
  return results;
}
