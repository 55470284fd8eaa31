// A whisper.cpp model in the legacy ggml format (the `ggml-*.bin` files), small enough to generate on the fly.
// Layout reference: `whisper_model_load` in whisper.cpp's src/whisper.cpp (as vendored by @fugood/whisper.node).
//
// Random weights alone decode garbage: whisper.cpp then falls back through six temperatures per window, emits
// timestamps anywhere in 0-30 s and stops only at the token limit. So the decoder is wired by hand into a
// lookup table that, whatever the audio, writes one fixed line per window and ends the window cleanly:
//
//   <|0.00|> w1 <|0.10|><|0.10|> w2 <|0.20|><|0.20|> … wK <|K/10|><|K/10|> <|endoftext|>
//
// one text token per 100 ms segment. A window is `audioContext` encoder frames (20 ms each), so K is
// `audioContext / 5`. When the audio ends inside a window, whisper.cpp closes it at the first timestamp within
// 100 ms of the end, which with 100 ms steps is never past it: every segment lies inside the audio, and the last
// 100 ms at most get none.
// The encoder, the attention layers and the unused vocabulary stay random (seeded); attention only writes into
// the residual stream at a small scale, so it cannot change a decision.
import { mulberry32, positiveInteger, writeModelFile, type WriteTinyModelResult } from "./common.js";

export interface TinyWhisperOptions {
  /** Seeds the weight PRNG; identical options always produce byte-identical files. Default 1. */
  readonly seed?: number;
  /** The file's name in presets and the CLI (`<name>.bin`). The ggml format has no metadata, so it is not stored. */
  readonly name?: string;
  /**
   * 51865 tokens with language and task tokens (like ggml-tiny.bin), or 51864 without (like ggml-tiny.en.bin),
   * where whisper.cpp ignores `language` and `translate`. Default true.
   */
  readonly multilingual?: boolean;
  /**
   * `n_audio_ctx`: encoder frames per window, 20 ms each, a multiple of 5 up to 150. Default 50 (1 s windows,
   * 10 text tokens each). Real models have 1500 (30 s).
   */
  readonly audioContext?: number;
  /**
   * `n_text_ctx`: whisper.cpp decodes at most `textContext / 2 - 4` tokens per window and keeps up to
   * `textContext / 2` tokens of the previous windows as context (which costs time: every prompt token's logits are
   * computed). At least, and by default, `6 * audioContext / 5 + 12`: 72 for 1 s windows.
   */
  readonly textContext?: number;
  /** `n_audio_state` = `n_text_state`. At least `2 * audioContext / 5 + 4`. Default 32. */
  readonly state?: number;
  /** Attention heads, encoder and decoder; must divide `state`. Default 2. */
  readonly heads?: number;
  /** Encoder blocks. Default 1. */
  readonly audioLayers?: number;
  /** Decoder blocks; not 2, which whisper.cpp takes for a distilled model and forces to no timestamps. Default 1. */
  readonly textLayers?: number;
}

export const tinyWhisperPresets = {
  /** 3.9 MB; ~30 decoded tokens per second of audio. */
  "tiny-whisper": { name: "tiny-whisper" },
} as const satisfies Record<string, TinyWhisperOptions>;

export type TinyWhisperPresetName = keyof typeof tinyWhisperPresets;

/** What a model with these options transcribes, whatever the audio. */
export interface TinyWhisperScript {
  /** The text tokens of every window, in order; those starting with a space start a word. */
  readonly tokens: readonly string[];
  /** The text of one window: the tokens joined. */
  readonly text: string;
  /** A window's length: `audioContext` × 20 ms. */
  readonly windowSeconds: number;
  /** Each token is a segment of its own this long; the last ≤ 100 ms of the audio get no segment. */
  readonly segmentSeconds: number;
}

/** Text tokens the model writes, one per 100 ms, in order; ".", "," and "!" are the single-byte tokens. */
const SCRIPT = [
  " tiny",
  " whis",
  "per",
  " hears",
  " a",
  " sound",
  " and",
  " writes",
  " it",
  ".",
  " every",
  " second",
  " brings",
  " the",
  " same",
  " short",
  " line",
  ",",
  " which",
  " keeps",
  " tests",
  " easy",
  " enough",
  " when",
  " real",
  " speech",
  " needs",
  " bigger",
  " models",
  "!",
] as const;

