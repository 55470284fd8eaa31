/**
 * How fast uploaded audio becomes whisper's PCM (docs/audio-decoding.md): the audio-worker's `decodeAudio` (Debian's
 * ffmpeg over pipes) against WebAssembly decoders on the same input in the same run, and what an MP4 with its moov
 * at the end costs: moved to the front in memory (what `decodeAudio` does) against ffmpeg reading it from a loopback
 * HTTP server with Range requests.
 *
 *   pnpm exec tsx bench/audio-decode.ts                          # 60 s of audio, 5 runs, ffmpeg only
 *   npm install --prefix /tmp/audio-wasm audio-decode@3.12.0 @ffmpeg/core@0.12.10
 *   pnpm exec tsx bench/audio-decode.ts --wasm-dir /tmp/audio-wasm --seconds 60 --runs 5
 *
 * The WebAssembly packages are not dependencies of the project: `--wasm-dir` names a directory they were installed
 * into, and they are left out without it. Everything is made and kept in memory (ffmpeg.wasm's input and output live
 * in its in-memory file system). Progress goes to stderr; the tables and, last, one JSON line go to stdout.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import {
  decodeAudio,
  ffmpegArguments,
  PCM_SAMPLE_RATE,
  prepareMp4,
} from "../services/audio-worker/src/decode.js";
import { ffmpegPipe, muxM4a } from "../test/support/audio.js";
import { median, progress } from "./common.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "60" },
    runs: { type: "string", default: "5" },
    "wasm-dir": { type: "string" },
    "m4a-mb": { type: "string", default: "25" },
  },
});
const seconds = Number(values.seconds);
const runs = Number(values.runs);
const wasmDir = values["wasm-dir"];
const largeMb = Number(values["m4a-mb"]);
const INPUT_RATE = 48_000;
/** AAC frames a chunk in the M4As made here: 64, so that a 25 MB file's moov (what `prepareMp4` moves) stays small. */
const M4A_CHUNK = 64;

// ---------------------------------------------------------------------------------------------------------------
// Input: speech-like, not a pure tone (a sine is the easiest thing a codec ever sees)

/** A voice-like signal: a gliding 90-220 Hz fundamental with 24 harmonics under moving formants, syllables at about
 * 4 per second with pauses, and some breath noise. 16-bit stereo WAV at 48 kHz. */
function speechLikeWav(lengthSeconds: number): Buffer {
  const frames = Math.round(lengthSeconds * INPUT_RATE);
  const wav = Buffer.alloc(44 + frames * 4);
  wav.write("RIFF", 0, "ascii");
  wav.writeUInt32LE(36 + frames * 4, 4);
  wav.write("WAVEfmt ", 8, "ascii");
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20);
  wav.writeUInt16LE(2, 22);
  wav.writeUInt32LE(INPUT_RATE, 24);
  wav.writeUInt32LE(INPUT_RATE * 4, 28);
  wav.writeUInt16LE(4, 32);
  wav.writeUInt16LE(16, 34);
  wav.write("data", 36, "ascii");
  wav.writeUInt32LE(frames * 4, 40);
  let seed = 12345;
  const noise = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  let phase = 0;
  for (let frame = 0; frame < frames; frame++) {
    const time = frame / INPUT_RATE;
    const f0 = 155 + 65 * Math.sin(2 * Math.PI * 0.23 * time) + 10 * Math.sin(2 * Math.PI * 5.1 * time);
    phase += (2 * Math.PI * f0) / INPUT_RATE;
    const formant1 = 500 + 300 * Math.sin(2 * Math.PI * 1.7 * time);
    const formant2 = 1500 + 700 * Math.sin(2 * Math.PI * 1.1 * time + 1);
    let voiced = 0;
    for (let harmonic = 1; harmonic <= 24; harmonic++) {
      const frequency = harmonic * f0;
      const weight =
        Math.exp(-(((frequency - formant1) / 250) ** 2)) +
        0.5 * Math.exp(-(((frequency - formant2) / 350) ** 2));
      voiced += (weight + 0.02) * Math.sin(harmonic * phase);
    }
    const syllable = Math.max(0, Math.sin(2 * Math.PI * 3.9 * time)) ** 0.6;
    const pause = time % 4.3 > 3.6 ? 0 : 1;
    const sample = pause * (0.18 * syllable * voiced + 0.01 * noise()) + 0.002 * noise();
    const value = Math.max(-32768, Math.min(32767, Math.round(sample * 32767)));
    wav.writeInt16LE(value, 44 + frame * 4);
    wav.writeInt16LE(value, 44 + frame * 4 + 2);
  }
  return wav;
}

