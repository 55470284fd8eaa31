// Loads the generated files with the real llama.cpp bindings. Always pass small `threads`:
// the library default oversubscribes small CI machines and runs hundreds of times slower.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import {
  ChatMLChatWrapper,
  LlamaChatSession,
  LlamaCompletion,
  getLlama,
  resolveChatWrapper,
} from "node-llama-cpp";
import { TokenType, tinyModelPresets, tinyVocabulary, writeTinyModel } from "../src/index.js";

const dir = await mkdtemp(join(tmpdir(), "tiny-models-"));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const started = performance.now();
const chat = await writeTinyModel(join(dir, "tiny-chat.gguf"), tinyModelPresets["tiny-chat"]);
const embed = await writeTinyModel(join(dir, "tiny-embed.gguf"), tinyModelPresets["tiny-embed"]);
t.comment(
  `generated both models in ${(performance.now() - started).toFixed(1)} ms (${chat.bytes} + ${embed.bytes} bytes)`,
);

const llama = await getLlama({ gpu: false });
t.teardown(() => llama.dispose());
const model = await llama.loadModel({ modelPath: chat.path });
const context = await model.createContext({ contextSize: 512, threads: 1, sequences: 2 });

void t.test("chat model metadata as llama.cpp sees it", async (t) => {
  t.equal(model.fileInfo.metadata.general.name, "tiny-chat");
  t.equal(model.trainContextSize, 2048);
  t.equal(model.embeddingVectorSize, 64);
  t.equal(model.tokens.bos, tinyVocabulary.bosTokenId);
  t.equal(model.tokens.eos, tinyVocabulary.eosTokenId);
});

void t.test("tokenize/detokenize round-trips arbitrary text", async (t) => {
  const samples = [
    "hello world",
    "héllo wörld",
    "emoji 😀👍🏽 and 🇺🇳",
    "中文测试，你好世界",
    "  leading and trailing spaces  ",
    "tabs\tnew\nlines\r\n",
    "<|im_start|> typed by a user",
    "",
  ];
  for (const text of samples) {
    const tokens = model.tokenize(text);
    t.equal(model.detokenize(tokens), text, JSON.stringify(text));
    t.notOk(tokens.includes(tinyVocabulary.unknownTokenId as (typeof tokens)[number]), "no <unk>");
  }
  t.same(
    model.tokenize("the world").map((id) => tinyVocabulary.tokens[id]),
    ["t", "h", "e", "\u2581world"],
  );
});

void t.test("ChatML markers are special tokens only when asked for", async (t) => {
  const text = "<|im_start|>user\nhi<|im_end|>\n";
  const special = model.tokenize(text, true);
  t.equal(special[0], tinyVocabulary.imStartTokenId);
  t.ok(special.includes(tinyVocabulary.eosTokenId as (typeof special)[number]));
  t.equal(model.detokenize(special, true), text);
  const plain = model.tokenize(text, false);
  t.notOk(plain.includes(tinyVocabulary.imStartTokenId as (typeof plain)[number]));
  t.equal(model.detokenize(plain), text);
});

void t.test("resolves the ChatML chat wrapper from the template", async (t) => {
  const wrapper = resolveChatWrapper(model);
  t.type(wrapper, ChatMLChatWrapper);
  t.comment(`resolved chat wrapper: ${wrapper?.constructor.name} (${wrapper?.wrapperName})`);
  const sequence = context.getSequence();
  const session = new LlamaChatSession({ contextSequence: sequence });
  t.type(session.chatWrapper, ChatMLChatWrapper);
  const reply = await session.prompt("Hello there", { maxTokens: 30 });
  t.ok(reply.length > 0, `reply: ${JSON.stringify(reply)}`);
  session.dispose();
  await sequence.dispose();
});

void t.test("completion generates readable text up to maxTokens", async (t) => {
  const sequence = context.getSequence();
  t.teardown(() => sequence.dispose());
  const completion = new LlamaCompletion({ contextSequence: sequence });

  const generated: number[] = [];
  const first = await completion.generateCompletionWithMeta("hello world, the", {
    maxTokens: 50,
    onToken: (tokens) => generated.push(...tokens),
  });
  t.equal(first.metadata.stopReason, "maxTokens");
  t.equal(generated.length, 50);
  t.match(first.response, /^[\x20-\x7e]+$/, `printable ASCII: ${JSON.stringify(first.response)}`);
  const again = await completion.generateCompletion("hello world, the", { maxTokens: 50 });
  t.equal(again, first.response, "greedy decoding is deterministic");

  // Even sampling never picks a control or byte token.
  const sampled: number[] = [];
  await completion.generateCompletion("the", {
    maxTokens: 300,
    temperature: 1.5,
    seed: 3,
    onToken: (tokens) => sampled.push(...tokens),
  });
  t.equal(sampled.length, 300);
  t.same(
    sampled.filter((id) => tinyVocabulary.tokenTypes[id] !== TokenType.NORMAL),
    [],
  );

  const timed = performance.now();
  let count = 0;
  await completion.generateCompletion("the", {
    maxTokens: 200,
    onToken: (tokens) => (count += tokens.length),
  });
  t.equal(count, 200);
  t.comment(`200 tokens with threads: 1 in ${(performance.now() - timed).toFixed(1)} ms`);
});

void t.test("embedding model returns a mean-pooled vector", async (t) => {
  const embedModel = await llama.loadModel({ modelPath: embed.path });
  t.teardown(() => embedModel.dispose());
  const embeddingContext = await embedModel.createEmbeddingContext({ threads: 1 });
  t.teardown(() => embeddingContext.dispose());
  t.equal((embedModel.fileInfo.metadata.llama as { pooling_type?: number } | undefined)?.pooling_type, 1);

  const hello = await embeddingContext.getEmbeddingFor("hello world");
  t.equal(hello.vector.length, 64);
  t.ok(hello.vector.every(Number.isFinite));
  t.same((await embeddingContext.getEmbeddingFor("hello world")).vector, hello.vector, "deterministic");
  const other = await embeddingContext.getEmbeddingFor("a different sentence entirely");
  t.notSame(other.vector, hello.vector);
});