const GGML_FILE_MAGIC = 0x67676d6c;
/** `GGML_FTYPE_MOSTLY_F16`: matrices in f16, vectors, biases and positional embeddings in f32. */
const FTYPE_MOSTLY_F16 = 1;
const GGML_TYPE_F32 = 0;
const GGML_TYPE_F16 = 1;

const SAMPLE_RATE = 16_000;
const N_FFT = 400;
const N_MELS = 80;
/** Timestamp tokens between two segments: 5 × 20 ms. */
const SEGMENT_STEP = 5;
const SEGMENT_SECONDS = SEGMENT_STEP * 0.02;

/** Scales of the hand-wired decoder (see wireDecoder). */
const LOGIT_SCALE = 3;
const UNUSED_TOKEN_BIAS = -20;
const ENGLISH_BIAS = 5;

/** IEEE 754 binary16 bits of `value`, rounded to nearest even (what numpy's astype(float16) writes). */
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);
function float16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa === 0 ? 0 : 0x200);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const shift = 14 - e;
    const full = mantissa | 0x800000;
    let half = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

/**
 * librosa.filters.mel(sr=16000, n_fft=400, n_mels=80) (Slaney scale and normalisation), the filter bank
 * OpenAI's whisper and every ggml whisper file carry: [80][201] row-major.
 */
function melFilters(): Float32Array {
  const nBins = N_FFT / 2 + 1;
  const fSp = 200 / 3;
  const minLogHz = 1000;
  const minLogMel = minLogHz / fSp;
  const logStep = Math.log(6.4) / 27;
  const hzToMel = (hz: number) => (hz < minLogHz ? hz / fSp : minLogMel + Math.log(hz / minLogHz) / logStep);
  const melToHz = (mel: number) =>
    mel < minLogMel ? mel * fSp : minLogHz * Math.exp(logStep * (mel - minLogMel));
  const maxMel = hzToMel(SAMPLE_RATE / 2);
  const edges = Array.from({ length: N_MELS + 2 }, (_, i) => melToHz((maxMel * i) / (N_MELS + 1)));
  const filters = new Float32Array(N_MELS * nBins);
  for (let m = 0; m < N_MELS; m++) {
    const [lo, mid, hi] = [edges[m] as number, edges[m + 1] as number, edges[m + 2] as number];
    const norm = 2 / (hi - lo);
    for (let k = 0; k < nBins; k++) {
      const hz = (k * SAMPLE_RATE) / N_FFT;
      const weight = Math.max(0, Math.min((hz - lo) / (mid - lo), (hi - hz) / (hi - mid)));
      filters[m * nBins + k] = weight * norm;
    }
  }
  return filters;
}

/** Consonant-vowel syllables (and the same with a leading space), the filler of the vocabulary. */
function* fillerPieces(): Generator<string> {
  const syllables: string[] = [];
  for (const c of "bdfgklmnprstvz") for (const v of "aeiou") syllables.push(c + v);
  let level = [""];
  for (;;) {
    const next: string[] = [];
    for (const prefix of level) {
      for (const syllable of syllables) {
        const piece = prefix + syllable;
        next.push(piece);
        yield piece;
        yield ` ${piece}`;
      }
    }
    level = next;
  }
}

/**
 * The text tokens, ids 0 to <|endoftext|> − 1: the 256 single bytes (so any prompt tokenizes), then the script,
 * then syllables. whisper.cpp names the special tokens after them itself.
 */
function textVocabulary(count: number): Buffer[] {
  const tokens: Buffer[] = [];
  const seen = new Set<string>();
  const add = (piece: Buffer): void => {
    const key = piece.toString("latin1");
    if (seen.has(key) || tokens.length >= count) return;
    seen.add(key);
    tokens.push(piece);
  };
  for (let b = 0; b < 256; b++) add(Buffer.from([b]));
  for (const piece of SCRIPT) add(Buffer.from(piece, "utf8"));
  for (const piece of fillerPieces()) {
    if (tokens.length >= count) break;
    add(Buffer.from(piece, "utf8"));
  }
  return tokens;
}

