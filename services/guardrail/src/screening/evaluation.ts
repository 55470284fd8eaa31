import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { screenText } from "./index.js";

export interface LabelledRow {
  text: string;
  label: "attack" | "benign";
  source: string;
}

export interface Rates {
  attacks: number;
  caught: number;
  benign: number;
  falsePositives: number;
  /** Caught attacks ÷ attacks; NaN without attacks. */
  recall: number;
  /** Flagged benign rows ÷ benign rows; NaN without benign rows. */
  falsePositiveRate: number;
}

export interface Evaluation {
  threshold: number;
  overall: Rates;
  bySource: Record<string, Rates>;
  /** Rows each category fired on (at any score), by label. */
  byCategory: Record<string, { attack: number; benign: number }>;
  /** Screening time per row, in milliseconds. */
  timing: { p50: number; p99: number };
}

/** The development set's format: one JSON object per line, `{text, label, source}`. */
export function readDataset(path: string): LabelledRow[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as LabelledRow);
}

function rates(rows: { label: string; flagged: boolean }[]): Rates {
  const attacks = rows.filter((row) => row.label === "attack");
  const benign = rows.filter((row) => row.label === "benign");
  const caught = attacks.filter((row) => row.flagged).length;
  const falsePositives = benign.filter((row) => row.flagged).length;
  return {
    attacks: attacks.length,
    caught,
    benign: benign.length,
    falsePositives,
    recall: caught / attacks.length,
    falsePositiveRate: falsePositives / benign.length,
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** Screens every row once and reports recall and false positives, overall, per source and per category. */
export function evaluateDataset(rows: LabelledRow[], threshold: number): Evaluation {
  const times: number[] = [];
  const results = rows.map((row) => {
    const start = performance.now();
    const screening = screenText(row.text);
    times.push(performance.now() - start);
    return { ...row, ...screening, flagged: screening.score >= threshold };
  });
  const bySource: Record<string, Rates> = {};
  for (const source of new Set(rows.map((row) => row.source))) {
    bySource[source] = rates(results.filter((row) => row.source === source));
  }
  const byCategory: Record<string, { attack: number; benign: number }> = {};
  for (const result of results) {
    for (const category of result.categories) {
      byCategory[category] ??= { attack: 0, benign: 0 };
      byCategory[category][result.label]++;
    }
  }
  times.sort((a, b) => a - b);
  return {
    threshold,
    overall: rates(results),
    bySource,
    byCategory,
    timing: { p50: percentile(times, 50), p99: percentile(times, 99) },
  };
}
