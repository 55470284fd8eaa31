import t from "tap";
import { CatalogueError, modelsToServe, parseCatalogue, type CatalogueModel } from "../src/index.js";

const entry = (id: string, extra = "") => `
  - id: ${id}
    owned_by: acme
    family: acme-lm
    license: apache-2.0
    created: 2026-01-01
    source: models/${id}.gguf
    capabilities: [chat]
    context_length: 4096
    pricing: { input_per_million: 0.2, output_per_million: 0.8 }${extra}`;

void t.test("a valid catalogue resolves paths, aliases and runtime defaults", async (t) => {
  const catalogue = parseCatalogue(
    `models:${entry("granite-3.1-8b")}${entry("remote").replace("models/remote.gguf", "hf:org/repo/file.gguf")}
aliases:
  chat-default: granite-3.1-8b`,
    "/srv/catalogue",
  );
  t.equal(catalogue.find("chat-default")?.id, "granite-3.1-8b");
  t.equal(catalogue.find("granite-3.1-8b")?.resolvedSource, "/srv/catalogue/models/granite-3.1-8b.gguf");
  t.equal(catalogue.find("remote")?.resolvedSource, "hf:org/repo/file.gguf", "hf: URIs are kept");
  t.equal(catalogue.find("granite-3.1-8b")?.runtime.sequences, 4);
  t.equal(catalogue.find("nope"), undefined);
});

void t.test("mistakes are refused at load, with the reason", async (t) => {
  t.throws(() => parseCatalogue(`models:${entry("a")}${entry("a")}`, "/"), CatalogueError, "duplicate id");
  t.throws(() => parseCatalogue(`models:${entry("a")}\naliases:\n  x: b`, "/"), /unknown model b/);
  t.throws(() => parseCatalogue(`models:${entry("a")}\naliases:\n  a: a`, "/"), /shadows/);
  t.throws(() => parseCatalogue(`models:${entry("has space")}`, "/"), /models\.0\.id/);
  t.throws(() => parseCatalogue(`models:${entry("a", "\n    colour: blue")}`, "/"), /colour/, "unknown keys");
  t.throws(() => parseCatalogue(`models: []`, "/"), CatalogueError);
});

void t.test("descriptive fields: languages are BCP-47 tags, indemnity is never assumed", async (t) => {
  const catalogue = parseCatalogue(
    `models:${entry("a", "\n    languages: [en, fr-CA, zh-Hant]\n    ip_indemnified: true")}${entry("b")}`,
    "/",
  );
  t.same(catalogue.find("a")?.languages, ["en", "fr-CA", "zh-Hant"]);
  t.equal(catalogue.find("a")?.ip_indemnified, true);
  t.same(catalogue.find("b")?.languages, [], "languages default to none");
  t.equal(catalogue.find("b")?.ip_indemnified, false, "indemnity defaults to false");
  t.same(catalogue.find("b")?.lifecycle, { status: "active" }, "lifecycle defaults to active");
  t.throws(() => parseCatalogue(`models:${entry("a", "\n    languages: [en_US!]")}`, "/"), /BCP-47/);
  const bare = parseCatalogue(
    `models:${entry("a").replace("    family: acme-lm\n    license: apache-2.0\n", "")}`,
    "/",
  ).find("a");
  t.equal(bare?.family, null, "an unstated family is null");
  t.equal(bare?.license, null, "an unstated license is null, never guessed");
});

void t.test("an embedding model declares its vector length; shortening is never assumed", async (t) => {
  const embedding = (id: string, extra: string) =>
    entry(id).replace("capabilities: [chat]", "capabilities: [embeddings]") + extra;
  const catalogue = parseCatalogue(
    `models:${embedding("e", "\n    embeddings:\n      dimensions: 768")}${embedding(
      "m",
      "\n    embeddings: { dimensions: 1024, matryoshka: true }",
    )}`,
    "/",
  );
  t.same(catalogue.find("e")?.embeddings, { dimensions: 768, matryoshka: false });
  t.same(catalogue.find("m")?.embeddings, { dimensions: 1024, matryoshka: true });
  t.throws(() => parseCatalogue(`models:${embedding("e", "")}`, "/"), /embeddings\.dimensions/);
});

void t.test("modelsToServe: the ids a worker is told to serve, or every model it serves", async (t) => {
  const catalogue = parseCatalogue(
    `models:${entry("chat")}${entry("retired-chat").replace(
      "capabilities: [chat]",
      "capabilities: [chat]\n    lifecycle: { status: retired, retired_on: 2026-01-01, replacement: chat }",
    )}${entry("whisper").replace("capabilities: [chat]", "capabilities: [audio]")}\n`,
    "/models",
  );
  const audio = {
    setting: "AUDIO_MODELS",
    serves: (model: CatalogueModel) => model.capabilities.includes("audio"),
  };
  const chat = {
    setting: "LLM_MODELS",
    serves: (model: CatalogueModel) => model.capabilities.includes("chat"),
  };
  t.same(
    modelsToServe(catalogue, [], chat).map((model) => model.id),
    ["chat"],
    "every chat model that is not retired",
  );
  t.same(
    modelsToServe(catalogue, ["whisper"], audio).map((model) => model.id),
    ["whisper"],
  );
  t.throws(
    () => modelsToServe(catalogue, ["nope"], audio),
    /AUDIO_MODELS names nope, which is not in the catalogue/,
  );
  t.throws(
    () => modelsToServe(catalogue, ["chat"], audio),
    /AUDIO_MODELS names chat, which this worker does not serve/,
  );
});
