import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { readGgufFileInfo } from "node-llama-cpp";
import {
  GGUF_ALIGNMENT,
  encodeGguf,
  TokenType,
  buildTinyLlamaGguf,
  tinyModelPresets,
  tinyVocabulary,
  writeTinyModel,
} from "../src/index.js";

void t.test("same seed gives identical bytes, different seed differs", async (t) => {
  const started = performance.now();
  const a = buildTinyLlamaGguf({ seed: 7 });
  t.comment(`built ${a.length} bytes in ${(performance.now() - started).toFixed(1)} ms`);
  t.ok(a.equals(buildTinyLlamaGguf({ seed: 7 })));
  t.notOk(a.equals(buildTinyLlamaGguf({ seed: 8 })));
  t.ok(buildTinyLlamaGguf().equals(buildTinyLlamaGguf({ seed: 1 })), "seed defaults to 1");
});

void t.test("GGUF v3 header and 32-byte alignment", async (t) => {
  const gguf = buildTinyLlamaGguf({
    embeddingLength: 32,
    blockCount: 1,
    headCount: 2,
    feedForwardLength: 48,
  });
  t.equal(gguf.toString("latin1", 0, 4), "GGUF");
  t.equal(gguf.readUInt32LE(4), 3);
  t.equal(gguf.readBigUInt64LE(8), 2n + 9n + 1n, "tensor count: embd, output_norm, output, 9 per block");
  t.equal(gguf.length % GGUF_ALIGNMENT, 0);

  const dir = await mkdtemp(join(tmpdir(), "tiny-models-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, "m.gguf");
  await writeTinyModel(path, { embeddingLength: 32, blockCount: 1, headCount: 2, feedForwardLength: 48 });
  const info = await readGgufFileInfo(path);
  t.equal(info.version, 3);
  t.equal(info.metadata.general.alignment, GGUF_ALIGNMENT);
  t.equal(info.metadata.general.architecture, "llama");
  t.equal(info.metadata.llama?.embedding_length, 32);
  const tensors = info.fullTensorInfo ?? [];
  t.equal(tensors.length, 12);
  for (const tensor of tensors) {
    t.equal(Number(tensor.offset) % GGUF_ALIGNMENT, 0, `${tensor.name} offset aligned`);
    t.equal(Number(tensor.fileOffset) % GGUF_ALIGNMENT, 0, `${tensor.name} data aligned in the file`);
  }
  t.same(tensors.find((x) => x.name === "blk.0.ffn_down.weight")?.dimensions.map(Number), [48, 32]);
});

void t.test("vocabulary", async (t) => {
  const { tokens, tokenTypes, scores } = tinyVocabulary;
  t.equal(new Set(tokens).size, tokens.length, "token texts are distinct");
  t.equal(tokens[tinyVocabulary.unknownTokenId], "<unk>");
  t.equal(tokens[tinyVocabulary.bosTokenId], "<s>");
  t.equal(tokens[tinyVocabulary.eosTokenId], "<|im_end|>");
  t.equal(tokens[tinyVocabulary.imStartTokenId], "<|im_start|>");
  t.equal(tokenTypes.filter((x) => x === TokenType.BYTE).length, 256);
  t.ok(tokens.includes("\u2581hello") && tokens.includes("\u2581world"));
  t.equal(scores.length, tokens.length);
  t.ok(tokens.length > 500 && tokens.length < 1000, `${tokens.length} tokens`);
});

void t.test("rejects shapes llama.cpp cannot run", async (t) => {
  t.throws(() => buildTinyLlamaGguf({ embeddingLength: 64, headCount: 3 }), RangeError);
  t.throws(() => buildTinyLlamaGguf({ headCount: 4, headCountKv: 3 }), RangeError);
  t.throws(() => buildTinyLlamaGguf({ blockCount: 0 }), RangeError);
  t.throws(() => buildTinyLlamaGguf({ seed: 1.5 }), RangeError);
});

void t.test("every value type round-trips through node-llama-cpp's GGUF parser", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "tiny-models-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, "values.gguf");
  await writeFile(
    path,
    encodeGguf(
      [
        ["test.string", { type: "string", value: "héllo 😀" }],
        ["test.u32", { type: "u32", value: 4294967295 }],
        ["test.f32", { type: "f32", value: 0.5 }],
        ["test.yes", { type: "bool", value: true }],
        ["test.no", { type: "bool", value: false }],
        ["test.strings", { type: "string[]", value: ["a", "", "中"] }],
        ["test.floats", { type: "f32[]", value: [1.5, -2] }],
        ["test.ints", { type: "i32[]", value: [-1, 7] }],
      ],
      [{ name: "w", dims: [3], data: new Float32Array([1, 2, 3]) }],
    ),
  );
  const info = await readGgufFileInfo(path);
  t.same((info.metadata as unknown as { test: unknown }).test, {
    string: "héllo 😀",
    u32: 4294967295,
    f32: 0.5,
    yes: true,
    no: false,
    strings: ["a", "", "中"],
    floats: [1.5, -2],
    ints: [-1, 7],
  });
  t.same(
    info.tensorInfo?.map((x) => [x.name, x.dimensions.map(Number)]),
    [["w", [3]]],
  );
});

void t.test("encodeGguf refuses files llama.cpp would reject", async (t) => {
  const tensor = { name: "w", dims: [2, 2], data: new Float32Array(4) };
  t.throws(
    () => encodeGguf([["general.alignment", { type: "u32", value: 64 }]], []),
    /duplicate GGUF metadata key/,
  );
  t.throws(() => encodeGguf([], [tensor, tensor]), /duplicate GGUF tensor name/);
  t.throws(() => encodeGguf([], [{ ...tensor, dims: [2, 3] }]), /need 6 values, got 4/);
});

void t.test("writeTinyModel leaves an identical file untouched", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "tiny-models-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, "nested", "tiny-embed.gguf");
  const first = await writeTinyModel(path, tinyModelPresets["tiny-embed"]);
  t.ok(first.written);
  t.equal((await stat(path)).size, first.bytes);
  const second = await writeTinyModel(path, tinyModelPresets["tiny-embed"]);
  t.notOk(second.written);
  t.equal(second.sha256, first.sha256);
  t.ok((await writeTinyModel(path, { ...tinyModelPresets["tiny-embed"], seed: 2 })).written);
  await t.rejects(writeTinyModel(dir), { code: "EISDIR" }, "read errors other than ENOENT propagate");
});
