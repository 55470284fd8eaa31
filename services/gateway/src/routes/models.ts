import type { FastifyInstance } from "fastify";
import type { openai } from "@llmaas/contracts";
import type { Capability, Catalogue, CatalogueModel, LifecycleView } from "@llmaas/catalogue";
import { lifecycleHeaders, modelNotFound } from "../model-resolution.js";

/**
 * OpenAI's model object plus what a customer chooses a model by. OpenAI's schema allows extra properties, so the
 * official SDKs read it unchanged; `shutdown_date` is OpenAI's own field for the retirement day.
 */
export type ModelObject = openai.Model & {
  shutdown_date: string | null;
  family: string | null;
  capabilities: Capability[];
  context_length: number;
  languages: string[];
  license: string | null;
  ip_indemnified: boolean;
  lifecycle: LifecycleView;
  pricing: ModelPricingObject;
};

/**
 * What the model costs, in the platform's currency, lowercase as OpenAI's costs API writes it (`eur`). The catalogue
 * keeps exact decimals (at most 6 places), which JSON numbers show unchanged; metering bills from the same prices.
 */
export interface ModelPricingObject {
  currency: string;
  input_per_million: number;
  output_per_million: number;
  audio_per_minute: number;
}

export function toModelObject(
  model: CatalogueModel,
  lifecycle: LifecycleView,
  currency: string,
): ModelObject {
  return {
    id: model.id,
    object: "model",
    created: Math.floor(model.created.getTime() / 1000),
    owned_by: model.owned_by,
    shutdown_date:
      lifecycle.status === "deprecated"
        ? lifecycle.retires_on
        : lifecycle.status === "retired"
          ? lifecycle.retired_on
          : null,
    family: model.family,
    capabilities: model.capabilities,
    context_length: model.context_length,
    languages: model.languages,
    license: model.license,
    ip_indemnified: model.ip_indemnified,
    lifecycle,
    pricing: {
      currency: currency.toLowerCase(),
      input_per_million: Number(model.pricing.inputPerMillion),
      output_per_million: Number(model.pricing.outputPerMillion),
      audio_per_minute: Number(model.pricing.audioPerMinute),
    },
  };
}

/**
 * Retired models stay listed, with their status and replacement, so a client holding an old id can find out what
 * to use instead; requests to them get 410 `model_retired`. Prices are in `currency` (`CURRENCY`).
 */
export function registerModelRoutes(app: FastifyInstance, catalogue: Catalogue, currency: string): void {
  app.get("/v1/models", async (): Promise<{ object: "list"; data: ModelObject[] }> => {
    const now = new Date();
    return {
      object: "list",
      data: catalogue.models.map((model) =>
        toModelObject(model, catalogue.lifecycleAt(model, now), currency),
      ),
    };
  });

  app.get<{ Params: { id: string } }>("/v1/models/:id", async (request, reply): Promise<ModelObject> => {
    const model = catalogue.find(request.params.id);
    if (!model) throw modelNotFound(request.params.id);
    const lifecycle = catalogue.lifecycleAt(model, new Date());
    void reply.headers(lifecycleHeaders(lifecycle));
    return toModelObject(model, lifecycle, currency);
  });
}
