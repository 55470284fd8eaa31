import { mulberry32, positiveInteger, writeModelFile, type WriteTinyModelResult } from "./common.js";
import { encodeGguf, type GgufMetadata, type GgufTensor } from "./gguf.js";
import { TokenType, tinyVocabulary } from "./vocab.js";

export { mulberry32, type WriteTinyModelResult } from "./common.js";
export { GGUF_ALIGNMENT, encodeGguf, type GgufMetadata, type GgufTensor, type GgufValue } from "./gguf.js";
export { IM_END, IM_START, TokenType, WORD_BOUNDARY, tinyVocabulary, type TinyVocabulary } from "./vocab.js";
export {
  buildTinyWhisperGgml,
  tinyWhisperPresets,
  tinyWhisperScript,
  writeTinyWhisperModel,
  type TinyWhisperOptions,
  type TinyWhisperPresetName,
  type TinyWhisperScript,
} from "./whisper.js";

/** Plain ChatML, without the default system prompt some Qwen templates inject. */
export const CHATML_TEMPLATE =
  "{% for message in messages %}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  "{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export interface TinyModelOptions {
  /** Seeds the weight PRNG; identical options always produce byte-identical files. Default 1. */
  readonly seed?: number;
  /** `general.name`. Default "tiny-llama". */
  readonly name?: string;
  /** `llama.context_length`. Default 2048. */
  readonly contextLength?: number;
  /** Hidden size. Default 64. */
  readonly embeddingLength?: number;
  /** Number of transformer blocks. Default 2. */
  readonly blockCount?: number;
  /** Attention heads. Default 4. */
  readonly headCount?: number;
  /** Key/value heads (grouped-query attention when smaller than headCount). Default headCount. */
  readonly headCountKv?: number;
  /** FFN hidden size. Default 128. */
  readonly feedForwardLength?: number;
  /** "mean" writes `llama.pooling_type` = 1 so the model serves embedding contexts. Default "none". */
  readonly pooling?: "none" | "mean";
}

export const tinyModelPresets = {
  "tiny-chat": { name: "tiny-chat" },
  "tiny-embed": { name: "tiny-embed", pooling: "mean" },
  /** 1024 dimensions: 2048 inputs make an embeddings response of over 20 MB. */
  "tiny-embed-wide": {
    name: "tiny-embed-wide",
    pooling: "mean",
    embeddingLength: 1024,
    feedForwardLength: 256,
  },
} as const satisfies Record<string, TinyModelOptions>;

export type TinyModelPresetName = keyof typeof tinyModelPresets;

const LLAMA_POOLING_TYPE_MEAN = 1;
const LLAMA_FTYPE_ALL_F32 = 0;

/** A complete llama-architecture GGUF v3 file, all F32, under a megabyte at the default sizes. */
export function buildTinyLlamaGguf(options: TinyModelOptions = {}): Buffer {
  const seed = options.seed ?? 1;
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  const nEmbd = positiveInteger("embeddingLength", options.embeddingLength ?? 64);
  const nLayer = positiveInteger("blockCount", options.blockCount ?? 2);
  const nHead = positiveInteger("headCount", options.headCount ?? 4);
  const nHeadKv = positiveInteger("headCountKv", options.headCountKv ?? nHead);
  const nFf = positiveInteger("feedForwardLength", options.feedForwardLength ?? 128);
  const nCtx = positiveInteger("contextLength", options.contextLength ?? 2048);
  const headDim = nEmbd / nHead;
  // RoPE rotates pairs of dimensions, so a head needs an even size.
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new RangeError(`embeddingLength / headCount must be an even integer, got ${nEmbd} / ${nHead}`);
  }
  if (nHead % nHeadKv !== 0)
    throw new RangeError(`headCount ${nHead} is not a multiple of headCountKv ${nHeadKv}`);

  const vocab = tinyVocabulary;
  const nVocab = vocab.tokens.length;
  const nEmbdKv = headDim * nHeadKv;

  const random = mulberry32(seed);
  const uniform = (name: string, dims: readonly number[], amplitude: number): GgufTensor => {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = (random() * 2 - 1) * amplitude;
    return { name, dims, data };
  };
  // Projections are stored [in, out]. U(-a, a) with a = sqrt(3 / in) has variance 1 / in, which
  // keeps activations near unit scale so the logits stay finite and varied.
  const linear = (name: string, nIn: number, nOut: number): GgufTensor =>
    uniform(name, [nIn, nOut], Math.sqrt(3 / nIn));
  const norm = (name: string): GgufTensor => ({ name, dims: [nEmbd], data: new Float32Array(nEmbd).fill(1) });

  // Random weights would happily emit <unk>, <s>, <|im_end|> or stray UTF-8 bytes, ending
  // turns after a handful of tokens or producing invalid text. There are no bias tensors, so
  // hidden dimension 0 acts as one: every embedding holds 1 there, no block writes to it, so
  // it reaches the output norm as a positive constant and a large negative output weight on
  // it rules a token out. Only NORMAL pieces can then be generated: output is readable ASCII
  // and a turn always runs to maxTokens.
  const tokenEmbd = uniform("token_embd.weight", [nEmbd, nVocab], 1);
  for (let v = 0; v < nVocab; v++) tokenEmbd.data[v * nEmbd] = 1;
  const output = linear("output.weight", nEmbd, nVocab);
  vocab.tokenTypes.forEach((type, v) => {
    if (type !== TokenType.NORMAL) output.data[v * nEmbd] = -1000;
  });
  // attn_output and ffn_down add into the residual stream; their first output row is what
  // would disturb dimension 0.
  const intoResidual = (name: string, nIn: number): GgufTensor => {
    const tensor = linear(name, nIn, nEmbd);
    tensor.data.fill(0, 0, nIn);
    return tensor;
  };

  const tensors: GgufTensor[] = [tokenEmbd];
  for (let i = 0; i < nLayer; i++) {
    const blk = `blk.${i}`;
    tensors.push(
      norm(`${blk}.attn_norm.weight`),
      linear(`${blk}.attn_q.weight`, nEmbd, nEmbd),
      linear(`${blk}.attn_k.weight`, nEmbd, nEmbdKv),
      linear(`${blk}.attn_v.weight`, nEmbd, nEmbdKv),
      intoResidual(`${blk}.attn_output.weight`, nEmbd),
      norm(`${blk}.ffn_norm.weight`),
      linear(`${blk}.ffn_gate.weight`, nEmbd, nFf),
      linear(`${blk}.ffn_up.weight`, nEmbd, nFf),
      intoResidual(`${blk}.ffn_down.weight`, nFf),
    );
  }
  tensors.push(norm("output_norm.weight"), output);

  const u32 = (value: number) => ({ type: "u32", value }) as const;
  const metadata: GgufMetadata = [
    ["general.architecture", { type: "string", value: "llama" }],
    ["general.name", { type: "string", value: options.name ?? "tiny-llama" }],
    ["general.file_type", u32(LLAMA_FTYPE_ALL_F32)],
    ["llama.vocab_size", u32(nVocab)],
    ["llama.context_length", u32(nCtx)],
    ["llama.embedding_length", u32(nEmbd)],
    ["llama.block_count", u32(nLayer)],
    ["llama.feed_forward_length", u32(nFf)],
    ["llama.attention.head_count", u32(nHead)],
    ["llama.attention.head_count_kv", u32(nHeadKv)],
    ["llama.attention.layer_norm_rms_epsilon", { type: "f32", value: 1e-5 }],
    ["llama.rope.dimension_count", u32(headDim)],
    ["llama.rope.freq_base", { type: "f32", value: 10000 }],
    ...(options.pooling === "mean" ? [["llama.pooling_type", u32(LLAMA_POOLING_TYPE_MEAN)] as const] : []),
    ["tokenizer.ggml.model", { type: "string", value: "llama" }],
    ["tokenizer.ggml.tokens", { type: "string[]", value: vocab.tokens }],
    ["tokenizer.ggml.scores", { type: "f32[]", value: vocab.scores }],
    ["tokenizer.ggml.token_type", { type: "i32[]", value: vocab.tokenTypes }],
    ["tokenizer.ggml.unknown_token_id", u32(vocab.unknownTokenId)],
    ["tokenizer.ggml.bos_token_id", u32(vocab.bosTokenId)],
    ["tokenizer.ggml.eos_token_id", u32(vocab.eosTokenId)],
    ["tokenizer.ggml.add_bos_token", { type: "bool", value: false }],
    ["tokenizer.ggml.add_eos_token", { type: "bool", value: false }],
    // SentencePiece would otherwise prepend "▁" to the text after every special token,
    // so "<|im_start|>user" would detokenize as "<|im_start|> user".
    ["tokenizer.ggml.add_space_prefix", { type: "bool", value: false }],
    ["tokenizer.chat_template", { type: "string", value: CHATML_TEMPLATE }],
  ];

  return encodeGguf(metadata, tensors);
}

/** Writes `buildTinyLlamaGguf(options)` to `path`, creating parent folders. */
export async function writeTinyModel(
  path: string,
  options: TinyModelOptions = {},
): Promise<WriteTinyModelResult> {
  return writeModelFile(path, buildTinyLlamaGguf(options));
}