// ---------------------------------------------------------------------------------------------------------------
// The decoders

interface Decoded {
  /** Length of what came out, in seconds at 16 kHz (or at the decoder's own rate, for audio-decode). */
  seconds: number;
}

type Decoder = (file: Buffer) => Promise<Decoded>;

const native: Decoder = async (file) => {
  const { seconds: length } = await decodeAudio(file, { maxSeconds: 24 * 3600 });
  return { seconds: length };
};

interface FfmpegCore {
  FS: {
    writeFile(path: string, data: Uint8Array): void;
    readFile(path: string): Uint8Array;
    unlink(path: string): void;
  };
  exec(...args: string[]): number;
  reset(): void;
}

/** @ffmpeg/core 0.12 (ffmpeg 5.1 built for the browser) in this process: its `self` is all it lacks in Node. */
async function loadFfmpegWasm(dir: string): Promise<{ decoder: Decoder; initMs: number }> {
  const coreJs = join(dir, "node_modules/@ffmpeg/core/dist/esm/ffmpeg-core.js");
  (globalThis as { self?: unknown }).self = { location: { href: pathToFileURL(coreJs).href } };
  const started = performance.now();
  const module = (await import(pathToFileURL(coreJs).href)) as {
    default: (options: object) => Promise<FfmpegCore>;
  };
  const core = await module.default({
    wasmBinary: readFileSync(coreJs.replace(/\.js$/, ".wasm")),
    print: () => undefined,
    printErr: () => undefined,
  });
  const initMs = performance.now() - started;
  // decodeAudio's arguments, with files of the in-memory file system for the pipes.
  const args = ffmpegArguments()
    .filter((arg, index, all) => arg !== "-protocol_whitelist" && all[index - 1] !== "-protocol_whitelist")
    .map((arg) => (arg === "pipe:0" ? "/in" : arg === "pipe:1" ? "/out.pcm" : arg));
  const decoder: Decoder = async (file) => {
    core.FS.writeFile("/in", file);
    core.reset();
    const code = core.exec(...args);
    if (code !== 0) throw new Error(`ffmpeg.wasm exited with ${code}`);
    const out = core.FS.readFile("/out.pcm");
    core.FS.unlink("/out.pcm");
    core.FS.unlink("/in");
    return { seconds: out.length / 2 / PCM_SAMPLE_RATE };
  };
  return { decoder, initMs };
}

/** audio-decode 3 (@audio/decode: WebAssembly decoders per codec), then mono and 16 kHz by linear interpolation,
 * cruder than ffmpeg's resampler, so a little less work than ffmpeg does. */
async function loadAudioDecode(dir: string): Promise<Decoder> {
  const entry = join(dir, "node_modules/audio-decode/audio-decode.js");
  const module = (await import(pathToFileURL(entry).href)) as {
    default: (bytes: Uint8Array) => Promise<{ channelData: Float32Array[]; sampleRate: number }>;
  };
  return async (file) => {
    const { channelData, sampleRate } = await module.default(new Uint8Array(file));
    const length = channelData[0]?.length ?? 0;
    const outLength = Math.floor((length * PCM_SAMPLE_RATE) / sampleRate);
    const pcm = new Int16Array(outLength);
    const step = sampleRate / PCM_SAMPLE_RATE;
    for (let index = 0; index < outLength; index++) {
      const position = index * step;
      const at = Math.floor(position);
      const fraction = position - at;
      let sum = 0;
      for (const channel of channelData) {
        sum += channel[at]! * (1 - fraction) + (channel[at + 1] ?? channel[at]!) * fraction;
      }
      pcm[index] = Math.max(-32768, Math.min(32767, Math.round((sum / channelData.length) * 32767)));
    }
    return { seconds: outLength / PCM_SAMPLE_RATE };
  };
}

