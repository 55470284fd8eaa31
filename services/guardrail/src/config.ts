import type { z } from "zod";
import { busEnv, commonEnv, parseConfig } from "@llmaas/config";

export const guardrailEnv = {
  ...commonEnv,
  ...busEnv,
};

export type GuardrailConfig = z.infer<z.ZodObject<typeof guardrailEnv>>;

export function loadGuardrailConfig(env: NodeJS.ProcessEnv): GuardrailConfig {
  return parseConfig("guardrail", guardrailEnv, env);
}
