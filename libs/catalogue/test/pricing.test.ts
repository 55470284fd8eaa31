import t from "tap";
import { CatalogueError, parseCatalogue, priceUsage, type ModelPricing } from "../src/index.js";

const withPricing = (pricing: string | null) => `
models:
  - id: m
    owned_by: acme
    created: 2026-01-01
    source: models/m.gguf
    capabilities: [chat]
    context_length: 4096${pricing === null ? "" : `\n    pricing: ${pricing}`}`;

const pricingOf = (pricing: string): ModelPricing | undefined =>
  parseCatalogue(withPricing(pricing), "/").find("m")?.pricing;

void t.test("prices are read as YAML numbers or decimal strings, exactly", async (t) => {
  t.same(pricingOf("{ input_per_million: 0.15, output_per_million: 0.6, audio_per_minute: 0.006 }"), {
    inputPerMillion: "0.15",
    outputPerMillion: "0.6",
    audioPerMinute: "0.006",
    inputPicoPerToken: 150_000n,
    outputPicoPerToken: 600_000n,
    audioPicoPerMinute: 6_000_000_000n,
  });
  t.same(
    pricingOf(`{ input_per_million: "0.15", output_per_million: "2", audio_per_minute: "0.000001" }`),
    {
      inputPerMillion: "0.15",
      outputPerMillion: "2",
      audioPerMinute: "0.000001",
      inputPicoPerToken: 150_000n,
      outputPicoPerToken: 2_000_000n,
      audioPicoPerMinute: 1_000_000n,
    },
    "strings",
  );
  t.match(
    pricingOf(`{ input_per_million: "007.500", output_per_million: 0.100000, audio_per_minute: "0.0" }`),
    { inputPerMillion: "7.5", outputPerMillion: "0.1", audioPerMinute: "0", inputPicoPerToken: 7_500_000n },
    "leading and trailing zeros are normalised away; trailing zeros do not count as decimal places",
  );
  t.equal(
    pricingOf(`{ input_per_million: 0.000001 }`)?.inputPicoPerToken,
    1n,
    "the smallest price is one pico-unit per token",
  );
  t.equal(
    pricingOf(`{ input_per_million: "123456789012345678901.123456" }`)?.inputPicoPerToken,
    123456789012345678901123456n,
    "a quoted price keeps every digit, beyond what a double holds",
  );
  t.equal(pricingOf(`{ input_per_million: 1234567890.12345 }`)?.inputPerMillion, "1234567890.12345");
});

void t.test("pricing: {} is free; each price defaults to 0", async (t) => {
  t.same(pricingOf("{}"), {
    inputPerMillion: "0",
    outputPerMillion: "0",
    audioPerMinute: "0",
    inputPicoPerToken: 0n,
    outputPicoPerToken: 0n,
    audioPicoPerMinute: 0n,
  });
  t.match(pricingOf("{ output_per_million: 3 }"), {
    inputPerMillion: "0",
    outputPerMillion: "3",
    outputPicoPerToken: 3_000_000n,
    audioPicoPerMinute: 0n,
  });
});

void t.test("a model without pricing does not load, and says why", async (t) => {
  t.throws(
    () => parseCatalogue(withPricing(null), "/"),
    { name: "CatalogueError", message: /models\.0\.pricing: every model states its pricing.*pricing: \{\}/ },
    "never free by omission",
  );
  t.throws(() => parseCatalogue(withPricing("null"), "/"), CatalogueError);
  t.throws(() => parseCatalogue(withPricing("0.5"), "/"), /models\.0\.pricing/);
});