/** ffmpeg reading the file from an HTTP server in this process (loopback, an unguessable path, Range requests). */
async function decodeOverHttp(file: Buffer): Promise<Decoded & { requests: number; bytesServed: number }> {
  const token = randomBytes(16).toString("hex");
  let requests = 0;
  let bytesServed = 0;
  const server = createServer((request, response) => {
    requests++;
    if (request.url !== `/${token}`) {
      response.writeHead(404).end();
      return;
    }
    const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? "");
    const start = range ? Number(range[1]) : 0;
    const end = range?.[2] ? Math.min(Number(range[2]), file.length - 1) : file.length - 1;
    if (start >= file.length) {
      response.writeHead(416, { "Content-Range": `bytes */${file.length}` }).end();
      return;
    }
    response.writeHead(range ? 206 : 200, {
      "Accept-Ranges": "bytes",
      "Content-Length": end - start + 1,
      ...(range ? { "Content-Range": `bytes ${start}-${end}/${file.length}` } : {}),
    });
    bytesServed += end - start + 1;
    response.end(file.subarray(start, end + 1));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const args = ffmpegArguments().map((arg) =>
    arg === "pipe" ? "http,tcp" : arg === "pipe:0" ? `http://127.0.0.1:${port}/${token}` : arg,
  );
  try {
    const bytes = await new Promise<number>((resolve, reject) => {
      const child = spawn("ffmpeg", args, { stdio: ["ignore", "pipe", "pipe"] });
      let received = 0;
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => (received += chunk.length));
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      child.on("error", reject);
      child.on("close", (code) => (code === 0 ? resolve(received) : reject(new Error(stderr))));
    });
    return { seconds: bytes / 2 / PCM_SAMPLE_RATE, requests, bytesServed };
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

/**
 * Wall time, and the longest the event loop went without a turn meanwhile (what else this process could not do:
 * answer the bus, notice a cancel), from a 1 ms interval's largest gap.
 */
async function timed<T>(run: () => Promise<T>): Promise<{ ms: number; stallMs: number; result: T }> {
  let last = performance.now();
  let longest = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  await new Promise((resolve) => setTimeout(resolve, 5));
  const started = performance.now();
  try {
    const result = await run();
    const ms = performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 5));
    return { ms, stallMs: longest, result };
  } finally {
    clearInterval(ticker);
  }
}

// ---------------------------------------------------------------------------------------------------------------

