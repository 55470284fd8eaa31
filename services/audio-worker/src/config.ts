import { z } from "zod";
import { busEnv, catalogueEnv, commonEnv, modelIdList, parseConfig } from "@llmaas/config";

export const audioWorkerEnv = {
  ...commonEnv,
  ...busEnv,
  ...catalogueEnv,
  /** Comma-separated model ids to serve; empty serves every audio model in the catalogue. */
  AUDIO_MODELS: modelIdList,
  /**
   * whisper.cpp threads per transcription when the catalogue sets none (runtime.threads). One, as for llama.cpp
   * (services/llm-worker/src/config.ts): on a shared 2-core machine more threads spin against each other.
   */
  AUDIO_THREADS: z.coerce.number().int().positive().default(1),
  /** The decoder: Debian's ffmpeg (docs/audio-decoding.md), fed and read through pipes only. */
  FFMPEG_PATH: z.string().default("ffmpeg"),
};

export type AudioWorkerConfig = z.infer<z.ZodObject<typeof audioWorkerEnv>>;

export function loadAudioWorkerConfig(env: NodeJS.ProcessEnv): AudioWorkerConfig {
  return parseConfig("audio-worker", audioWorkerEnv, env);
}
