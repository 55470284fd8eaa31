// The generated whisper.cpp file, read back the way whisper_model_load reads it, then loaded and run with the real
// bindings (@fugood/whisper.node). Always pass `maxThreads`: the binding defaults to up to 8 threads.
import { mkdtemp, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import {
  buildTinyWhisperGgml,
  tinyWhisperPresets,
  tinyWhisperScript,
  writeTinyWhisperModel,
  type TinyWhisperOptions,
} from "../src/index.js";

// The package names a lib/index.d.ts it does not ship; what these tests use of it, from its sources (1.1.3).
interface Segment {
  text: string;
  t0: number;
  t1: number;
}
interface TranscribeResult {
  result: string;
  language?: string;
  segments: Segment[];
  isAborted: boolean;
}
interface TranscribeOptions {
  language?: string;
  translate?: boolean;
  maxThreads?: number;
  maxLen?: number;
  tokenTimestamps?: boolean;
  prompt?: string;
}
interface WhisperContext {
  transcribeData(
    audio: ArrayBuffer,
    options?: TranscribeOptions,
  ): { stop: () => Promise<void>; promise: Promise<TranscribeResult> };
  release(): Promise<void>;
}
const require = createRequire(import.meta.url);
const { initWhisper } = require("@fugood/whisper.node") as {
  initWhisper: (options: { filePath: string; useGpu?: boolean }) => Promise<WhisperContext>;
};

const SAMPLE_RATE = 16_000;

/** `seconds` of a 440 Hz sine as 16 kHz mono s16le PCM. */
function tone(seconds: number): ArrayBuffer {
  const samples = Math.round(seconds * SAMPLE_RATE);
  const pcm = new DataView(new ArrayBuffer(2 * samples));
  for (let i = 0; i < samples; i++) {
    pcm.setInt16(2 * i, Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / SAMPLE_RATE)), true);
  }
  return pcm.buffer;
}

/** A minimal reader of the layout whisper_model_load expects; throws where whisper.cpp would refuse. */
function readGgml(file: Buffer) {
  let offset = 0;
  const i32 = (): number => {
    const value = file.readInt32LE(offset);
    offset += 4;
    return value;
  };
  const bytes = (n: number): Buffer => {
    if (offset + n > file.length) throw new Error(`read past the end at ${offset}`);
    const slice = file.subarray(offset, offset + n);
    offset += n;
    return slice;
  };
  const magic = file.readUInt32LE(0);
  offset = 4;
  const names = [
    "nVocab",
    "nAudioCtx",
    "nAudioState",
    "nAudioHead",
    "nAudioLayer",
    "nTextCtx",
    "nTextState",
    "nTextHead",
    "nTextLayer",
    "nMels",
    "ftype",
  ] as const;
  const hparams = Object.fromEntries(names.map((name) => [name, i32()])) as Record<
    (typeof names)[number],
    number
  >;
  const filters = { nMel: i32(), nFft: i32(), data: new Float32Array(0) };
  const raw = bytes(4 * filters.nMel * filters.nFft);
  filters.data = new Float32Array(filters.nMel * filters.nFft).map((_, i) => raw.readFloatLE(4 * i));
  const vocabulary: string[] = [];
  for (let i = 0, n = i32(); i < n; i++) vocabulary.push(bytes(i32()).toString("latin1"));
  const tensors = new Map<string, { dims: number[]; type: number; data: Buffer }>();
  while (offset < file.length) {
    const nDims = i32();
    const nameLength = i32();
    const type = i32();
    const dims = Array.from({ length: nDims }, i32);
    const name = bytes(nameLength).toString("utf8");
    if (tensors.has(name)) throw new Error(`tensor ${name} twice`);
    const elements = dims.reduce((a, b) => a * b, 1);
    tensors.set(name, { dims, type, data: bytes(elements * (type === 1 ? 2 : 4)) });
  }
  return { magic, hparams, filters, vocabulary, tensors };
}

const dir = await mkdtemp(join(tmpdir(), "tiny-whisper-"));
t.teardown(() => rm(dir, { recursive: true, force: true }));

void t.test("same options give identical bytes, another seed differs", async (t) => {
  const started = performance.now();
  const a = buildTinyWhisperGgml({ seed: 7 });
  t.comment(`built ${a.length} bytes in ${(performance.now() - started).toFixed(0)} ms`);
  t.ok(a.equals(buildTinyWhisperGgml({ seed: 7 })));
  t.notOk(a.equals(buildTinyWhisperGgml({ seed: 8 })));
  t.ok(buildTinyWhisperGgml().equals(buildTinyWhisperGgml({ seed: 1 })), "seed defaults to 1");
  t.ok(a.length < 4.5e6, `${a.length} bytes`);
});

