// Usage: tsx libs/tiny-models/src/cli.ts --out <dir>
import { join } from "node:path";
import { parseArgs } from "node:util";
import { tinyModelPresets, writeTinyModel, type TinyModelPresetName } from "./index.js";

const { values } = parseArgs({ options: { out: { type: "string", default: "models" } } });
const outDir = values.out;

for (const name of Object.keys(tinyModelPresets) as TinyModelPresetName[]) {
  const started = performance.now();
  const result = await writeTinyModel(join(outDir, `${name}.gguf`), tinyModelPresets[name]);
  const ms = (performance.now() - started).toFixed(0);
  const kib = (result.bytes / 1024).toFixed(1);
  const verb = result.written ? "wrote    " : "unchanged";
  console.log(`${verb} ${result.path}  ${kib} KiB  sha256 ${result.sha256.slice(0, 16)}  ${ms} ms`);
}
