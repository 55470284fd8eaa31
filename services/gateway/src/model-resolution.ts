import {
  startOfDay,
  type Capability,
  type Catalogue,
  type CatalogueModel,
  type LifecycleView,
} from "@llmaas/catalogue";
import { PlatformError } from "@llmaas/contracts";

export interface ResolvedModel {
  model: CatalogueModel;
  /** Deprecation notices to set on the response; empty unless the model is deprecated. */
  headers: Record<string, string>;
}

/** How refusals name each capability: "The model `x` does not support …". */
const CAPABILITY_NAMES: Record<Capability, string> = {
  chat: "chat completions",
  completion: "text completions",
  embeddings: "embeddings",
  tools: "tool calls",
  vision: "image inputs",
  audio: "audio",
};

export function modelNotFound(id: string): PlatformError {
  return new PlatformError(
    "model_not_found",
    `The model \`${id}\` does not exist or you do not have access to it.`,
    "model",
  );
}

/**
 * A key's `allowed_models` names ids or aliases; an alias allows the model it resolves to. An entry the catalogue no
 * longer knows allows nothing.
 */
function checkAllowed(catalogue: Catalogue, model: CatalogueModel, allowedModels: string[] | null): void {
  if (allowedModels === null) return;
  if (allowedModels.some((entry) => catalogue.find(entry)?.id === model.id)) return;
  throw new PlatformError(
    "permission_denied",
    `The model \`${model.id}\` is not allowed for this API key: its allowed_models are ` +
      `${allowedModels.map((entry) => `\`${entry}\``).join(", ")}.`,
    "model",
  );
}

/**
 * The model an inference request names (id or alias), checked against what the caller's key may use and for the
 * request's capability. A retired model is refused with `model_retired` before its capabilities are looked at: its
 * replacement is the useful answer.
 */
export function resolveModel(
  catalogue: Catalogue,
  idOrAlias: string,
  capability: Capability,
  allowedModels: string[] | null,
  now: Date = new Date(),
): ResolvedModel {
  const model = catalogue.find(idOrAlias);
  if (!model) throw modelNotFound(idOrAlias);
  checkAllowed(catalogue, model, allowedModels);
  const lifecycle = catalogue.lifecycleAt(model, now);
  if (lifecycle.status === "retired") {
    throw new PlatformError(
      "model_retired",
      `The model \`${model.id}\` was retired on ${lifecycle.retired_on}; use \`${lifecycle.replacement}\` ` +
        "instead.",
      "model",
    );
  }
  if (!model.capabilities.includes(capability)) {
    throw new PlatformError(
      "invalid_request",
      `The model \`${model.id}\` does not support ${CAPABILITY_NAMES[capability]}.`,
      "model",
    );
  }
  return { model, headers: lifecycleHeaders(lifecycle) };
}

/**
 * For a deprecated model: when it was deprecated (`Deprecation`, RFC 9745), when it stops answering (`Sunset`,
 * RFC 8594) and what to use instead (`Link` rel="successor-version", RFC 8288), so clients that log response
 * headers notice without reading the catalogue.
 */
export function lifecycleHeaders(lifecycle: LifecycleView): Record<string, string> {
  if (lifecycle.status !== "deprecated") return {};
  return {
    deprecation: `@${Math.floor(startOfDay(lifecycle.deprecated_on).getTime() / 1000)}`,
    sunset: startOfDay(lifecycle.retires_on).toUTCString(),
    link: `</v1/models/${encodeURIComponent(lifecycle.replacement)}>; rel="successor-version"`,
  };
}
