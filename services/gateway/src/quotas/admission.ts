import type { FastifyReply } from "fastify";
import type { CatalogueModel } from "@llmaas/catalogue";
import { PlatformError, type ApiKeyPrincipal } from "@llmaas/contracts";
import { actualCost, amountOf, countersFor, maximumCost, type RequestCost } from "./counters.js";
import { QuotaRefused, type Lease, type Reservation } from "./ledger.js";
import type { Quotas } from "./index.js";
import type { SettlementPart } from "./settlement.js";

/**
 * The most tokens a request's input can be: one per byte of its JSON (a token covers at least one byte of text, and
 * the JSON's quotes, keys and commas outweigh the chat template's markers), plus room for the template's opening
 * and closing tokens. Deliberately high: what is not used goes back when the request settles.
 */
const TEMPLATE_TOKENS = 16;

export function inputTokenBound(input: unknown): number {
  return Buffer.byteLength(JSON.stringify(input)) + TEMPLATE_TOKENS;
}

/**
 * Tokens counted at admission, as OpenAI counts them: the input's tokens plus the most the request may generate.
 * Input and output together never exceed the model's context, whatever `max_tokens` says.
 */
export function generationCost(
  model: CatalogueModel,
  inputBound: number,
  maxOutput: number | null,
): RequestCost {
  const context = model.context_length;
  const input = Math.min(inputBound, context);
  const output = Math.min(maxOutput ?? context, context);
  return maximumCost(model, { inputTokens: input, outputTokens: output, totalTokens: context });
}

/** An embedding request generates nothing; each input is at most the model's context long. */
export function embeddingCost(model: CatalogueModel, inputBounds: readonly number[]): RequestCost {
  const tokens = inputBounds.reduce((sum, bound) => sum + Math.min(bound, model.context_length), 0);
  return maximumCost(model, { inputTokens: tokens, outputTokens: 0, totalTokens: tokens });
}

/**
 * A transcription generates no tokens; until its audio is decoded its length is unknown, so it reserves the
 * longest the model accepts (`audio.max_seconds`). The upload's bytes count against the audio megabytes limit.
 */
export function transcriptionCost(
  model: CatalogueModel,
  audioBytes: number,
  maxSeconds: number,
): RequestCost {
  return maximumCost(model, {
    inputTokens: 0,
    outputTokens: 0,
    totalTokens: 0,
    audioBytes,
    audioSeconds: maxSeconds,
  });
}

export function addCosts(costs: readonly RequestCost[]): RequestCost {
  return costs.reduce(
    (sum, cost) => ({
      requests: 1n,
      tokens: sum.tokens + cost.tokens,
      pico: sum.pico + cost.pico,
      audioBytes: sum.audioBytes + cost.audioBytes,
    }),
    { requests: 1n, tokens: 0n, pico: 0n, audioBytes: 0n },
  );
}

/** OpenAI's reset format: "1s", "17.25s", "6m0s". */
export function resetIn(seconds: number): string {
  const rounded = Math.max(0, Math.round(seconds * 1000) / 1000);
  if (rounded < 60) return `${rounded}s`;
  const minutes = Math.floor(rounded / 60);
  const rest = Math.round((rounded - minutes * 60) * 1000) / 1000;
  if (minutes < 60) return `${minutes}m${rest}s`;
  return `${Math.floor(minutes / 60)}h${minutes % 60}m${rest}s`;
}

function rateLimitHeaders(leases: { requests: Lease | null; tokens: Lease | null }, nowMs: number) {
  const headers: Record<string, string> = {};
  for (const kind of ["requests", "tokens"] as const) {
    const lease = leases[kind];
    if (!lease) continue;
    headers[`x-ratelimit-limit-${kind}`] = lease.spec.limit.toString();
    headers[`x-ratelimit-remaining-${kind}`] = lease.remaining.toString();
    headers[`x-ratelimit-reset-${kind}`] = resetIn(lease.windowEnd - nowMs / 1000);
  }
  return headers;
}