progress(
  `${cpus().length} cores, load average ${loadavg()[0]!.toFixed(2)}; ${seconds} s of audio, ${runs} runs`,
);
progress("synthesizing and encoding the input (ffmpeg over pipes) ...");
const wav = speechLikeWav(seconds);
const adts = await ffmpegPipe(wav, ["-c:a", "aac", "-b:a", "128k", "-f", "adts"]);
const mp3 = await ffmpegPipe(wav, ["-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"]);
const perCopy = muxM4a(adts, { layout: "faststart", framesPerChunk: M4A_CHUNK }).length;
const repeat = Math.max(1, Math.round((largeMb * 1e6) / perCopy));
const largeEnd = muxM4a(adts, { layout: "moov-at-end", repeat, framesPerChunk: M4A_CHUNK });
const largeFast = muxM4a(adts, { layout: "faststart", repeat, framesPerChunk: M4A_CHUNK });
const smallEnd = muxM4a(adts, { layout: "moov-at-end", framesPerChunk: M4A_CHUNK });
const inputs: Array<{ name: string; file: Buffer; runs?: number }> = [
  { name: "MP3 (LAME 128 kb/s stereo)", file: mp3 },
  {
    name: "Opus in Ogg (48 kb/s)",
    file: await ffmpegPipe(wav, ["-c:a", "libopus", "-b:a", "48k", "-f", "ogg"]),
  },
  {
    name: "Opus in WebM (48 kb/s)",
    file: await ffmpegPipe(wav, ["-c:a", "libopus", "-b:a", "48k", "-f", "webm"]),
  },
  {
    name: "AAC in M4A, faststart (128 kb/s)",
    file: muxM4a(adts, { layout: "faststart", framesPerChunk: M4A_CHUNK }),
  },
  {
    name: "AAC in M4A, moov at the end",
    file: muxM4a(adts, { layout: "moov-at-end", framesPerChunk: M4A_CHUNK }),
  },
  { name: "FLAC", file: await ffmpegPipe(wav, ["-c:a", "flac", "-f", "flac"]) },
  { name: "WAV (48 kHz stereo)", file: wav },
  // What a decode costs whatever its length: for ffmpeg, starting a process and its libraries.
  { name: "WAV, 0.1 s (the fixed cost)", file: speechLikeWav(0.1) },
  // The upload limit's worth: the same audio over and over.
  {
    name: `MP3, ${largeMb} MB (the above ${Math.round((largeMb * 1e6) / mp3.length)} times)`,
    file: Buffer.concat(Array.from({ length: Math.round((largeMb * 1e6) / mp3.length) }, () => mp3)),
    runs: Math.min(runs, 3),
  },
  { name: `AAC in M4A, faststart, ${largeMb} MB`, file: largeFast, runs: Math.min(runs, 3) },
];

const decoders: Array<{ name: string; decode: Decoder }> = [{ name: "ffmpeg (pipes)", decode: native }];
let wasmInitMs: number | null = null;
if (wasmDir) {
  progress(`loading @ffmpeg/core and audio-decode from ${wasmDir} ...`);
  const wasm = await loadFfmpegWasm(wasmDir);
  wasmInitMs = wasm.initMs;
  decoders.push({ name: "ffmpeg.wasm (@ffmpeg/core 0.12.10)", decode: wasm.decoder });
  decoders.push({ name: "audio-decode 3.12 + resample", decode: await loadAudioDecode(wasmDir) });
}

interface Row {
  input: string;
  bytes: number;
  decoder: string;
  ms: number;
  realTime: number;
  stallMs: number;
  seconds: number;
  vsFfmpeg: number;
  error?: string;
}
const rows: Row[] = [];
for (const { name, file, runs: inputRuns = runs } of inputs) {
  progress(`${name}: ${(file.length / 1e6).toFixed(2)} MB`);
  const times = new Map<string, { ms: number[]; stall: number[]; seconds: number; error?: string }>();
  for (let run = -1; run < inputRuns; run++) {
    for (const decoder of decoders) {
      const entry = times.get(decoder.name) ?? { ms: [], stall: [], seconds: Number.NaN };
      times.set(decoder.name, entry);
      if (entry.error) continue;
      try {
        const { ms, stallMs, result } = await timed(() => decoder.decode(file));
        entry.seconds = result.seconds;
        // Run -1 warms up (JIT, WebAssembly compilation, page cache for ffmpeg's libraries).
        if (run >= 0) {
          entry.ms.push(ms);
          entry.stall.push(stallMs);
        }
      } catch (error) {
        entry.error = (error as Error).message.split("\n")[0];
      }
    }
  }
  const reference = median(times.get("ffmpeg (pipes)")!.ms);
  for (const [decoder, entry] of times) {
    const ms = entry.error ? Number.NaN : median(entry.ms);
    rows.push({
      input: name,
      bytes: file.length,
      decoder,
      ms,
      realTime: entry.seconds / (ms / 1000),
      stallMs: entry.error ? Number.NaN : median(entry.stall),
      seconds: entry.seconds,
      vsFfmpeg: ms / reference,
      ...(entry.error ? { error: entry.error } : {}),
    });
  }
}