interface Resolved {
  readonly seed: number;
  readonly multilingual: boolean;
  readonly audioContext: number;
  readonly textContext: number;
  readonly state: number;
  readonly heads: number;
  readonly audioLayers: number;
  readonly textLayers: number;
  /** Segments (text tokens) per window. */
  readonly segments: number;
}

function resolve(options: TinyWhisperOptions): Resolved {
  const seed = options.seed ?? 1;
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  const audioContext = positiveInteger("audioContext", options.audioContext ?? 50);
  const segments = audioContext / SEGMENT_STEP;
  if (!Number.isInteger(segments) || segments > SCRIPT.length) {
    throw new RangeError(
      `audioContext must be a multiple of ${SEGMENT_STEP} up to ${SEGMENT_STEP * SCRIPT.length}, got ${audioContext}`,
    );
  }
  // <|0.00|>, three tokens per segment and <|endoftext|> must fit in textContext / 2 - 4 decoded tokens.
  const minTextContext = 2 * (3 * segments + 2 + 4);
  const textContext = positiveInteger("textContext", options.textContext ?? minTextContext);
  if (textContext < minTextContext) {
    throw new RangeError(`textContext must be at least ${minTextContext} for audioContext ${audioContext}`);
  }
  const minState = 2 * segments + 4;
  const state = positiveInteger("state", options.state ?? 32);
  if (state < minState)
    throw new RangeError(`state must be at least ${minState} for audioContext ${audioContext}`);
  const heads = positiveInteger("heads", options.heads ?? 2);
  if (state % heads !== 0) throw new RangeError(`heads ${heads} does not divide state ${state}`);
  const audioLayers = positiveInteger("audioLayers", options.audioLayers ?? 1);
  const textLayers = positiveInteger("textLayers", options.textLayers ?? 1);
  if (textLayers === 2) {
    throw new RangeError(
      "textLayers must not be 2: whisper.cpp takes that for a distilled model (no timestamps)",
    );
  }
  return {
    seed,
    multilingual: options.multilingual ?? true,
    audioContext,
    textContext,
    state,
    heads,
    audioLayers,
    textLayers,
    segments,
  };
}

/** The text every window of a model built with `options` transcribes to. */
export function tinyWhisperScript(options: TinyWhisperOptions = {}): TinyWhisperScript {
  const { audioContext, segments } = resolve(options);
  const tokens = SCRIPT.slice(0, segments);
  return {
    tokens,
    text: tokens.join(""),
    windowSeconds: Math.round(audioContext * 20) / 1000,
    segmentSeconds: SEGMENT_SECONDS,
  };
}

interface Tensor {
  readonly name: string;
  /** ggml order: dims[0] is the contiguous dimension. */
  readonly dims: readonly number[];
  readonly type: typeof GGML_TYPE_F32 | typeof GGML_TYPE_F16;
  readonly data: Float32Array;
}

/** Token ids whisper.cpp hard-codes (whisper_vocab), shifted by one in multilingual models. */
function specialTokens(multilingual: boolean) {
  const m = multilingual ? 1 : 0;
  const eot = 50256 + m;
  const translate = 50357 + m;
  return {
    nVocab: 51864 + m,
    eot,
    sot: eot + 1,
    translate,
    transcribe: translate + 1,
    beg: translate + 6,
  };
}