function describeAmount(lease: Lease, amount: bigint): string {
  if (lease.spec.unit !== "pico") return amount.toString();
  // Cents of the currency, rounded up: a refusal never understates what was asked.
  const cents = (amount + 9_999_999_999n) / 10_000_000_000n;
  return `${cents} cents`;
}

/** The 429 of a refused request, with OpenAI's message, and headers that tell the SDKs whether to wait and retry. */
function refusal(reply: FastifyReply, refused: QuotaRefused, nowMs: number): PlatformError {
  const { lease, demand } = refused;
  const waitSeconds = Math.max(1, Math.ceil(lease.windowEnd - nowMs / 1000));
  const used = lease.spec.limit - lease.remaining;
  const figures =
    `Limit ${describeAmount(lease, lease.spec.limit)}, Used ${describeAmount(lease, used)}, ` +
    `Requested ${describeAmount(lease, demand.amount)}.`;
  if (lease.spec.kind === "rate_limit") {
    const headers = rateLimitHeaders(
      {
        requests: lease.spec.header === "requests" ? lease : null,
        tokens: lease.spec.header === "tokens" ? lease : null,
      },
      nowMs,
    );
    void reply.headers({
      ...headers,
      "retry-after": String(waitSeconds),
      "retry-after-ms": String(Math.max(0, Math.ceil(lease.windowEnd * 1000 - nowMs))),
    });
    return new PlatformError(
      "rate_limit_exceeded",
      `Rate limit reached on ${lease.spec.description}: ${figures} Please try again in ${resetIn(waitSeconds)}.`,
    );
  }
  // A budget does not come back by retrying within seconds: the SDKs are told not to.
  void reply.headers({ "x-should-retry": "false" });
  return new PlatformError(
    "insufficient_quota",
    `You exceeded the ${lease.spec.description}: ${figures} It resets at ` +
      `${new Date(lease.windowEnd * 1000).toISOString()}.`,
  );
}

export interface Admission {
  reservation: Reservation;
  /**
   * Settles the reservation once every part's usage is known, from its worker or from metering: called once, with
   * every model request the HTTP request sent (none if it sent none).
   */
  settleWhen(parts: readonly SettlementPart[]): void;
  /** The request was not made after all: everything reserved goes back, the request itself included. */
  release(): void;
}

/** `admit` where quotas are enforced; null (nothing to settle) where they are switched off. */
export async function admitIfEnforced(
  quotas: Quotas | null,
  reply: FastifyReply,
  principal: ApiKeyPrincipal,
  model: CatalogueModel,
  cost: RequestCost,
): Promise<Admission | null> {
  return quotas ? admit(quotas, reply, principal, model, cost) : null;
}

/**
 * Admits one inference request on every counter that applies to its key and model, or throws the 429 that names
 * the first counter it would pass. On admission, OpenAI's `x-ratelimit-*` headers go on the reply.
 */
export async function admit(
  quotas: Quotas,
  reply: FastifyReply,
  principal: ApiKeyPrincipal,
  model: CatalogueModel,
  cost: RequestCost,
  nowMs = Date.now(),
): Promise<Admission> {
  const demands = countersFor(principal, model)
    .map((spec) => ({ spec, amount: amountOf(spec, cost) }))
    .filter((demand) => demand.amount > 0n);
  let reservation: Reservation;
  try {
    reservation = await quotas.ledger.admit(demands, cost, nowMs);
  } catch (error) {
    if (error instanceof QuotaRefused) throw refusal(reply, error, nowMs);
    throw error;
  }
  void reply.headers(rateLimitHeaders(reservation.headerLeases(), nowMs));
  return {
    reservation,
    settleWhen: (parts) => {
      quotas.settler
        .usageOf(parts)
        .then((usage) => reservation.settle(actualCost(model, usage, cost)))
        .catch((err: unknown) => quotas.logger.error({ err }, "quota reservation not settled"));
    },
    release: () => reservation.settle({ requests: 0n, tokens: 0n, pico: 0n, audioBytes: 0n }),
  };
}