// The moov at the end of a large file: moved in memory, or read by ffmpeg over loopback HTTP with Range.
progress(`moov at the end, ${largeMb} MB ...`);
const moov: Array<{ case: string; ms: number; seconds: number; requests?: number; bytesServed?: number }> =
  [];
for (const [label, file] of [
  [`${seconds} s, ${(smallEnd.length / 1e6).toFixed(1)} MB`, smallEnd],
  [`${Math.round(repeat * seconds)} s, ${(largeEnd.length / 1e6).toFixed(1)} MB`, largeEnd],
] as const) {
  const moveMs: number[] = [];
  const pipeMs: number[] = [];
  const httpMs: number[] = [];
  let pipeSeconds = 0;
  let http = { seconds: 0, requests: 0, bytesServed: 0 };
  for (let run = -1; run < Math.min(runs, 3); run++) {
    const moved = performance.now();
    prepareMp4(file);
    const movedMs = performance.now() - moved;
    const viaPipe = await timed(() => decodeAudio(file, { maxSeconds: 24 * 3600 }));
    const viaHttp = await timed(() => decodeOverHttp(file));
    if (run < 0) continue;
    moveMs.push(movedMs);
    pipeMs.push(viaPipe.ms);
    httpMs.push(viaHttp.ms);
    pipeSeconds = viaPipe.result.seconds;
    http = viaHttp.result;
  }
  moov.push({
    case: `${label}: moving moov in memory (prepareMp4 alone)`,
    ms: median(moveMs),
    seconds: Number.NaN,
  });
  moov.push({ case: `${label}: decodeAudio (move + pipes)`, ms: median(pipeMs), seconds: pipeSeconds });
  moov.push({
    case: `${label}: ffmpeg over loopback HTTP with Range`,
    ms: median(httpMs),
    seconds: http.seconds,
    requests: http.requests,
    bytesServed: http.bytesServed,
  });
}

// ---------------------------------------------------------------------------------------------------------------

const format = (value: number, digits = 0): string => (Number.isFinite(value) ? value.toFixed(digits) : "—");
console.log(
  `\nDecoding ${seconds} s of speech-like audio to 16 kHz mono s16le, median of ${runs} runs (${Math.min(runs, 3)} for the ${largeMb} MB files), after one warm-up`,
);
console.log(`${cpus().length} cores (${cpus()[0]?.model ?? "?"}), load average ${loadavg()[0]!.toFixed(2)}`);
if (wasmInitMs !== null)
  console.log(`ffmpeg.wasm start-up (once per process, not in the figures): ${wasmInitMs.toFixed(0)} ms`);
console.log(
  "\n| input | decoder | ms | × real time | ÷ ffmpeg (time) | longest event-loop stall ms | decoded s |",
);
console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
for (const row of rows) {
  console.log(
    `| ${row.input} | ${row.decoder} | ${row.error ? `failed: ${row.error}` : format(row.ms)} | ${format(row.realTime)}× | ${format(row.vsFfmpeg, 2)} | ${format(row.stallMs)} | ${format(row.seconds, 3)} |`,
  );
}
console.log(
  `\nMP4 with moov at the end (${Math.min(runs, 3)} runs; the same with faststart is in the table above)`,
);
console.log("\n| moov at the end | ms | decoded s | HTTP requests | bytes served |");
console.log("| --- | ---: | ---: | ---: | ---: |");
for (const row of moov) {
  console.log(
    `| ${row.case} | ${format(row.ms, 1)} | ${format(row.seconds, 3)} | ${row.requests ?? ""} | ${row.bytesServed ?? ""} |`,
  );
}
console.log(JSON.stringify({ seconds, runs, wasmInitMs, rows, moov }));