/** A complete whisper.cpp ggml file, f16 matrices and f32 vectors, about 3.9 MB at the default sizes. */
export function buildTinyWhisperGgml(options: TinyWhisperOptions = {}): Buffer {
  const o = resolve(options);
  const special = specialTokens(o.multilingual);
  const D = o.state;
  const random = mulberry32(o.seed);
  const uniform = (n: number, amplitude: number): Float32Array => {
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = (random() * 2 - 1) * amplitude;
    return data;
  };
  const tensors: Tensor[] = [];
  const f32 = (name: string, dims: readonly number[], data: Float32Array): void => {
    tensors.push({ name, dims, type: GGML_TYPE_F32, data });
  };
  const f16 = (name: string, dims: readonly number[], data: Float32Array): void => {
    tensors.push({ name, dims, type: GGML_TYPE_F16, data });
  };
  const ones = (n: number) => new Float32Array(n).fill(1);
  const zeros = (n: number) => new Float32Array(n);
  // [nIn, nOut] with variance 1 / nIn.
  const linear = (nIn: number, nOut: number) => uniform(nIn * nOut, Math.sqrt(3 / nIn));

  // Encoder: random, only ever read through the (quiet) cross-attention.
  const sinusoids = new Float32Array(D * o.audioContext);
  const half = D / 2;
  for (let t = 0; t < o.audioContext; t++) {
    for (let i = 0; i < half; i++) {
      const angle = t * Math.exp((-Math.log(10000) * i) / Math.max(1, half - 1));
      sinusoids[t * D + i] = Math.sin(angle);
      sinusoids[t * D + half + i] = Math.cos(angle);
    }
  }
  f32("encoder.positional_embedding", [D, o.audioContext], sinusoids);
  f16("encoder.conv1.weight", [3, N_MELS, D], uniform(3 * N_MELS * D, Math.sqrt(3 / (3 * N_MELS))));
  f32("encoder.conv1.bias", [1, D], uniform(D, 0.1));
  f16("encoder.conv2.weight", [3, D, D], uniform(3 * D * D, Math.sqrt(3 / (3 * D))));
  f32("encoder.conv2.bias", [1, D], uniform(D, 0.1));
  for (let l = 0; l < o.audioLayers; l++) {
    const p = `encoder.blocks.${l}`;
    f32(`${p}.attn_ln.weight`, [D], ones(D));
    f32(`${p}.attn_ln.bias`, [D], zeros(D));
    f16(`${p}.attn.query.weight`, [D, D], linear(D, D));
    f32(`${p}.attn.query.bias`, [D], uniform(D, 0.1));
    f16(`${p}.attn.key.weight`, [D, D], linear(D, D));
    f16(`${p}.attn.value.weight`, [D, D], linear(D, D));
    f32(`${p}.attn.value.bias`, [D], uniform(D, 0.1));
    f16(`${p}.attn.out.weight`, [D, D], linear(D, D));
    f32(`${p}.attn.out.bias`, [D], uniform(D, 0.1));
    f32(`${p}.mlp_ln.weight`, [D], ones(D));
    f32(`${p}.mlp_ln.bias`, [D], zeros(D));
    f16(`${p}.mlp.0.weight`, [D, 4 * D], linear(D, 4 * D));
    f32(`${p}.mlp.0.bias`, [4 * D], uniform(4 * D, 0.1));
    f16(`${p}.mlp.2.weight`, [4 * D, D], linear(4 * D, D));
    f32(`${p}.mlp.2.bias`, [D], uniform(D, 0.1));
  }
  f32("encoder.ln_post.weight", [D], ones(D));
  f32("encoder.ln_post.bias", [D], zeros(D));

  // Decoder.
  const vocabulary = textVocabulary(special.eot);
  const wired = wireDecoder(o, special, vocabulary, uniform);
  f32("decoder.positional_embedding", [D, o.textContext], uniform(D * o.textContext, 0.02));
  f16("decoder.token_embedding.weight", [D, special.nVocab], wired.embedding);
  const quiet = (nIn: number, nOut: number) => uniform(nIn * nOut, 0.01);
  for (let l = 0; l < o.textLayers; l++) {
    const p = `decoder.blocks.${l}`;
    for (const attn of ["attn", "cross_attn"]) {
      f32(`${p}.${attn}_ln.weight`, [D], ones(D));
      f32(`${p}.${attn}_ln.bias`, [D], zeros(D));
      f16(`${p}.${attn}.query.weight`, [D, D], linear(D, D));
      f32(`${p}.${attn}.query.bias`, [D], zeros(D));
      f16(`${p}.${attn}.key.weight`, [D, D], linear(D, D));
      f16(`${p}.${attn}.value.weight`, [D, D], linear(D, D));
      f32(`${p}.${attn}.value.bias`, [D], zeros(D));
      // Attention only whispers into the residual stream: its output stays far below the decisions' margins.
      f16(`${p}.${attn}.out.weight`, [D, D], quiet(D, D));
      f32(`${p}.${attn}.out.bias`, [D], zeros(D));
    }
    f32(`${p}.mlp_ln.weight`, [D], ones(D));
    f32(`${p}.mlp_ln.bias`, [D], zeros(D));
    if (l === 0) {
      f16(`${p}.mlp.0.weight`, [D, 4 * D], wired.mlp0);
      f32(`${p}.mlp.0.bias`, [4 * D], wired.mlp0Bias);
      f16(`${p}.mlp.2.weight`, [4 * D, D], wired.mlp2);
    } else {
      f16(`${p}.mlp.0.weight`, [D, 4 * D], linear(D, 4 * D));
      f32(`${p}.mlp.0.bias`, [4 * D], new Float32Array(4 * D).fill(-10));
      f16(`${p}.mlp.2.weight`, [4 * D, D], quiet(4 * D, D));
    }
    f32(`${p}.mlp.2.bias`, [D], zeros(D));
  }
  f32("decoder.ln.weight", [D], wired.lnWeight);
  f32("decoder.ln.bias", [D], wired.lnBias);

  return encode(o, special.nVocab, vocabulary, tensors);
}

