import t from "tap";
import { CatalogueError, parseCatalogue } from "../src/index.js";

const entry = (id: string, extra = "") => `
  - id: ${id}
    owned_by: acme
    created: 2026-01-01
    source: models/${id}.gguf
    capabilities: [chat]
    context_length: 4096${extra}`;

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
