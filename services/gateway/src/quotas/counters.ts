import type { CatalogueModel } from "@llmaas/catalogue";
import { priceUsage } from "@llmaas/catalogue";
import type { ApiKeyPrincipal } from "@llmaas/contracts";

/**
 * Which counters an inference request draws on, each with its limit, window and how much the request takes from it
 * (docs/quotas.md). Windows are calendar ones, in UTC: a minute, a day, a month.
 */

export type QuotaInterval = "minute" | "day" | "month";

/** `rate_limit`: wait for the window to turn (429 `rate_limit_exceeded`); `quota`: a budget spent (`insufficient_quota`). */
export type QuotaKind = "rate_limit" | "quota";

export interface CounterSpec {
  counter: string;
  interval: QuotaInterval;
  limit: bigint;
  kind: QuotaKind;
  /** Which of OpenAI's `x-ratelimit-*` header pairs the counter speaks for, if any. */
  header: "requests" | "tokens" | null;
  /** For refusals: "requests per minute (RPM) of project proj_… for tiny-chat". */
  description: string;
  /** How amounts read in a refusal: money in cents of the currency, the rest as counted. */
  unit: "requests" | "tokens" | "pico" | "bytes";
}

export interface Demand {
  spec: CounterSpec;
  amount: bigint;
}

/** What one request may use at most, and what it did use: the same shape, reserved first and settled after. */
export interface RequestCost {
  requests: bigint;
  tokens: bigint;
  pico: bigint;
  audioBytes: bigint;
}

/** A spend limit is in cents; money is counted in pico-units (10^-12), as metering prices it. */
const PICO_PER_CENT = 10_000_000_000n;
/** `max_audio_megabytes_per_1_minute` counts decimal megabytes of uploaded audio. */
const BYTES_PER_MEGABYTE = 1_000_000n;

export interface Window {
  start: number;
  end: number;
}

/** The calendar window (unix seconds) that holds `nowMs`. */
export function windowOf(interval: QuotaInterval, nowMs: number): Window {
  const now = new Date(nowMs);
  switch (interval) {
    case "minute": {
      const start = Math.floor(nowMs / 60_000) * 60;
      return { start, end: start + 60 };
    }
    case "day": {
      const start = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) / 1000;
      return { start, end: start + 86_400 };
    }
    case "month": {
      const start = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1) / 1000;
      return { start, end: Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1) / 1000 };
    }
  }
}

/**
 * The most a request can cost: at most `inputTokens` in, `outputTokens` out and `totalTokens` together. The money
 * bound fills the dearer side first, so it holds whichever way the request splits its tokens.
 */
export function maximumCost(
  model: CatalogueModel,
  bound: {
    inputTokens: number;
    outputTokens: number;
    totalTokens: number;
    audioBytes?: number;
    audioSeconds?: number;
  },
): RequestCost {
  const total = Math.min(bound.totalTokens, bound.inputTokens + bound.outputTokens);
  const outputFirst = model.pricing.outputPicoPerToken >= model.pricing.inputPicoPerToken;
  const output = outputFirst
    ? Math.min(bound.outputTokens, total)
    : total - Math.min(bound.inputTokens, total);
  const input = total - output;
  const price = priceUsage(model.pricing, {
    inputTokens: input,
    outputTokens: output,
    audioSeconds: bound.audioSeconds ?? 0,
  });
  return {
    requests: 1n,
    tokens: BigInt(total),
    pico: price.inputPico + price.outputPico + price.audioPico,
    audioBytes: BigInt(bound.audioBytes ?? 0),
  };
}

/** What a finished request cost, from the usage its worker reported (and metering records). */
export function actualCost(
  model: CatalogueModel,
  usage: { promptTokens: number; completionTokens: number; audioSeconds: number },
  reserved: RequestCost,
): RequestCost {
  const price = priceUsage(model.pricing, {
    inputTokens: usage.promptTokens,
    outputTokens: usage.completionTokens,
    audioSeconds: usage.audioSeconds,
  });
  return {
    requests: 1n,
    tokens: BigInt(usage.promptTokens + usage.completionTokens),
    pico: price.inputPico + price.outputPico + price.audioPico,
    audioBytes: reserved.audioBytes,
  };
}

