import { z } from "zod";
import { busEnv, catalogueEnv, commonEnv, parseConfig, pricingEnv } from "@llmaas/config";

export const gatewayEnv = {
  ...commonEnv,
  ...busEnv,
  ...catalogueEnv,
  ...pricingEnv,
  HOST: z.string().default("127.0.0.1"),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /** Largest request body accepted; long-document prompts need room, unbounded bodies are a memory attack. */
  BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024),
  AUTH_TIMEOUT_MS: z.coerce.number().int().positive().default(2_000),
  /**
   * How long a verified API key is trusted without asking auth again; revocations end it sooner, on every gateway.
   * 0 asks auth on every request.
   */
  AUTH_CACHE_TTL_MS: z.coerce.number().int().min(0).default(30_000),
  AUTH_CACHE_MAX_ENTRIES: z.coerce.number().int().positive().default(100_000),
  /** How often the gateway tells auth which keys it served, for their `last_used_at`. */
  KEY_USAGE_REPORT_MS: z.coerce.number().int().positive().default(60_000),
  /** How long auth may take to answer an Administration API or operator request. */
  ADMIN_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  /**
   * Fastify's trustProxy: unset trusts no proxy (the client IP in the audit log is the socket's peer); "true", or a
   * comma-separated list of proxy addresses/CIDRs, when the gateway sits behind load balancers.
   */
  TRUST_PROXY: z
    .string()
    .optional()
    .transform((value) =>
      value === undefined || value === "false" ? false : value === "true" ? true : value,
    ),
  /**
   * How long the guardrail may take to screen a request's texts before the project's `on_timeout` decides
   * (docs/guardrail.md). Screening takes about a millisecond for a few thousand characters; this leaves room for a
   * 100,000-character document on a busy instance.
   */
  GUARDRAIL_TIMEOUT_MS: z.coerce.number().int().positive().default(1_000),
  /** How long a worker has to accept (or refuse) a request before the client gets a 503. */
  ACCEPT_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  /** A request still running after this long is cancelled and answered with a 504-class error. */
  REQUEST_TIMEOUT_MS: z.coerce.number().int().positive().default(600_000),
  /**
   * `enforced` admits every inference request on its key's limits and budgets (docs/quotas.md). `off` is for
   * measuring what enforcement costs (bench/quotas.ts) and for deployments that meter without limiting.
   */
  QUOTAS: z.enum(["enforced", "off"]).default("enforced"),
  /** How long auth may take to grant a quota lease; a request whose lease is not granted is refused (503). */
  QUOTA_LEASE_TIMEOUT_MS: z.coerce.number().int().positive().default(2_000),
  /**
   * A request whose worker reported no usage in band is settled from metering; if metering has recorded nothing after
   * this long, it is settled as having used nothing (its worker died with its usage). Bounds how long such a
   * reservation holds a limit (docs/quotas.md).
   */
  QUOTA_UNREPORTED_USAGE_WAIT_MS: z.coerce.number().int().positive().default(120_000),
  /**
   * How far V8 lets the heap grow past what its last full collection kept before it collects again, in percent (V8's
   * `--heap-growing-percent`). V8's own choice goes up to four times the live heap: under load a gateway streaming a
   * long export held ~130 MB of garbage that way (docs/usage-export.md). 0 leaves V8's choice.
   */
  HEAP_GROWING_PERCENT: z.coerce.number().int().min(0).max(300).default(50),
};

export type GatewayConfig = z.infer<z.ZodObject<typeof gatewayEnv>>;

export function loadGatewayConfig(env: NodeJS.ProcessEnv): GatewayConfig {
  return parseConfig("gateway", gatewayEnv, env);
}
