import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import {
  addCalendarMonths,
  Lifecycle,
  MIN_DEPRECATION_MONTHS,
  statusAt,
  type LifecycleView,
} from "./lifecycle.js";
import { Pricing } from "./pricing.js";

export { addCalendarMonths, startOfDay, type LifecycleView } from "./lifecycle.js";
export { priceUsage, type ModelPricing } from "./pricing.js";

export const Capability = z.enum(["chat", "completion", "embeddings", "tools", "vision", "audio"]);
export type Capability = z.infer<typeof Capability>;

/** An hour: a 25 MB upload holds about that much speech at 48 kbit/s. */
export const DEFAULT_AUDIO_MAX_SECONDS = 3600;

/** The longest audio a model with the `audio` capability transcribes. */
export function maxAudioSeconds(model: { audio?: { max_seconds: number } | undefined }): number {
  return model.audio?.max_seconds ?? DEFAULT_AUDIO_MAX_SECONDS;
}

const ModelId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, "model ids use letters, digits, '.', '_', ':' and '-'");

const LanguageTag = z.string().refine((tag) => {
  try {
    Intl.getCanonicalLocales(tag);
    return true;
  } catch {
    return false;
  }
}, "not a BCP-47 language tag");

const ModelEntry = z.strictObject({
  id: ModelId,
  owned_by: z.string().min(1),
  // Descriptive fields are optional so that a catalogue written before them still loads; null means "not stated".
  /** The model line (e.g. `granite`), so clients can pick the newest of a family. */
  family: z.string().min(1).nullable().default(null),
  /** When the model joined the catalogue; `/v1/models` reports it as `created`. */
  created: z.coerce.date(),
  /** A GGUF path (relative to the catalogue file) or an `hf:` URI that node-llama-cpp resolves and caches. */
  source: z.string().min(1),
  capabilities: z.array(Capability).min(1),
  context_length: z.number().int().positive(),
  /** The languages the model is meant for; empty when nobody has said. */
  languages: z.array(LanguageTag).default([]),
  /** The weights' license, as the model card names it (e.g. `apache-2.0`). */
  license: z.string().min(1).nullable().default(null),
  /** Whether the model's provider indemnifies customers against IP claims; never claimed unless stated. */
  ip_indemnified: z.boolean().default(false),
  lifecycle: Lifecycle.default({ status: "active" }),
  /** What the model costs, in the platform's currency (`CURRENCY`); required, `{}` for a free model. */
  pricing: Pricing,
  /** Required of a model with the `embeddings` capability. */
  embeddings: z
    .strictObject({
      /** The length of the model's vectors; the worker checks it against the weights when it loads them. */
      dimensions: z.number().int().positive(),
      /** Trained Matryoshka-style (a prefix of a vector is an embedding too): clients may ask for fewer. */
      matryoshka: z.boolean().default(false),
    })
    .optional(),
  /** Settings of a model with the `audio` capability (a whisper.cpp model); defaults when left out. */
  audio: z
    .strictObject({
      /** Longer audio is refused with a 400 before it is transcribed; also bounds what a request may be billed. */
      max_seconds: z.number().int().positive().default(DEFAULT_AUDIO_MAX_SECONDS),
    })
    .optional(),
  runtime: z
    .strictObject({
      /** CPU threads for this model's context; unset means the worker's measured default. */
      threads: z.number().int().positive().optional(),
      /** Sequences per context: how many requests one worker generates for at once (for audio: contexts). */
      sequences: z.number().int().positive().default(4),
      batch_size: z.number().int().positive().optional(),
    })
    .prefault({}),
});

const CatalogueFile = z.strictObject({
  models: z.array(ModelEntry).min(1),
  aliases: z.record(z.string(), ModelId).default({}),
});

export type CatalogueModel = z.infer<typeof ModelEntry> & {
  /** `source` made absolute when it is a file path; `hf:` URIs are kept as they are. */
  resolvedSource: string;
};

/** Whether requests may still reach the model at `now`: everything but a retired model. */
export function isServable(model: CatalogueModel, now: Date): boolean {
  return statusAt(model.lifecycle, now) !== "retired";
}

/**
 * The models a worker loads: the ones `ids` names (a setting such as `LLM_MODELS`; each must be in the catalogue and
 * be one the worker serves), or, when it names none, every model the worker serves that is not retired.
 */
export function modelsToServe(
  catalogue: Catalogue,
  ids: readonly string[],
  worker: { setting: string; serves: (model: CatalogueModel) => boolean },
  now: Date = new Date(),
): CatalogueModel[] {
  if (ids.length === 0)
    return catalogue.models.filter((model) => worker.serves(model) && isServable(model, now));
  return ids.map((id) => {
    const entry = catalogue.find(id);
    if (!entry) throw new CatalogueError(`${worker.setting} names ${id}, which is not in the catalogue`);
    if (!worker.serves(entry))
      throw new CatalogueError(`${worker.setting} names ${id}, which this worker does not serve`);
    return entry;
  });
}

export class Catalogue {
  private readonly byId: Map<string, CatalogueModel>;
  private readonly aliases: Map<string, string>;

  constructor(models: CatalogueModel[], aliases: Record<string, string>) {
    this.byId = new Map(models.map((model) => [model.id, model]));
    this.aliases = new Map(Object.entries(aliases));
  }

