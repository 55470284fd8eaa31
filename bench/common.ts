import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { writeTinyModel, tinyModelPresets } from "@llmaas/tiny-models";
import type { EngineLogger } from "@llmaas/llm-worker/engine";
import type { ChatInput, SamplingParams } from "@llmaas/contracts";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";

export const MODEL_ID = "tiny-chat";

/** One conversation for every run, so that every run evaluates the same prompt. */
export const PROMPT = [
  { role: "system" as const, content: "You are a helpful assistant." },
  { role: "user" as const, content: "Tell me a short story about a lighthouse keeper and a storm." },
];

/** PROMPT as the gateway hands it to the worker for a plain chat completion: no tools, free text. */
export const PROMPT_INPUT: ChatInput = {
  kind: "chat",
  messages: PROMPT,
  tools: [],
  toolChoice: { mode: "none" },
  parallelToolCalls: true,
  output: { type: "text" },
};

/** Greedy decoding with a fixed seed: both paths must do exactly the same work, token for token. */
export const SEED = 1234;

export function greedySampling(maxTokens: number): SamplingParams {
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

/** The tiny random-weight chat model the tests use; it never ends a turn, so every run goes to max_tokens. */
export async function writeBenchModel(dir: string): Promise<string> {
  const { path } = await writeTinyModel(join(dir, "tiny-chat.gguf"), tinyModelPresets["tiny-chat"]);
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

export function machineInfo(): { cpus: number; cpuModel: string; loadavg: number[]; node: string } {
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
 * unknown flag stops the script: a typo must not silently measure the defaults.
 */
export function parseFlags<T extends Record<string, number>>(defaults: T): T {
  // `pnpm bench -- --runs 5` passes the `--` through.
  const argv = process.argv.slice(2).filter((arg) => arg !== "--");
  try {
    return parseIntegerFlags(argv, defaults);
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
 * A catalogue (the tests' `DEFAULT_CATALOGUE`, passed in so that this module needs no platform) with the chat
 * model's file, context length and runtime pinned, so that the entry stays valid as the catalogue schema grows.
 */
export function pinnedChatCatalogue(baseYaml: string, modelPath: string, runtime: BenchRuntime): string {
  const document = parseYaml(baseYaml) as { models?: Array<Record<string, unknown>> };
  const model = document.models?.find((candidate) => candidate.id === MODEL_ID);
  if (!model) throw new Error(`the base catalogue has no ${MODEL_ID}`);
  model.source = modelPath;
  model.context_length = runtime.contextLength;
  model.runtime = { threads: runtime.threads, sequences: runtime.sequences };
  return stringifyYaml(document);
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

/**
 * Ctrl-C (or SIGTERM) ends a run between two measurements, so that a started platform is always stopped and its
 * database dropped. One Ctrl-C arrives several times: the terminal signals the whole process group, `pnpm exec`
 * sends SIGTERM to its child, and the tsx CLI relays the signal again when it did not see it acknowledged within
 * 30 ms (a busy event loop); so signals within a second of the first are taken for the same one. A later Ctrl-C
 * exits at once, without cleaning up. Under pnpm the shell prompt returns at once while this process cleans up.
 */
export function interruptible(what = "the current measurement"): {
  readonly interrupted: boolean;
  stopIfInterrupted(): void;
} {
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
