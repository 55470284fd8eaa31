import type { FastifyInstance } from "fastify";
import { PlatformError, type openai } from "@llmaas/contracts";
import type { Catalogue, CatalogueModel } from "@llmaas/catalogue";

export function toOpenAIModel(model: CatalogueModel): openai.Model {
  return {
    id: model.id,
    object: "model",
    created: Math.floor(model.created.getTime() / 1000),
    owned_by: model.owned_by,
  };
}

export function modelNotFound(id: string): PlatformError {
  return new PlatformError(
    "model_not_found",
    `The model \`${id}\` does not exist or you do not have access to it.`,
    "model",
  );
}

export function registerModelRoutes(app: FastifyInstance, catalogue: Catalogue): void {
  app.get("/v1/models", async (): Promise<openai.ModelList> => ({
    object: "list",
    data: catalogue.models.map(toOpenAIModel),
  }));

  app.get<{ Params: { id: string } }>("/v1/models/:id", async (request): Promise<openai.Model> => {
    const model = catalogue.find(request.params.id);
    if (!model) throw modelNotFound(request.params.id);
    return toOpenAIModel(model);
  });
}
