/**
 * Recall on attacks and false positives on benign rows of a labelled set (the development set by default), overall,
 * per source and per category that fired; `--sweep` adds a table of thresholds.
 *
 *   pnpm --filter @llmaas/guardrail evaluate [--file <jsonl>] [--threshold 0.5] [--sweep] [--misses]
 */
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { DEFAULT_THRESHOLD, screenText } from "./index.js";
import { evaluateDataset, readDataset, type Rates } from "./evaluation.js";

const { values } = parseArgs({
  options: {
    file: {
      type: "string",
      default: fileURLToPath(new URL("../../test/fixtures/guardrail-dev.jsonl", import.meta.url)),
    },
    threshold: { type: "string", default: String(DEFAULT_THRESHOLD) },
    sweep: { type: "boolean", default: false },
    misses: { type: "boolean", default: false },
  },
});
const rows = readDataset(values.file);
const threshold = Number(values.threshold);
const evaluation = evaluateDataset(rows, threshold);

const percent = (value: number): string => (Number.isNaN(value) ? "-" : `${(value * 100).toFixed(1)}%`);
const line = (name: string, rates: Rates): string =>
  `${name.padEnd(44)} recall ${percent(rates.recall).padStart(6)} (${rates.caught}/${rates.attacks})  ` +
  `false positives ${percent(rates.falsePositiveRate).padStart(6)} (${rates.falsePositives}/${rates.benign})`;

console.log(`${values.file}, threshold ${threshold}\n`);
console.log(line("overall", evaluation.overall));
for (const [source, rates] of Object.entries(evaluation.bySource)) console.log(line(source, rates));
console.log("\ncategory fired on (any score)          attacks  benign");
for (const [category, counts] of Object.entries(evaluation.byCategory)) {
  console.log(
    `  ${category.padEnd(36)} ${String(counts.attack).padStart(7)} ${String(counts.benign).padStart(7)}`,
  );
}
console.log(
  `\nscreening time per row: p50 ${evaluation.timing.p50.toFixed(3)} ms, p99 ${evaluation.timing.p99.toFixed(3)} ms`,
);
if (values.sweep) {
  console.log("\nthreshold  recall  false positives");
  for (let step = 1; step <= 9; step++) {
    const { overall } = evaluateDataset(rows, step / 10);
    console.log(
      `${(step / 10).toFixed(1).padStart(9)}  ${percent(overall.recall).padStart(6)}  ${percent(overall.falsePositiveRate).padStart(6)}`,
    );
  }
}
if (values.misses) {
  // For developing the detector: which rows it gets wrong, shortened.
  for (const row of rows) {
    const { score, categories } = screenText(row.text);
    const flagged = score >= threshold;
    if (flagged !== (row.label === "attack")) {
      console.log(
        `\n[${row.label} ${row.source} ${score} ${categories.join(",")}] ${row.text.slice(0, 240).replace(/\s+/g, " ")}`,
      );
    }
  }
}