  /** Every model, retired ones included, in catalogue order. */
  get models(): CatalogueModel[] {
    return [...this.byId.values()];
  }

  /** A model by id or alias, or undefined. */
  find(idOrAlias: string): CatalogueModel | undefined {
    return this.byId.get(this.aliases.get(idOrAlias) ?? idOrAlias);
  }

  lifecycleAt(model: CatalogueModel, now: Date): LifecycleView {
    const lifecycle = model.lifecycle;
    if (lifecycle.status === "active") return { status: "active" };
    const replacement = this.successorAt(lifecycle.replacement, now);
    if (lifecycle.status === "retired") return { ...lifecycle, replacement };
    if (statusAt(lifecycle, now) === "retired") {
      return {
        status: "retired",
        deprecated_on: lifecycle.deprecated_on,
        retired_on: lifecycle.retires_on,
        replacement,
      };
    }
    return { ...lifecycle, replacement };
  }

  /**
   * The first model from `replacement` on that is still served at `now`: a replacement may itself have retired
   * since the catalogue was written. The loader made every chain end at an active model.
   */
  private successorAt(replacement: string, now: Date): string {
    let id = replacement;
    for (;;) {
      const next = this.byId.get(id);
      if (!next || next.lifecycle.status === "active" || statusAt(next.lifecycle, now) !== "retired")
        return id;
      id = next.lifecycle.replacement;
    }
  }
}

export class CatalogueError extends Error {
  override readonly name = "CatalogueError";
}

/**
 * Refuses lifecycles that would strand a client: a notice shorter than the minimum, or a replacement chain that
 * does not end at an active model. Only what the file says is checked, never the clock, so a catalogue that loaded
 * once keeps loading as its dates pass.
 */
function checkLifecycles(
  models: z.infer<typeof ModelEntry>[],
  aliases: Record<string, string>,
  origin: string,
): void {
  const byId = new Map(models.map((model) => [model.id, model]));
  for (const model of models) {
    const lifecycle = model.lifecycle;
    if (lifecycle.status === "active") continue;
    if (lifecycle.status === "deprecated") {
      const earliest = addCalendarMonths(lifecycle.deprecated_on, MIN_DEPRECATION_MONTHS);
      if (lifecycle.retires_on < earliest) {
        throw new CatalogueError(
          `${origin}: model ${model.id} retires on ${lifecycle.retires_on}, less than ${MIN_DEPRECATION_MONTHS} ` +
            `calendar months after its deprecation on ${lifecycle.deprecated_on} (${earliest} at the earliest)`,
        );
      }
    }
    const chain = new Set([model.id]);
    let from = model.id;
    let replacement = lifecycle.replacement;
    for (;;) {
      const next = byId.get(replacement);
      if (!next) {
        throw new CatalogueError(
          `${origin}: model ${from} names replacement ${replacement}, which is not a model`,
        );
      }
      if (next.lifecycle.status === "retired") {
        throw new CatalogueError(
          `${origin}: model ${from} names replacement ${replacement}, which is retired`,
        );
      }
      if (next.lifecycle.status === "active") break;
      if (chain.has(next.id)) {
        throw new CatalogueError(`${origin}: the replacements of model ${model.id} loop back to ${next.id}`);
      }
      chain.add(next.id);
      from = next.id;
      replacement = next.lifecycle.replacement;
    }
  }
  for (const [alias, target] of Object.entries(aliases)) {
    if (byId.get(target)?.lifecycle.status === "retired") {
      throw new CatalogueError(`${origin}: alias ${alias} points to retired model ${target}`);
    }
  }
}

export function parseCatalogue(text: string, baseDir: string, origin = "catalogue"): Catalogue {
  const result = CatalogueFile.safeParse(parseYaml(text));
  if (!result.success) {
    const problems = result.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`).join("\n");
    throw new CatalogueError(`${origin} is invalid:\n${problems}`);
  }
  const { models, aliases } = result.data;
  const seen = new Set<string>();
  for (const model of models) {
    if (seen.has(model.id)) throw new CatalogueError(`${origin}: model id ${model.id} appears twice`);
    seen.add(model.id);
    if (model.capabilities.includes("embeddings") && !model.embeddings) {
      throw new CatalogueError(
        `${origin}: model ${model.id} has the embeddings capability but no embeddings.dimensions`,
      );
    }
  }
  for (const [alias, target] of Object.entries(aliases)) {
    if (seen.has(alias)) throw new CatalogueError(`${origin}: alias ${alias} shadows a model id`);
    if (!seen.has(target))
      throw new CatalogueError(`${origin}: alias ${alias} points to unknown model ${target}`);
  }
  checkLifecycles(models, aliases, origin);
  return new Catalogue(
    models.map((model) => ({
      ...model,
      resolvedSource:
        model.source.startsWith("hf:") || isAbsolute(model.source)
          ? model.source
          : resolve(baseDir, model.source),
    })),
    aliases,
  );
}

export async function loadCatalogue(path: string): Promise<Catalogue> {
  const absolute = resolve(path);
  return parseCatalogue(await readFile(absolute, "utf8"), dirname(absolute), absolute);
}
