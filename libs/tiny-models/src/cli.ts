// Usage: tsx libs/tiny-models/src/cli.ts --out <dir>
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  tinyModelPresets,
  tinyWhisperPresets,
  writeTinyModel,
  writeTinyWhisperModel,
  type TinyModelPresetName,
  type TinyWhisperPresetName,
  type WriteTinyModelResult,
} from "./index.js";

const { values } = parseArgs({ options: { out: { type: "string", default: "models" } } });
const outDir = values.out;

async function report(write: () => Promise<WriteTinyModelResult>): Promise<void> {
  const started = performance.now();
  const result = await write();
  const ms = (performance.now() - started).toFixed(0);
  const kib = (result.bytes / 1024).toFixed(1);
  const verb = result.written ? "wrote    " : "unchanged";
  console.log(`${verb} ${result.path}  ${kib} KiB  sha256 ${result.sha256.slice(0, 16)}  ${ms} ms`);
}

for (const name of Object.keys(tinyModelPresets) as TinyModelPresetName[]) {
  await report(() => writeTinyModel(join(outDir, `${name}.gguf`), tinyModelPresets[name]));
}
for (const name of Object.keys(tinyWhisperPresets) as TinyWhisperPresetName[]) {
  await report(() => writeTinyWhisperModel(join(outDir, `${name}.bin`), tinyWhisperPresets[name]));
}
