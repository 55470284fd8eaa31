// Minimal GGUF v3 writer: only the value and tensor types the tiny models need.
// Layout reference: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md

export const GGUF_ALIGNMENT = 32;

const GGUF_MAGIC = "GGUF";
const GGUF_VERSION = 3;

const ValueType = { UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9 } as const;
type ValueType = (typeof ValueType)[keyof typeof ValueType];

const GGML_TYPE_F32 = 0;

export type GgufValue =
  | { readonly type: "string"; readonly value: string }
  | { readonly type: "u32"; readonly value: number }
  | { readonly type: "f32"; readonly value: number }
  | { readonly type: "bool"; readonly value: boolean }
  | { readonly type: "string[]"; readonly value: readonly string[] }
  | { readonly type: "f32[]"; readonly value: readonly number[] }
  | { readonly type: "i32[]"; readonly value: readonly number[] };

export type GgufMetadata = ReadonlyArray<readonly [key: string, value: GgufValue]>;

export interface GgufTensor {
  readonly name: string;
  /** ggml order: dims[0] is the contiguous (fastest-varying) dimension. */
  readonly dims: readonly number[];
  readonly data: Float32Array;
}

const pad = (n: number): number => Math.ceil(n / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
const stringSize = (s: string): number => 8 + Buffer.byteLength(s, "utf8");

function valueSize(v: GgufValue): number {
  switch (v.type) {
    case "string":
      return stringSize(v.value);
    case "u32":
    case "f32":
      return 4;
    case "bool":
      return 1;
    case "string[]":
      return 12 + v.value.reduce((sum, s) => sum + stringSize(s), 0);
    case "f32[]":
    case "i32[]":
      return 12 + 4 * v.value.length;
  }
}

class Writer {
  offset = 0;
  constructor(readonly buf: Buffer) {}

  u8(n: number): void {
    this.offset = this.buf.writeUInt8(n, this.offset);
  }
  u32(n: number): void {
    this.offset = this.buf.writeUInt32LE(n, this.offset);
  }
  i32(n: number): void {
    this.offset = this.buf.writeInt32LE(n, this.offset);
  }
  u64(n: number): void {
    this.offset = this.buf.writeBigUInt64LE(BigInt(n), this.offset);
  }
  f32(n: number): void {
    this.offset = this.buf.writeFloatLE(n, this.offset);
  }
  string(s: string): void {
    this.u64(Buffer.byteLength(s, "utf8"));
    this.offset += this.buf.write(s, this.offset, "utf8");
  }

  value(v: GgufValue): void {
    switch (v.type) {
      case "string":
        this.u32(ValueType.STRING);
        this.string(v.value);
        return;
      case "u32":
        this.u32(ValueType.UINT32);
        this.u32(v.value);
        return;
      case "f32":
        this.u32(ValueType.FLOAT32);
        this.f32(v.value);
        return;
      case "bool":
        this.u32(ValueType.BOOL);
        this.u8(v.value ? 1 : 0);
        return;
      case "string[]":
        this.arrayHeader(ValueType.STRING, v.value.length);
        for (const s of v.value) this.string(s);
        return;
      case "f32[]":
        this.arrayHeader(ValueType.FLOAT32, v.value.length);
        for (const n of v.value) this.f32(n);
        return;
      case "i32[]":
        this.arrayHeader(ValueType.INT32, v.value.length);
        for (const n of v.value) this.i32(n);
        return;
    }
  }

  private arrayHeader(elementType: ValueType, length: number): void {
    this.u32(ValueType.ARRAY);
    this.u32(elementType);
    this.u64(length);
  }
}

function assertUnique(what: string, names: readonly string[]): void {
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) throw new Error(`duplicate GGUF ${what}: ${JSON.stringify(name)}`);
    seen.add(name);
  }
}

/**
 * Serialises a GGUF v3 file. `general.alignment` is written by this function so the
 * declared alignment can never disagree with the padding actually used.
 */
export function encodeGguf(metadata: GgufMetadata, tensors: readonly GgufTensor[]): Buffer {
  const kvs: GgufMetadata = [...metadata, ["general.alignment", { type: "u32", value: GGUF_ALIGNMENT }]];
  assertUnique(
    "metadata key",
    kvs.map(([key]) => key),
  );
  assertUnique(
    "tensor name",
    tensors.map((t) => t.name),
  );
  for (const t of tensors) {
    const elements = t.dims.reduce((a, b) => a * b, 1);
    if (elements !== t.data.length) {
      throw new Error(
        `tensor ${t.name}: dims [${t.dims.join(", ")}] need ${elements} values, got ${t.data.length}`,
      );
    }
  }

  let headerSize = 4 + 4 + 8 + 8;
  for (const [key, value] of kvs) headerSize += stringSize(key) + 4 + valueSize(value);
  for (const t of tensors) headerSize += stringSize(t.name) + 4 + 8 * t.dims.length + 4 + 8;

  // llama.cpp requires each offset to equal the padded end of the previous tensor, so no gaps.
  let dataSize = 0;
  const layout = tensors.map((tensor) => {
    const offset = dataSize;
    dataSize += pad(4 * tensor.data.length);
    return { tensor, offset };
  });
  const dataStart = pad(headerSize);

  // Buffer.alloc zero-fills, which keeps the padding bytes (and thus the file) deterministic.
  const w = new Writer(Buffer.alloc(dataStart + dataSize));
  w.offset += w.buf.write(GGUF_MAGIC, 0, "latin1");
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(kvs.length);
  for (const [key, value] of kvs) {
    w.string(key);
    w.value(value);
  }
  for (const { tensor, offset } of layout) {
    w.string(tensor.name);
    w.u32(tensor.dims.length);
    for (const d of tensor.dims) w.u64(d);
    w.u32(GGML_TYPE_F32);
    w.u64(offset);
  }

  for (const { tensor, offset } of layout) {
    w.offset = dataStart + offset;
    for (const x of tensor.data) w.f32(x);
  }
  return w.buf;
}
