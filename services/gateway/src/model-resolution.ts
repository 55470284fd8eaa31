import {
  startOfDay,
  type Capability,
  type Catalogue,
  type CatalogueModel,
  type LifecycleView,
} from "@llmaas/catalogue";
import { PlatformError, type ApiKeyPrincipal } from "@llmaas/contracts";

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

/** What decides which models a key may call: its own `allowed_models` and its project's model permissions. */
export type ModelAccess = Pick<ApiKeyPrincipal, "allowedModels"> & {
  limits: Pick<ApiKeyPrincipal["limits"], "projectModelPermissions">;
};

/** Whether a list of ids or aliases names the model: an alias names the model it resolves to. */
function names(catalogue: Catalogue, entries: string[], model: CatalogueModel): boolean {
  return entries.some((entry) => catalogue.find(entry)?.id === model.id);
}

const listed = (entries: string[]) => entries.map((entry) => `\`${entry}\``).join(", ");

function refused(model: CatalogueModel, why: string): PlatformError {
  return new PlatformError("permission_denied", `The model \`${model.id}\` is not allowed ${why}.`, "model");
}

/**
 * The project's model permissions first (they bound every key of the project), then the key's `allowed_models`.
 * An entry the catalogue no longer knows names nothing: it allows nothing, and denies nothing.
 */
function checkAllowed(catalogue: Catalogue, model: CatalogueModel, access: ModelAccess): void {
  const permissions = access.limits.projectModelPermissions;
  if (permissions?.mode === "allow_list" && !names(catalogue, permissions.modelIds, model)) {
    throw refused(
      model,
      permissions.modelIds.length === 0
        ? "in this project: the project's allow list (model_permissions) is empty"
        : `in this project: it is not on the project's allow list (model_permissions: ${listed(permissions.modelIds)})`,
    );
  }
  if (permissions?.mode === "deny_list" && names(catalogue, permissions.modelIds, model)) {
    throw refused(
      model,
      `in this project: it is on the project's deny list (model_permissions: ${listed(permissions.modelIds)})`,
    );
  }
  const { allowedModels } = access;
  if (allowedModels !== null && !names(catalogue, allowedModels, model)) {
    throw refused(
      model,
      `for this API key: it is not in the key's allowed_models (${listed(allowedModels)})`,
    );
  }
}

/**
 * The model an inference request names (id or alias), checked against what the caller's key and project may use and
 * for the request's capability. A retired model is refused with `model_retired` before its capabilities are looked at: its
 * replacement is the useful answer.
 */
export function resolveModel(
  catalogue: Catalogue,
  idOrAlias: string,
  capability: Capability,
  access: ModelAccess,
  now: Date = new Date(),
): ResolvedModel {
  const model = catalogue.find(idOrAlias);
  if (!model) throw modelNotFound(idOrAlias);
  checkAllowed(catalogue, model, access);
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
