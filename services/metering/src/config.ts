import { z } from "zod";
import { busEnv, commonEnv, databaseEnv, parseConfig } from "@llmaas/config";

export const meteringEnv = {
  ...commonEnv,
  ...busEnv,
  ...databaseEnv,
  /** Usage events written per transaction. */
  METERING_BATCH_SIZE: z.coerce.number().int().positive().max(10_000).default(500),
};

export type MeteringConfig = z.infer<z.ZodObject<typeof meteringEnv>>;

export function loadMeteringConfig(env: NodeJS.ProcessEnv): MeteringConfig {
  return parseConfig("metering", meteringEnv, env);
}
