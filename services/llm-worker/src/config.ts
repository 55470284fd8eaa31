import { z } from "zod";
import { busEnv, catalogueEnv, commonEnv, modelIdList, parseConfig } from "@llmaas/config";

/**
 * Measured on a 2-core machine with the tiny demo model (bench/threads.ts): node-llama-cpp's default thread count
 * made generation ~700x slower than one thread, because llama.cpp's threads spin against each other and against
 * the other processes of the platform. One thread per context is the safe default; raise it per model in the
 * catalogue (runtime.threads) on machines with cores to spare.
 */
export const DEFAULT_THREADS = 1;

export const llmWorkerEnv = {
  ...commonEnv,
  ...busEnv,
  ...catalogueEnv,
  /** Comma-separated model ids to serve; empty serves every chat and embedding model in the catalogue. */
  LLM_MODELS: modelIdList,
  LLM_THREADS: z.coerce.number().int().positive().default(DEFAULT_THREADS),
  /** `auto` uses a GPU build of llama.cpp when one is installed and a GPU is present. */
  LLM_GPU: z.enum(["auto", "false"]).default("auto"),
  /** Where `hf:` model URIs are downloaded and cached. */
  LLM_MODELS_DIR: z.string().default("models"),
};

export type LlmWorkerConfig = z.infer<z.ZodObject<typeof llmWorkerEnv>>;

export function loadLlmWorkerConfig(env: NodeJS.ProcessEnv): LlmWorkerConfig {
  return parseConfig("llm-worker", llmWorkerEnv, env);
}
