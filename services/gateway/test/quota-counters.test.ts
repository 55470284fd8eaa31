// What a request counts against which limit, without the bus: calendar windows, the most a request can cost (in
// tokens and in money, whichever way it splits them), OpenAI's reset format, and the counters a principal's limits
// give a request.
import t from "tap";
import { parseCatalogue } from "@llmaas/catalogue";
import type { ApiKeyPrincipal, RequestLimits } from "@llmaas/contracts";
import { countersFor, maximumCost, windowOf } from "../src/quotas/counters.js";
import { generationCost, inputTokenBound, resetIn } from "../src/quotas/admission.js";

const catalogue = parseCatalogue(
  `models:
  - id: cheap-in
    owned_by: test
    created: 2026-11-21
    source: /dev/null
    capabilities: [chat]
    context_length: 1000
    pricing: { input_per_million: 1, output_per_million: 3 }
  - id: dear-in
    owned_by: test
    created: 2026-11-21
    source: /dev/null
    capabilities: [chat]
    context_length: 1000
    pricing: { input_per_million: 5, output_per_million: 2 }
`,
  "/",
);
const cheapIn = catalogue.find("cheap-in");
const dearIn = catalogue.find("dear-in");
if (!cheapIn || !dearIn) throw new Error("test catalogue incomplete");

const seconds = (iso: string) => Date.parse(iso) / 1000;

void t.test("windows are calendar minutes, days and months in UTC", async (t) => {
  const now = Date.parse("2026-12-31T23:59:30.250Z");
  t.same(windowOf("minute", now), {
    start: seconds("2026-12-31T23:59:00Z"),
    end: seconds("2027-01-01T00:00:00Z"),
  });
  t.same(windowOf("day", now), {
    start: seconds("2026-12-31T00:00:00Z"),
    end: seconds("2027-01-01T00:00:00Z"),
  });
  t.same(windowOf("month", now), {
    start: seconds("2026-12-01T00:00:00Z"),
    end: seconds("2027-01-01T00:00:00Z"),
  });
  t.same(windowOf("month", Date.parse("2027-02-10T00:00:00Z")), {
    start: seconds("2027-02-01T00:00:00Z"),
    end: seconds("2027-03-01T00:00:00Z"),
  });
});

void t.test("the most a request can cost, in tokens and in money", async (t) => {
  // 300 in, 900 out, but never more than 1,000 together: the dearer side is filled first.
  const outputDearer = maximumCost(cheapIn, { inputTokens: 300, outputTokens: 900, totalTokens: 1000 });
  t.equal(outputDearer.tokens, 1000n);
  t.equal(outputDearer.pico, 900n * 3_000_000n + 100n * 1_000_000n, "900 output tokens, then 100 input");
  const inputDearer = maximumCost(dearIn, { inputTokens: 300, outputTokens: 900, totalTokens: 1000 });
  t.equal(inputDearer.pico, 300n * 5_000_000n + 700n * 2_000_000n, "300 input tokens, then 700 output");
  // Every split of a request within those bounds costs no more than the bound.
  for (const model of [cheapIn, dearIn]) {
    const bound = maximumCost(model, { inputTokens: 300, outputTokens: 900, totalTokens: 1000 }).pico;
    for (let input = 0; input <= 300; input += 50) {
      const output = Math.min(900, 1000 - input);
      const cost =
        BigInt(input) * model.pricing.inputPicoPerToken + BigInt(output) * model.pricing.outputPicoPerToken;
      t.ok(cost <= bound, `${model.id}: ${input} in + ${output} out costs no more than the bound`);
    }
  }
  t.equal(generationCost(cheapIn, 200, null).tokens, 1000n, "no max_tokens: the whole context");
  t.equal(generationCost(cheapIn, 200, 50).tokens, 250n, "input bound plus max_tokens");
  t.equal(generationCost(cheapIn, 5000, 50).tokens, 1000n, "never more than the context");
  const input = { messages: [{ role: "user", content: "héllo" }] };
  t.ok(
    inputTokenBound(input) >= Buffer.byteLength("héllo") + 16,
    "at least a token per byte, and the template's",
  );
});

void t.test("OpenAI's reset format", async (t) => {
  t.equal(resetIn(1), "1s");
  t.equal(resetIn(17.25), "17.25s");
  t.equal(resetIn(60), "1m0s");
  t.equal(resetIn(361.5), "6m1.5s");
  t.equal(resetIn(-3), "0s");
});

const NO_LIMITS: RequestLimits = {
  key: { maxRequestsPer1Minute: null, maxTokensPer1Minute: null, tokenBudget: null },
  projectModels: {},
  projectSpendLimitCents: null,
  organizationSpendLimitCents: null,
  projectModelPermissions: null,
};

function principal(limits: Partial<RequestLimits>): ApiKeyPrincipal {
  return {
    kind: "api_key",
    organizationId: "org_1",
    projectId: "proj_1",
    keyId: "key_1",
    serviceAccountId: "svc_1",
    allowedModels: null,
    validUntil: null,
    limits: { ...NO_LIMITS, ...limits },
    guardrail: { mode: "off", threshold: 0.5, onTimeout: "allow" },
  };
}

void t.test("the counters a request draws on", async (t) => {
  t.same(countersFor(principal({}), cheapIn), [], "no limits, no counters");
  const specs = countersFor(
    principal({
      key: {
        maxRequestsPer1Minute: 5,
        maxTokensPer1Minute: null,
        tokenBudget: { limit: 100, interval: "day" },
      },
      projectModels: {
        "cheap-in": {
          maxRequestsPer1Minute: 10,
          maxTokensPer1Minute: 1000,
          maxRequestsPer1Day: null,
          maxAudioMegabytesPer1Minute: 2,
        },
      },
      projectSpendLimitCents: 150,
      organizationSpendLimitCents: 1,
    }),
    cheapIn,
  );
  t.same(
    specs.map((spec) => [spec.counter, spec.interval, spec.limit, spec.kind, spec.unit]),
    [
      ["key:key_1:rpm", "minute", 5n, "rate_limit", "requests"],
      ["key:key_1:budget:day", "day", 100n, "quota", "tokens"],
      ["project:proj_1:model:cheap-in:rpm", "minute", 10n, "rate_limit", "requests"],
      ["project:proj_1:model:cheap-in:tpm", "minute", 1000n, "rate_limit", "tokens"],
      ["project:proj_1:model:cheap-in:audio", "minute", 2_000_000n, "rate_limit", "bytes"],
      ["project:proj_1:spend", "month", 150n * 10_000_000_000n, "quota", "pico"],
      ["organization:org_1:spend", "month", 10_000_000_000n, "quota", "pico"],
    ],
  );
  t.same(
    countersFor(principal({ projectModels: {} }), dearIn),
    [],
    "another model's project limits do not apply",
  );
});