void t.test("the layout whisper_model_load reads", async (t) => {
  const file = readGgml(buildTinyWhisperGgml({ audioLayers: 2, textLayers: 3 }));
  t.equal(file.magic, 0x67676d6c, "'ggml'");
  t.same(file.hparams, {
    nVocab: 51865,
    nAudioCtx: 50,
    nAudioState: 32,
    nAudioHead: 2,
    nAudioLayer: 2,
    nTextCtx: 72,
    nTextState: 32,
    nTextHead: 2,
    nTextLayer: 3,
    nMels: 80,
    ftype: 1,
  });

  t.equal(file.filters.nMel, 80);
  t.equal(file.filters.nFft, 201);
  t.ok(
    file.filters.data.every((w) => w >= 0),
    "mel weights are non-negative",
  );
  for (const m of [0, 40, 79]) {
    const row = file.filters.data.subarray(m * 201, (m + 1) * 201);
    t.ok(
      row.some((w) => w > 0),
      `mel filter ${m} is not empty`,
    );
  }
  // librosa.filters.mel(sr=16000, n_fft=400, n_mels=80), as numpy computes it.
  const filter = (m: number, k: number) => file.filters.data[m * 201 + k] as number;
  t.ok(Math.abs(filter(0, 1) - 0.024862595) < 1e-8, `filter 0 at 40 Hz: ${filter(0, 1)}`);
  t.ok(Math.abs(filter(10, 10) - 0.019908218) < 1e-8, `filter 10 at 400 Hz: ${filter(10, 10)}`);
  t.ok(Math.abs(filter(79, 190) - 0.002232055) < 1e-8, `filter 79 at 7600 Hz: ${filter(79, 190)}`);

  // Text tokens only: whisper.cpp names <|endoftext|> (50257 in a multilingual model) and the rest itself.
  t.equal(file.vocabulary.length, 50257);
  t.equal(new Set(file.vocabulary).size, 50257, "no piece twice");
  t.equal(file.vocabulary[32], " ", "the single space suppress_blank looks up");
  for (const piece of tinyWhisperScript().tokens)
    t.ok(file.vocabulary.includes(piece), JSON.stringify(piece));

  // whisper.cpp counts 7 + 15 per encoder block + 4 + 24 per decoder block and refuses a file missing any.
  t.equal(file.tensors.size, 7 + 15 * 2 + 4 + 24 * 3);
  const te = file.tensors.get("decoder.token_embedding.weight");
  t.same(te?.dims, [32, 51865]);
  t.equal(te?.type, 1, "f16");
  t.same(file.tensors.get("encoder.conv1.weight")?.dims, [3, 80, 32]);
  t.equal(file.tensors.get("encoder.conv1.weight")?.type, 1, "convolutions in f16");
  t.same(file.tensors.get("encoder.conv1.bias")?.dims, [1, 32]);
  t.equal(file.tensors.get("encoder.conv1.bias")?.type, 0, "biases in f32");
  t.same(file.tensors.get("encoder.positional_embedding")?.dims, [32, 50]);
  t.same(file.tensors.get("decoder.positional_embedding")?.dims, [32, 72]);
  t.equal(file.tensors.get("decoder.blocks.2.cross_attn.out.weight")?.type, 1);
  // Unused tokens carry a logit bias of −20 in dimension 0: f16 0xcd00.
  t.equal(te?.data.readUInt16LE(0), 0xcd00);

  const english = readGgml(buildTinyWhisperGgml({ multilingual: false }));
  t.equal(english.hparams.nVocab, 51864);
  t.equal(english.vocabulary.length, 50256);
});

void t.test("options whisper.cpp could not run are refused", async (t) => {
  const refused: Array<[TinyWhisperOptions, RegExp]> = [
    [{ textLayers: 2 }, /distilled/],
    [{ audioContext: 52 }, /multiple of 5/],
    [{ audioContext: 155 }, /up to 150/],
    [{ textContext: 71 }, /at least 72/],
    [{ audioContext: 100 }, /state must be at least 44/],
    [{ heads: 3 }, /divide/],
    [{ seed: 1.5 }, /integer/],
  ];
  for (const [options, message] of refused) t.throws(() => buildTinyWhisperGgml(options), message);
  t.doesNotThrow(() => buildTinyWhisperGgml({ audioContext: 100, state: 48, heads: 4 }));
});

