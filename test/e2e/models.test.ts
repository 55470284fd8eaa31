// The catalogue's lifecycle as clients meet it: `/v1/models` describes every model (retired ones too) in a shape
// OpenAI's schemas accept, a deprecated model answers with Deprecation/Sunset/Link headers, a retired one with 410.
import t from "tap";
import { parseCatalogue } from "../../libs/catalogue/src/index.js";
import { resolveModel } from "../../services/gateway/src/model-resolution.js";
import { openapiErrors } from "../support/openapi.js";
import { startStack } from "../support/stack.js";
import { openaiClient, rawRequest } from "../support/client.js";

const DAY_MS = 24 * 60 * 60 * 1000;
const day = (offsetDays: number): string =>
  new Date(Date.now() + offsetDays * DAY_MS).toISOString().slice(0, 10);
const deprecatedOn = day(-10);
const retiresOn = day(200);
const retiredOn = day(-30);

const model = (id: string, extra: string, pricing = "{}") => `
  - id: ${id}
    owned_by: llmaas
    family: tiny
    created: 2026-11-21
    source: "{{chatModel}}"
    context_length: 512
    license: apache-2.0
    pricing: ${pricing}
    runtime:
      threads: 1
      sequences: 1${extra}`;

const CATALOGUE = `
models:${model(
  "tiny-chat",
  `
    capabilities: [chat]
    languages: [en, fr-CA]
    ip_indemnified: true`,
  `{ input_per_million: 0.15, output_per_million: "0.6" }`,
)}${model(
  "tiny-chat-old",
  `
    capabilities: [chat]
    lifecycle:
      status: deprecated
      deprecated_on: ${deprecatedOn}
      retires_on: ${retiresOn}
      replacement: tiny-chat`,
  `{ input_per_million: "0.000001", output_per_million: 12.5, audio_per_minute: 0.006 }`,
)}${model(
  "tiny-chat-gone",
  `
    capabilities: [chat]
    lifecycle: { status: retired, retired_on: ${retiredOn}, replacement: tiny-chat }`,
)}${model(
  "tiny-complete",
  `
    capabilities: [completion]`,
  "{ input_per_million: 2 }",
)}
aliases:
  chat-default: tiny-chat
  chat-legacy: tiny-chat-old
`;
const stack = await startStack({ catalogue: CATALOGUE });
t.teardown(() => stack.stop());

/** `pricing` as `/v1/models` should show it: the catalogue's own prices, in the platform's currency (EUR). */
function cataloguePricing(id: string) {
  const pricing = parseCatalogue(CATALOGUE, "/").find(id)?.pricing;
  if (!pricing) throw new Error(`${id} is not in the test catalogue`);
  return {
    currency: "eur",
    input_per_million: Number(pricing.inputPerMillion),
    output_per_million: Number(pricing.outputPerMillion),
    audio_per_minute: Number(pricing.audioPerMinute),
  };
}
const client = openaiClient(stack);

const noticeHeaders = {
  deprecation: `@${Date.parse(`${deprecatedOn}T00:00:00Z`) / 1000}`,
  sunset: new Date(`${retiresOn}T00:00:00Z`).toUTCString(),
  link: '</v1/models/tiny-chat>; rel="successor-version"',
};

function headersOf(headers: Headers) {
  return {
    deprecation: headers.get("deprecation"),
    sunset: headers.get("sunset"),
    link: headers.get("link"),
  };
}

const chat = (model: string, stream = false) =>
  rawRequest(stack, "/chat/completions", {
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 3, stream }),
  });

void t.test("GET /v1/models lists every model, retired included, with its lifecycle", async (t) => {
  const raw = await rawRequest(stack, "/models");
  t.equal(raw.status, 200);
  t.same(openapiErrors("ListModelsResponse", raw.json), [], "valid against OpenAI's ListModelsResponse");
  const { data } = raw.json as { data: Array<Record<string, unknown>> };
  t.same(
    data.map((entry) => entry.id),
    ["tiny-chat", "tiny-chat-old", "tiny-chat-gone", "tiny-complete"],
  );
  t.same(data[0], {
    id: "tiny-chat",
    object: "model",
    created: Date.parse("2026-11-21T00:00:00Z") / 1000,
    owned_by: "llmaas",
    shutdown_date: null,
    family: "tiny",
    capabilities: ["chat"],
    context_length: 512,
    languages: ["en", "fr-CA"],
    license: "apache-2.0",
    ip_indemnified: true,
    lifecycle: { status: "active" },
    pricing: { currency: "eur", input_per_million: 0.15, output_per_million: 0.6, audio_per_minute: 0 },
  });
  for (const entry of data) {
    t.same(
      entry.pricing,
      cataloguePricing(entry.id as string),
      `${String(entry.id)}: the catalogue's prices`,
    );
  }
  t.same(data[1]?.pricing, {
    currency: "eur",
    input_per_million: 0.000001,
    output_per_million: 12.5,
    audio_per_minute: 0.006,
  });
  t.same(
    data[2]?.pricing,
    { currency: "eur", input_per_million: 0, output_per_million: 0, audio_per_minute: 0 },
    "pricing: {} is free",
  );
  t.match(data[1], {
    shutdown_date: retiresOn,
    languages: [],
    ip_indemnified: false,
    lifecycle: {
      status: "deprecated",
      deprecated_on: deprecatedOn,
      retires_on: retiresOn,
      replacement: "tiny-chat",
    },
  });
  t.match(data[2], {
    shutdown_date: retiredOn,
    lifecycle: { status: "retired", retired_on: retiredOn, replacement: "tiny-chat" },
  });

  const list = await client.models.list();
  t.same(
    list.data.map((entry) => entry.id),
    ["tiny-chat", "tiny-chat-old", "tiny-chat-gone", "tiny-complete"],
    "the official SDK reads the list",
  );
});