/**
 * The decoder as a lookup table from the current token to the next, in a residual stream of `state` dimensions:
 *
 * - dimension 0 is a per-token logit bias: the final layer norm writes a constant 1 there (weight 0, bias 1), so
 *   the logit of token j gets embedding[j][0]. Everything the script does not use sits at −20.
 * - one-hot dimensions name the script's tokens: START (<|startoftranscript|> and the task tokens, whichever ends
 *   the prompt), EOT, U(i) for the timestamp <|i × 0.10|>, V(i) for the i-th text token.
 * - the first MLP holds one hidden unit per script token that fires only on that token's embedding and writes
 *   the next token's direction in place of the embedding: START → U(0); U(i) → V(i + 1) + U(i);
 *   U(K) → U(K) + EOT/2; V(i) → U(i). With tied embeddings the logits follow.
 *
 * whisper.cpp's own rules pick between the two directions U(i) carries: after "text <|t|>" only timestamps and
 * <|endoftext|> may follow (so <|t|> repeats, as a segment boundary does), after "<|t|><|t|>" no timestamp may
 * (so the next text token, or <|endoftext|> after the window's last timestamp).
 */
function wireDecoder(
  o: Resolved,
  special: ReturnType<typeof specialTokens>,
  vocabulary: readonly Buffer[],
  uniform: (n: number, amplitude: number) => Float32Array,
) {
  const D = o.state;
  const K = o.segments;
  const BIAS = 0;
  const START = 1;
  const EOT = 2;
  const U = (i: number) => 3 + i;
  const V = (i: number) => 3 + K + i; // i = 1..K
  const scriptIds = SCRIPT.slice(0, K).map((piece) =>
    vocabulary.findIndex((token) => token.equals(Buffer.from(piece, "utf8"))),
  );

  const embedding = uniform(D * special.nVocab, 0.1);
  const row = (token: number, bias: number, hot?: number): void => {
    embedding.fill(0, token * D, (token + 1) * D);
    embedding[token * D + BIAS] = bias;
    if (hot !== undefined) embedding[token * D + hot] = 1;
  };
  for (let token = 0; token < special.nVocab; token++) embedding[token * D + BIAS] = UNUSED_TOKEN_BIAS;
  for (let token = special.eot; token < special.nVocab; token++) row(token, UNUSED_TOKEN_BIAS);
  // Language detection compares the logits after <|startoftranscript|> of the language slots (which, with 99
  // languages, include <|translate|> as "yue"): English wins.
  for (let token = special.sot + 1; token < special.translate; token++)
    row(token, token === special.sot + 1 ? ENGLISH_BIAS : 0);
  for (const token of [special.sot, special.translate, special.transcribe]) row(token, 0, START);
  row(special.eot, 0, EOT);
  for (let i = 0; i <= K; i++) row(special.beg + SEGMENT_STEP * i, 0, U(i));
  scriptIds.forEach((token, i) => row(token, 0, V(i + 1)));

  // Hidden unit n reads only its token's dimension d: after the layer norm a one-hot input is
  // (1 − 1/D) / σ there and −(1/D) / σ elsewhere, σ = sqrt(1/D − 1/D²). Gain and threshold put the unit at +6 on
  // its token and −6 on any other, where GELU is the identity and zero.
  const sigma = Math.sqrt(1 / D - 1 / (D * D));
  const gain = 12 * sigma;
  const threshold = 6 - 12 / D;
  const active = 6; // GELU(6) = 6 · Φ(6) ≈ 6 − 6e-9
  const hidden = 4 * D;
  const mlp0 = uniform(D * hidden, 0.1);
  const mlp0Bias = new Float32Array(hidden).fill(-10);
  const mlp2 = uniform(hidden * D, 0.01);
  const routes: Array<[input: number, target: ReadonlyArray<readonly [dim: number, value: number]>]> = [
    [START, [[U(0), 1]]],
  ];
  for (let i = 0; i < K; i++) {
    routes.push([
      U(i),
      [
        [V(i + 1), 1],
        [U(i), 1],
      ],
    ]);
  }
  routes.push([
    U(K),
    [
      [U(K), 1],
      [EOT, 0.5],
    ],
  ]);
  for (let i = 1; i <= K; i++) routes.push([V(i), [[U(i), 1]]]);
  routes.forEach(([input, target], n) => {
    mlp0.fill(0, n * D, (n + 1) * D);
    mlp0[n * D + input] = gain;
    mlp0Bias[n] = -threshold;
    // The residual stream holds the embedding (one-hot at `input`); replace it by the target.
    const out = new Float32Array(D);
    out[input] = -1;
    for (const [dim, value] of target) out[dim] = (out[dim] as number) + value;
    for (let d = 0; d < D; d++) mlp2[d * hidden + n] = (out[d] as number) / active;
  });

  const lnWeight = new Float32Array(D).fill(LOGIT_SCALE);
  lnWeight[BIAS] = 0;
  const lnBias = new Float32Array(D);
  lnBias[BIAS] = 1;
  return { embedding, mlp0, mlp0Bias, mlp2, lnWeight, lnBias };
}

