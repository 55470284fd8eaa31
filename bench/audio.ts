/**
 * What the platform adds to a transcription: the same WAV transcribed (A) in this process by the audio-worker's own
 * code (ffmpeg decoding over pipes, then `WhisperEngine`), and (B) through the official openai client → gateway
 * (multipart) → NATS (the file pulled in chunks when over one message) → audio-worker process → back. Same tiny
 * whisper model, same catalogue entry (one context, one thread), same audio. Real-time factor = wall time ÷ audio
 * length (below 1 is faster than real time); the ratio B/A is what the platform costs.
 *
 *   pnpm exec tsx bench/audio.ts [--seconds 30] [--rounds 3] [--runs 3] [--warmup 1]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { toFile } from "openai";
import { decodeAudio } from "@llmaas/audio-worker/decode";
import { WhisperEngine } from "@llmaas/audio-worker/engine";
import { parseCatalogue } from "@llmaas/catalogue";
import { tinyWhisperPresets, writeTinyWhisperModel } from "@llmaas/tiny-models";
import { toneWav } from "../test/support/audio.js";
import { plainClient } from "../test/support/client.js";
import {
  fixed,
  formatTable,
  interleavedRounds,
  interruptible,
  machineInfo,
  median,
  parseFlags,
  progress,
} from "./common.js";

const flags = parseFlags({ seconds: 30, rounds: 3, runs: 3, warmup: 1 }, ({ seconds, rounds, runs }) =>
  seconds <= 0 || rounds < 1 || runs < 1
    ? "--seconds must be positive, --rounds and --runs at least 1"
    : undefined,
);

const MODEL_ID = "tiny-whisper";
const run = interruptible();
const machineBefore = machineInfo();
const dir = await mkdtemp(join(tmpdir(), "llmaas-bench-audio-"));
const { startStack } = await import("../test/support/stack.js");
let stack: Awaited<ReturnType<typeof startStack>> | undefined;
let engine: WhisperEngine | undefined;
try {
  const model = await writeTinyWhisperModel(
    join(dir, "tiny-whisper.bin"),
    tinyWhisperPresets["tiny-whisper"],
  );
  const catalogue = `
models:
  - id: ${MODEL_ID}
    owned_by: bench
    created: 2026-11-22
    source: ${JSON.stringify(model.path)}
    capabilities: [audio]
    context_length: 72
    audio: { max_seconds: 3600 }
    pricing: { audio_per_minute: 0.006 }
    runtime: { threads: 1, sequences: 1 }
`;
  const entry = parseCatalogue(catalogue, dir).find(MODEL_ID);
  if (!entry) throw new Error("no bench model");
  progress(
    "starting the platform (Postgres database, NATS namespace, auth, metering, audio-worker, gateway)",
  );
  stack = await startStack({ workers: 0, audioWorkers: 1, catalogue });
  engine = await WhisperEngine.load(entry, { threads: 1 });
  const client = plainClient(stack);
  const wav = toneWav(flags.seconds);

  const inProcess = async (): Promise<number> => {
    const started = performance.now();
    const decoded = await decodeAudio(wav, { maxSeconds: 3600 });
    await engine?.transcribe(decoded.pcm, {
      task: "transcribe",
      language: null,
      prompt: null,
      temperature: null,
      timestamps: { segments: false, words: false },
      signal: new AbortController().signal,
    });
    return (performance.now() - started) / 1000 / flags.seconds;
  };
  const throughGateway = async (): Promise<number> => {
    const started = performance.now();
    await client.audio.transcriptions.create(
      { file: await toFile(wav, "bench.wav"), model: MODEL_ID },
      { timeout: 600_000 },
    );
    return (performance.now() - started) / 1000 / flags.seconds;
  };

  const rounds = await interleavedRounds(
    run,
    { warmup: flags.warmup, rounds: flags.rounds, runs: flags.runs, unit: "run" },
    { a: inProcess, b: throughGateway, check: () => undefined },
    (a, b) => ({ inProcess: median(a), gateway: median(b), ratio: median(b) / median(a) }),
    (figures) =>
      `RTF in process ${fixed(figures.inProcess, 3)}, through the gateway ${fixed(figures.gateway, 3)}, ` +
      `ratio ${fixed(figures.ratio, 2)}`,
  );
  const overall = {
    inProcess: median(rounds.map((round) => round.inProcess)),
    gateway: median(rounds.map((round) => round.gateway)),
    ratio: median(rounds.map((round) => round.ratio)),
  };
  console.log(
    formatTable(
      ["", ...rounds.map((_, index) => `round ${index + 1}`), "median"],
      [
        [
          "RTF, in process (decode + whisper)",
          ...rounds.map((r) => fixed(r.inProcess, 3)),
          fixed(overall.inProcess, 3),
        ],
        ["RTF, through the gateway", ...rounds.map((r) => fixed(r.gateway, 3)), fixed(overall.gateway, 3)],
        ["gateway / in process", ...rounds.map((r) => fixed(r.ratio, 2)), fixed(overall.ratio, 2)],
      ],
    ),
  );
  console.log(
    JSON.stringify({
      bench: "audio",
      model: MODEL_ID,
      flags,
      machine: { ...machineBefore, loadavgAfter: machineInfo().loadavg },
      rounds,
      median: overall,
    }),
  );
} catch (error) {
  if (!run.interrupted) throw error;
  process.exitCode = 130;
} finally {
  await engine?.dispose();
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
}
