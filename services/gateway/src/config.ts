import { z } from "zod";
import { busEnv, catalogueEnv, commonEnv, parseConfig } from "@llmaas/config";

export const gatewayEnv = {
  ...commonEnv,
  ...busEnv,
  ...catalogueEnv,
  HOST: z.string().default("127.0.0.1"),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /** Largest request body accepted; long-document prompts need room, unbounded bodies are a memory attack. */
  BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024),
  AUTH_TIMEOUT_MS: z.coerce.number().int().positive().default(2_000),
  /** How long a worker has to accept (or refuse) a request before the client gets a 503. */
  ACCEPT_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  /** A request still running after this long is cancelled and answered with a 504-class error. */
  REQUEST_TIMEOUT_MS: z.coerce.number().int().positive().default(600_000),
};

export type GatewayConfig = z.infer<z.ZodObject<typeof gatewayEnv>>;

export function loadGatewayConfig(env: NodeJS.ProcessEnv): GatewayConfig {
  return parseConfig("gateway", gatewayEnv, env);
}