export function amountOf(spec: CounterSpec, cost: RequestCost): bigint {
  switch (spec.unit) {
    case "requests":
      return cost.requests;
    case "tokens":
      return cost.tokens;
    case "pico":
      return cost.pico;
    case "bytes":
      return cost.audioBytes;
  }
}

/** Every counter that applies to a request of this key on this model. */
export function countersFor(principal: ApiKeyPrincipal, model: CatalogueModel): CounterSpec[] {
  const { limits } = principal;
  const key = `key ${principal.keyId}`;
  const project = `project ${principal.projectId}`;
  const specs: CounterSpec[] = [];
  const add = (spec: Omit<CounterSpec, "limit">, limit: number | null): void => {
    if (limit !== null) specs.push({ ...spec, limit: BigInt(limit) });
  };

  add(
    {
      counter: `key:${principal.keyId}:rpm`,
      interval: "minute",
      kind: "rate_limit",
      header: "requests",
      description: `requests per min (RPM) of API ${key}`,
      unit: "requests",
    },
    limits.key.maxRequestsPer1Minute,
  );
  add(
    {
      counter: `key:${principal.keyId}:tpm`,
      interval: "minute",
      kind: "rate_limit",
      header: "tokens",
      description: `tokens per min (TPM) of API ${key}`,
      unit: "tokens",
    },
    limits.key.maxTokensPer1Minute,
  );
  const budget = limits.key.tokenBudget;
  if (budget) {
    add(
      {
        counter: `key:${principal.keyId}:budget:${budget.interval}`,
        interval: budget.interval,
        kind: "quota",
        header: null,
        description: `token budget per ${budget.interval} of API ${key}`,
        unit: "tokens",
      },
      budget.limit,
    );
  }

  const modelLimits = limits.projectModels[model.id];
  if (modelLimits) {
    const scope = `project:${principal.projectId}:model:${model.id}`;
    add(
      {
        counter: `${scope}:rpm`,
        interval: "minute",
        kind: "rate_limit",
        header: "requests",
        description: `requests per min (RPM) of ${project} for ${model.id}`,
        unit: "requests",
      },
      modelLimits.maxRequestsPer1Minute,
    );
    add(
      {
        counter: `${scope}:tpm`,
        interval: "minute",
        kind: "rate_limit",
        header: "tokens",
        description: `tokens per min (TPM) of ${project} for ${model.id}`,
        unit: "tokens",
      },
      modelLimits.maxTokensPer1Minute,
    );
    add(
      {
        counter: `${scope}:rpd`,
        interval: "day",
        kind: "rate_limit",
        header: null,
        description: `requests per day (RPD) of ${project} for ${model.id}`,
        unit: "requests",
      },
      modelLimits.maxRequestsPer1Day,
    );
    const audioMegabytes = modelLimits.maxAudioMegabytesPer1Minute;
    if (audioMegabytes !== null) {
      specs.push({
        counter: `${scope}:audio`,
        interval: "minute",
        kind: "rate_limit",
        header: null,
        description: `audio megabytes per min of ${project} for ${model.id}`,
        unit: "bytes",
        limit: BigInt(audioMegabytes) * BYTES_PER_MEGABYTE,
      });
    }
  }

  if (limits.projectSpendLimitCents !== null) {
    specs.push({
      counter: `project:${principal.projectId}:spend`,
      interval: "month",
      kind: "quota",
      header: null,
      description: `hard spend limit of ${project} for this month`,
      unit: "pico",
      limit: BigInt(limits.projectSpendLimitCents) * PICO_PER_CENT,
    });
  }
  if (limits.organizationSpendLimitCents !== null) {
    specs.push({
      counter: `organization:${principal.organizationId}:spend`,
      interval: "month",
      kind: "quota",
      header: null,
      description: "hard spend limit of the organization for this month",
      unit: "pico",
      limit: BigInt(limits.organizationSpendLimitCents) * PICO_PER_CENT,
    });
  }
  return specs;
}
