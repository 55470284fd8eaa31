import { priceUsage, type Catalogue } from "@llmaas/catalogue";
import { GUARDRAIL_USAGE_MODEL, type UsageEvent } from "@llmaas/contracts";
import type { PricedUsageEvent } from "./record.js";

export class UnpricedModelError extends Error {
  override readonly name = "UnpricedModelError";
}

/**
 * Prices an event with the catalogue metering holds now: the price in force when the event is recorded. The prices
 * are stored with the event, so a later change of the catalogue never rewrites a past cost.
 */
export function priceEvent(catalogue: Catalogue, currency: string, event: UsageEvent): PricedUsageEvent {
  if (event.operation === "guardrail.screen" && event.model === GUARDRAIL_USAGE_MODEL) {
    // Screening has no catalogue model and no price yet: metered in inputs, at no cost.
    return {
      event,
      currency,
      prices: { input: 0n, output: 0n, audio: 0n },
      costs: { input: 0n, output: 0n, audio: 0n },
    };
  }
  const model = catalogue.find(event.model);
  if (!model) {
    throw new UnpricedModelError(`model ${event.model} is not in the catalogue, so it has no price`);
  }
  const { pricing } = model;
  const costs = priceUsage(pricing, {
    inputTokens: event.promptTokens,
    outputTokens: event.completionTokens,
    audioSeconds: event.audioSeconds,
  });
  return {
    event,
    currency,
    prices: {
      input: pricing.inputPicoPerToken,
      output: pricing.outputPicoPerToken,
      audio: pricing.audioPicoPerMinute,
    },
    costs: { input: costs.inputPico, output: costs.outputPico, audio: costs.audioPico },
  };
}