void t.test("prices that cannot be exact, or are not prices, are refused by field", async (t) => {
  const refused = (pricing: string, message: RegExp, what: string) =>
    t.throws(() => pricingOf(pricing), { name: "CatalogueError", message }, what);
  refused(
    "{ input_per_million: 0.1234567 }",
    /models\.0\.pricing\.input_per_million: input_per_million has 7 decimal places \(0\.1234567\)/,
    "7 decimals, as a number",
  );
  refused(
    `{ output_per_million: "0.0000001" }`,
    /output_per_million has 7 decimal places/,
    "7 decimals, as a string",
  );
  refused(`{ audio_per_minute: "1.0000005" }`, /audio_per_minute has 7 decimal places/, "audio too");
  refused("{ input_per_million: -0.5 }", /input_per_million is negative \(-0\.5\)/, "a negative number");
  refused(`{ output_per_million: "-1" }`, /output_per_million is negative/, "a negative string");
  refused(
    "{ input_per_million: 1e21 }",
    /input_per_million is written in exponent notation \(1e\+21\)/,
    "1e21",
  );
  refused(
    "{ input_per_million: 0.00000001 }",
    /input_per_million is written in exponent notation \(1e-8\)/,
    "a number JavaScript prints with an exponent",
  );
  refused(`{ input_per_million: "1e-3" }`, /input_per_million is not a decimal number/, "a string exponent");
  refused(`{ input_per_million: "0,5" }`, /input_per_million is not a decimal number/, "a decimal comma");
  refused(`{ input_per_million: " 1" }`, /input_per_million is not a decimal number/, "spaces");
  refused(`{ input_per_million: "" }`, /input_per_million is not a decimal number/, "empty");
  refused(`{ input_per_million: ".5" }`, /input_per_million is not a decimal number/, "no leading digit");
  refused("{ input_per_million: true }", /input_per_million is a number or a decimal string/, "a boolean");
  refused(
    "{ input_per_million: 12345678901.123456 }",
    /input_per_million has more than 15 significant digits.*quote it/,
    "a YAML number longer than a double keeps exactly",
  );
  refused("{ input_per_minute: 1 }", /Unrecognized key: "input_per_minute"/, "a misspelt price");
});

void t.test("priceUsage: tokens times the price per token, exactly", async (t) => {
  const pricing = pricingOf("{ input_per_million: 0.15, output_per_million: 0.6, audio_per_minute: 0.006 }")!;
  t.same(priceUsage(pricing, { inputTokens: 1_000_000, outputTokens: 3, audioSeconds: 0 }), {
    inputPico: 150_000_000_000n,
    outputPico: 1_800_000n,
    audioPico: 0n,
  });
  t.same(
    priceUsage(pricing, { inputTokens: Number.MAX_SAFE_INTEGER, outputTokens: 0, audioSeconds: 0 }).inputPico,
    9007199254740991n * 150_000n,
    "no overflow, no float",
  );
  t.equal(
    priceUsage(pricing, { inputTokens: 0, outputTokens: 0, audioSeconds: 90 }).audioPico,
    9_000_000_000n,
    "90 s at 0.006 per minute is 0.009",
  );
  t.throws(
    () => priceUsage(pricing, { inputTokens: -1, outputTokens: 0, audioSeconds: 0 }),
    RangeError,
    "negative counts",
  );
  t.throws(
    () => priceUsage(pricing, { inputTokens: 0, outputTokens: 0, audioSeconds: 1.5 }),
    /audioSeconds must be a non-negative integer/,
  );
});

void t.test("priceUsage: audio is billed per second, rounded half up to a pico-unit", async (t) => {
  const pricing = pricingOf("{ audio_per_minute: 0.000001 }")!; // 1_000_000 pico per minute
  const audio = (audioSeconds: number, of = pricing) =>
    priceUsage(of, { inputTokens: 0, outputTokens: 0, audioSeconds }).audioPico;
  t.equal(audio(1), 16_667n, "16 666.67 rounds up");
  t.equal(audio(2), 33_333n, "33 333.33 rounds down");
  t.equal(audio(60), 1_000_000n, "a minute is the price per minute");
  const exact = { ...pricing, audioPicoPerMinute: 90n };
  t.equal(audio(1, exact), 2n, "1.5 rounds up");
  t.equal(audio(3, exact), 5n, "4.5 rounds up");
  t.equal(audio(2, exact), 3n, "3 is 3");
  t.equal(audio(1, { ...pricing, audioPicoPerMinute: 29n }), 0n, "0.48 rounds down");
  t.equal(audio(1, { ...pricing, audioPicoPerMinute: 30n }), 1n, "0.5 rounds up");
  t.equal(audio(0), 0n);
});
