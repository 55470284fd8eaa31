// The engine on a real (tiny, random-weight) model: requests share one context's batches, and a request arriving
// on a reused sequence is not held back until the other generations end.
import t from "tap";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCatalogue } from "@llmaas/catalogue";
import type { ChatInput, SamplingParams } from "@llmaas/contracts";
import { writeTinyModel, tinyModelPresets } from "@llmaas/tiny-models";
import { createLlama, ModelEngine } from "../src/engine.js";

const dir = await mkdtemp(join(tmpdir(), "engine-test-"));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const model = await writeTinyModel(join(dir, "tiny-chat.gguf"), tinyModelPresets["tiny-chat"]);
const catalogue = parseCatalogue(
  `models:
  - id: tiny-chat
    owned_by: test
    created: 2026-11-21
    source: ${model.path}
    capabilities: [chat]
    context_length: 2048
    pricing: {}
    runtime:
      threads: 1
      sequences: 3
`,
  dir,
);
const silent = { warn: () => undefined, error: () => undefined };
const llama = await createLlama({ gpu: false, logger: silent });
t.teardown(() => llama.dispose());
const entry = catalogue.find("tiny-chat");
if (!entry) throw new Error("catalogue without tiny-chat");
const engine = await ModelEngine.load(llama, entry, { threads: 1, modelsDir: dir });
t.teardown(() => engine.dispose());

const chat = (content: string): ChatInput => ({
  kind: "chat",
  messages: [{ role: "user", content }],
  tools: [],
  toolChoice: { mode: "none" },
  parallelToolCalls: true,
  output: { type: "text" },
});
const sampling = (maxTokens: number): SamplingParams => ({
  maxTokens,
  temperature: 0,
  topP: null,
  seed: 1,
  stop: [],
  presencePenalty: null,
  frequencyPenalty: null,
});

async function run(content: string, maxTokens: number, finished: string[], name: string) {
  const result = await engine.generate(engine.prepare(chat(content), sampling(maxTokens)), {
    sampling: sampling(maxTokens),
    signal: new AbortController().signal,
    onEvent: () => undefined,
  });
  finished.push(name);
  return result;
}

void t.test("a request on a reused sequence runs alongside long generations", async (t) => {
  // Every sequence has served a request, so the next one on any of them must first erase its old tokens.
  await Promise.all([run("warm a", 4, [], "a"), run("warm b", 4, [], "b"), run("warm c", 4, [], "c")]);
  const finished: string[] = [];
  const long = [run("long one", 1500, finished, "long-1"), run("long two", 1500, finished, "long-2")];
  await new Promise((resolve) => setTimeout(resolve, 50));
  const short = await run("a short question", 16, finished, "short");
  await Promise.all(long);
  t.equal(short.completionTokens, 16);
  t.equal(finished[0], "short", `the short request finished first (order: ${finished.join(", ")})`);
});

void t.test("a request never uses more tokens than its quota reservation allows", async (t) => {
  const prepared = engine.prepare(chat("hello there"), sampling(500), null);
  t.equal(prepared.maxTokens, 500, "without an allowance, max_tokens holds");
  const allowance = prepared.promptTokens + 7;
  const capped = engine.prepare(chat("hello there"), sampling(500), allowance);
  t.equal(capped.maxTokens, 7, "with one, the generation is shortened to what is left of it");
  const result = await engine.generate(capped, {
    sampling: sampling(500),
    signal: new AbortController().signal,
    onEvent: () => undefined,
  });
  t.ok(
    result.completionTokens + capped.promptTokens <= allowance,
    `${capped.promptTokens} + ${result.completionTokens} tokens, within the ${allowance} admitted`,
  );
  t.equal(
    engine.prepare(chat("hello there"), sampling(500), prepared.promptTokens).maxTokens,
    0,
    "an input that alone fills the allowance leaves no room to generate",
  );
});
