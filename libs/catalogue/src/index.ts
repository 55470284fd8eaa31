import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";

export const Capability = z.enum(["chat", "completion", "embeddings", "tools", "vision", "audio"]);
export type Capability = z.infer<typeof Capability>;

const ModelId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, "model ids use letters, digits, '.', '_', ':' and '-'");

const ModelEntry = z.strictObject({
  id: ModelId,
  owned_by: z.string().min(1),
  /** When the model joined the catalogue; `/v1/models` reports it as `created`. */
  created: z.coerce.date(),
  /** A GGUF path (relative to the catalogue file) or an `hf:` URI that node-llama-cpp resolves and caches. */
  source: z.string().min(1),
  capabilities: z.array(Capability).min(1),
  context_length: z.number().int().positive(),
  runtime: z
    .strictObject({
      /** CPU threads for this model's context; unset means the worker's measured default. */
      threads: z.number().int().positive().optional(),
      /** Sequences per context: how many requests one worker generates for at once. */
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

export class Catalogue {
  private readonly byId: Map<string, CatalogueModel>;
  private readonly aliases: Map<string, string>;

  constructor(models: CatalogueModel[], aliases: Record<string, string>) {
    this.byId = new Map(models.map((model) => [model.id, model]));
    this.aliases = new Map(Object.entries(aliases));
  }

  get models(): CatalogueModel[] {
    return [...this.byId.values()];
  }

  /** A model by id or alias, or undefined. */
  find(idOrAlias: string): CatalogueModel | undefined {
    return this.byId.get(this.aliases.get(idOrAlias) ?? idOrAlias);
  }
}

export class CatalogueError extends Error {
  override readonly name = "CatalogueError";
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
  }
  for (const [alias, target] of Object.entries(aliases)) {
    if (seen.has(alias)) throw new CatalogueError(`${origin}: alias ${alias} shadows a model id`);
    if (!seen.has(target))
      throw new CatalogueError(`${origin}: alias ${alias} points to unknown model ${target}`);
  }
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
