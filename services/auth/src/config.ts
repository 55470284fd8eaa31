import { z } from "zod";
import { busEnv, commonEnv, databaseEnv, parseConfig } from "@llmaas/config";

export const authEnv = {
  ...commonEnv,
  ...busEnv,
  ...databaseEnv,
  /** Keys are stored as HMAC-SHA256 under this secret: a stolen table alone cannot be used or brute-forced. */
  AUTH_KEY_SECRET: z.string().min(32, "AUTH_KEY_SECRET must be at least 32 characters"),
};

export type AuthConfig = z.infer<z.ZodObject<typeof authEnv>>;

export function loadAuthConfig(env: NodeJS.ProcessEnv): AuthConfig {
  return parseConfig("auth", authEnv, env);
}
