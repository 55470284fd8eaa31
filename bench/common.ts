import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { writeTinyModel, tinyModelPresets } from "@llmaas/tiny-models";
import type { EngineLogger } from "@llmaas/llm-worker/engine";
import type { SamplingParams } from "@llmaas/contracts";

export const MODEL_ID = "tiny-chat";

/** One conversation for every run, so that every run evaluates the same prompt. */
export const PROMPT = [
  { role: "system" as const, content: "You are a helpful assistant." },
  { role: "user" as const, content: "Tell me a short story about a lighthouse keeper and a storm." },
];

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