function encode(
  o: Resolved,
  nVocab: number,
  vocabulary: readonly Buffer[],
  tensors: readonly Tensor[],
): Buffer {
  const filters = melFilters();
  const int32s = (values: readonly number[]): Buffer => {
    const buf = Buffer.alloc(4 * values.length);
    values.forEach((v, i) => buf.writeInt32LE(v, 4 * i));
    return buf;
  };
  const floats = (data: Float32Array): Buffer => {
    const buf = Buffer.alloc(4 * data.length);
    for (let i = 0; i < data.length; i++) buf.writeFloatLE(data[i] as number, 4 * i);
    return buf;
  };
  const halves = (data: Float32Array): Buffer => {
    const buf = Buffer.alloc(2 * data.length);
    for (let i = 0; i < data.length; i++) buf.writeUInt16LE(float16Bits(data[i] as number), 2 * i);
    return buf;
  };

  const chunks: Buffer[] = [
    int32s([
      GGML_FILE_MAGIC,
      nVocab,
      o.audioContext,
      o.state,
      o.heads,
      o.audioLayers,
      o.textContext,
      o.state,
      o.heads,
      o.textLayers,
      N_MELS,
      FTYPE_MOSTLY_F16,
    ]),
    int32s([N_MELS, N_FFT / 2 + 1]),
    floats(filters),
    int32s([vocabulary.length]),
  ];
  for (const piece of vocabulary) chunks.push(int32s([piece.length]), piece);
  for (const t of tensors) {
    const elements = t.dims.reduce((a, b) => a * b, 1);
    if (elements !== t.data.length) {
      throw new Error(
        `tensor ${t.name}: dims [${t.dims.join(", ")}] need ${elements} values, got ${t.data.length}`,
      );
    }
    const name = Buffer.from(t.name, "utf8");
    chunks.push(int32s([t.dims.length, name.length, t.type, ...t.dims]), name);
    chunks.push(t.type === GGML_TYPE_F16 ? halves(t.data) : floats(t.data));
  }
  return Buffer.concat(chunks);
}

/** Writes `buildTinyWhisperGgml(options)` to `path`, creating parent folders. */
export async function writeTinyWhisperModel(
  path: string,
  options: TinyWhisperOptions = {},
): Promise<WriteTinyModelResult> {
  return writeModelFile(path, buildTinyWhisperGgml(options));
}