void t.test("writeTinyWhisperModel leaves an identical file alone", async (t) => {
  const path = join(dir, "nested", "w.bin");
  const first = await writeTinyWhisperModel(path, { seed: 3 });
  t.ok(first.written);
  t.equal((await stat(path)).size, first.bytes);
  t.match(first.sha256, /^[0-9a-f]{64}$/);
  const old = new Date("2001-01-01T00:00:00Z");
  await utimes(path, old, old);
  const again = await writeTinyWhisperModel(path, { seed: 3 });
  t.notOk(again.written);
  t.equal(again.sha256, first.sha256);
  t.equal((await stat(path)).mtime.getTime(), old.getTime(), "mtime untouched");
  await writeFile(path, "stale");
  t.ok((await writeTinyWhisperModel(path, { seed: 3 })).written, "a different file is replaced");
  t.ok((await readFile(path)).equals(buildTinyWhisperGgml({ seed: 3 })));
});

void t.test("whisper.cpp transcribes with it", async (t) => {
  const preset = tinyWhisperPresets["tiny-whisper"];
  const model = await writeTinyWhisperModel(join(dir, "tiny-whisper.bin"), preset);
  const script = tinyWhisperScript(preset);
  t.same(script.tokens, [" tiny", " whis", "per", " hears", " a", " sound", " and", " writes", " it", "."]);
  t.equal(script.windowSeconds, 1);

  const context = await initWhisper({ filePath: model.path, useGpu: false });
  t.teardown(() => context.release());
  const transcribe = (seconds: number, options: TranscribeOptions) =>
    context.transcribeData(tone(seconds), { maxThreads: 1, ...options }).promise;

  // One token per 100 ms segment, the script again every window. The window that reaches the end of the audio
  // closes at the first timestamp within 100 ms of it, so the last segment ends at 1.9 s.
  const expected = Array.from({ length: 19 }, (_, i) => ({
    text: script.tokens[i % script.tokens.length],
    t0: 100 * i,
    t1: 100 * (i + 1),
  }));

  const plain = await transcribe(2, { language: "en" });
  t.equal(plain.language, "en");
  t.equal(plain.isAborted, false);
  t.same(plain.segments, expected);
  t.equal(plain.result, expected.map((s) => s.text).join(""));
  t.equal(plain.result, ` ${script.text.trim()} tiny whisper hears a sound and writes it`);
  for (const { t0, t1 } of plain.segments) t.ok(0 <= t0 && t0 < t1 && t1 <= 2000, `${t0}-${t1} ms`);

  const detected = await transcribe(2, { language: "auto" });
  t.equal(detected.language, "en", "detection picks English");
  t.same(detected.segments, expected);

  const translated = await transcribe(2, { language: "de", translate: true });
  t.equal(translated.language, "de");
  t.same(translated.segments, expected);

  const prompted = await transcribe(2, {
    language: "en",
    prompt: "Grüße aus Zürich 😀, the previous words.",
  });
  t.same(prompted.segments, expected, "a prompt tokenizes (bytes at worst) and conditions without harm");

  // Audio shorter than a window, and not a multiple of 100 ms: 0.70 s is the first timestamp within 100 ms of the end.
  const short = await transcribe(0.73, { language: "en" });
  t.same(short.segments, expected.slice(0, 7));

  // Every token its own segment: what the audio-worker joins into words (a leading space starts a word). Each
  // window's first segment carries only <|0.00|> and has no text.
  const tokens = await transcribe(2.37, { language: "en", tokenTimestamps: true, maxLen: 1 });
  const texts = tokens.segments.map((s) => s.text);
  t.same(texts.slice(0, 12), ["", ...script.tokens, ""]);
  t.equal(texts.length, 26);
  let previousEnd = 0;
  for (const { text, t0, t1 } of tokens.segments) {
    t.ok(text === "" || script.tokens.includes(text), JSON.stringify(text));
    t.ok(previousEnd <= t0 && t0 <= t1 && t1 <= 2370, `${JSON.stringify(text)} ${t0}-${t1} ms`);
    previousEnd = t1;
  }
  const words: string[] = [];
  for (const text of texts) {
    if (/^\s/.test(text) || words.length === 0) words.push(text.trim());
    else words[words.length - 1] += text;
  }
  t.same(words.filter(Boolean), [
    ..."tiny whisper hears a sound and writes it.".split(" "),
    ..."tiny whisper hears a sound and writes it.".split(" "),
    "tiny",
    "whisper",
  ]);
});

void t.test("an English-only variant ignores the language", async (t) => {
  const model = await writeTinyWhisperModel(join(dir, "tiny-whisper-en.bin"), {
    multilingual: false,
    seed: 2,
  });
  const context = await initWhisper({ filePath: model.path, useGpu: false });
  t.teardown(() => context.release());
  const result = await context.transcribeData(tone(1), { maxThreads: 1, language: "de", translate: true })
    .promise;
  t.equal(result.language, "en");
  t.equal(result.result, tinyWhisperScript().tokens.slice(0, 9).join(""));
});
