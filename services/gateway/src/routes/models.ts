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
};

export function toModelObject(model: CatalogueModel, lifecycle: LifecycleView): ModelObject {
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
  };
}

/**
 * Retired models stay listed, with their status and replacement, so a client holding an old id can find out what
 * to use instead; requests to them get 410 `model_retired`.
 */
export function registerModelRoutes(app: FastifyInstance, catalogue: Catalogue): void {
  app.get("/v1/models", async (): Promise<{ object: "list"; data: ModelObject[] }> => {
    const now = new Date();
    return {
      object: "list",
      data: catalogue.models.map((model) => toModelObject(model, catalogue.lifecycleAt(model, now))),
    };
  });

  app.get<{ Params: { id: string } }>("/v1/models/:id", async (request, reply): Promise<ModelObject> => {
    const model = catalogue.find(request.params.id);
    if (!model) throw modelNotFound(request.params.id);
    const lifecycle = catalogue.lifecycleAt(model, new Date());
    void reply.headers(lifecycleHeaders(lifecycle));
    return toModelObject(model, lifecycle);
  });
}