void t.test("GET /v1/models/{id} by id or alias; a deprecated model carries its notices", async (t) => {
  const active = await rawRequest(stack, "/models/chat-default");
  t.equal(active.status, 200);
  t.same(openapiErrors("Model", active.json), []);
  t.match(active.json, { id: "tiny-chat", lifecycle: { status: "active" } }, "an alias names its model");
  t.same(headersOf(active.headers), { deprecation: null, sunset: null, link: null });

  for (const name of ["tiny-chat-old", "chat-legacy"]) {
    const deprecated = await rawRequest(stack, `/models/${name}`);
    t.equal(deprecated.status, 200);
    t.same(openapiErrors("Model", deprecated.json), []);
    t.match(deprecated.json, { id: "tiny-chat-old", lifecycle: { status: "deprecated" } });
    t.same((deprecated.json as { pricing: unknown }).pricing, cataloguePricing("tiny-chat-old"), name);
    t.same(headersOf(deprecated.headers), noticeHeaders, `${name}: Deprecation, Sunset and Link`);
  }

  const retired = await rawRequest(stack, "/models/tiny-chat-gone");
  t.equal(retired.status, 200, "a retired model is still described, so clients find its replacement");
  t.same(openapiErrors("Model", retired.json), []);
  t.match(retired.json, { lifecycle: { status: "retired", replacement: "tiny-chat" } });

  const sdk = await client.models.retrieve("tiny-chat-old");
  t.equal(sdk.id, "tiny-chat-old", "the official SDK reads a model with the extra fields");

  const unknown = await rawRequest(stack, "/models/nope");
  t.equal(unknown.status, 404);
  t.same(openapiErrors("ErrorResponse", unknown.json), []);
  t.match(unknown.json, { error: { code: "model_not_found", param: "model" } });
});

void t.test("a deprecated model still answers, with Deprecation, Sunset and Link headers", async (t) => {
  for (const name of ["tiny-chat-old", "chat-legacy"]) {
    const response = await chat(name);
    t.equal(response.status, 200, name);
    t.same(openapiErrors("CreateChatCompletionResponse", response.json), []);
    t.match(response.json, { model: "tiny-chat-old" });
    t.same(headersOf(response.headers), noticeHeaders, `${name}: the three headers`);
  }
  const streamed = await chat("tiny-chat-old", true);
  t.equal(streamed.status, 200);
  t.ok(streamed.text.endsWith("data: [DONE]\n\n"), "the stream completes");
  t.same(headersOf(streamed.headers), noticeHeaders, "a stream carries them too");

  const active = await chat("chat-default");
  t.equal(active.status, 200);
  t.match(active.json, { model: "tiny-chat" });
  t.same(headersOf(active.headers), { deprecation: null, sunset: null, link: null }, "no notice when active");
});

void t.test("a retired model gets 410 model_retired naming its replacement", async (t) => {
  const response = await chat("tiny-chat-gone");
  t.equal(response.status, 410);
  t.same(openapiErrors("ErrorResponse", response.json), [], "valid against OpenAI's ErrorResponse");
  t.match(response.json, {
    error: { type: "invalid_request_error", code: "model_retired", param: "model", message: /`tiny-chat`/ },
  });

  const error = await client.chat.completions
    .create({ model: "tiny-chat-gone", messages: [{ role: "user", content: "hi" }] })
    .then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
  t.match(error, { status: 410, code: "model_retired" }, "the official SDK reports it");
});

void t.test("an unknown model is 404, a model without the capability 400 naming `model`", async (t) => {
  const unknown = await chat("nope");
  t.equal(unknown.status, 404);
  t.match(unknown.json, { error: { code: "model_not_found", param: "model" } });

  const incapable = await chat("tiny-complete");
  t.equal(incapable.status, 400);
  t.same(openapiErrors("ErrorResponse", incapable.json), []);
  t.match(incapable.json, {
    error: { param: "model", message: "The model `tiny-complete` does not support chat completions." },
  });
});

void t.test("the worker does not load a retired model", async (t) => {
  const ready = stack.workers[0]?.lines
    .map((line) => {
      try {
        return JSON.parse(line) as { msg?: string; models?: string[] };
      } catch {
        return {};
      }
    })
    .find((entry) => entry.msg === "llm-worker ready");
  t.ok(ready?.models?.includes("tiny-chat-old"), "a deprecated model is served");
  t.notOk(ready?.models?.includes("tiny-chat-gone"), "a retired one is not");
});

void t.test("resolveModel reads the clock it is given: a deprecated model retires on its day", async (t) => {
  const catalogue = parseCatalogue(
    `models:${model("new", "\n    capabilities: [chat]")}${model(
      "old",
      `
    capabilities: [chat]
    lifecycle: { status: deprecated, deprecated_on: 2026-01-15, retires_on: 2026-04-15, replacement: new }`,
    )}`,
    "/",
  );
  const everyModel = { allowedModels: null, limits: { projectModelPermissions: null } };
  t.same(resolveModel(catalogue, "old", "chat", everyModel, new Date("2026-04-14T23:59:59Z")).headers, {
    deprecation: "@1768435200",
    sunset: "Wed, 15 Apr 2026 00:00:00 GMT",
    link: '</v1/models/new>; rel="successor-version"',
  });
  t.throws(() => resolveModel(catalogue, "old", "chat", everyModel, new Date("2026-04-15T00:00:00Z")), {
    code: "model_retired",
    param: "model",
    message: "The model `old` was retired on 2026-04-15; use `new` instead.",
  });
  t.same(resolveModel(catalogue, "new", "chat", everyModel, new Date("2030-01-01")).headers, {});
});
