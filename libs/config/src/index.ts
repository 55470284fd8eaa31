import { z } from "zod";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/**
 * Parses a service's environment once, at start-up. A bad or missing variable stops the service with one message
 * that names every problem, instead of failing later on first use.
 */
export function parseConfig<Shape extends z.ZodRawShape>(
  service: string,
  shape: Shape,
  env: NodeJS.ProcessEnv,
): z.infer<z.ZodObject<Shape>> {
  const result = z.object(shape).safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues
    .map((issue) => `  ${issue.path.join(".") || "(environment)"}: ${issue.message}`)
    .join("\n");
  throw new ConfigError(`${service}: invalid configuration\n${problems}`);
}

/** Variables more than one service reads, each defined once so they parse the same everywhere. */
export const commonEnv = {
  NATS_URL: z.string().min(1).default("nats://127.0.0.1:4222"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** Unique per process: names the instance in logs, traces and usage records. */
  INSTANCE_ID: z.string().min(1).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
  /** How often metrics are pushed to the OTLP endpoint (the standard variable's name, in milliseconds). */
  OTEL_METRIC_EXPORT_INTERVAL_MS: z.coerce.number().int().positive().default(60_000),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().positive().default(10_000),
} as const;

export const busEnv = {
  /**
   * Prefixes every subject and stream name, so several platforms (or test runs) can share one NATS server without
   * seeing each other's traffic. Empty in a normal deployment.
   */
  BUS_NAMESPACE: z
    .string()
    .regex(/^[A-Za-z0-9_-]*$/, "BUS_NAMESPACE is one subject token: letters, digits, '_' and '-'")
    .default(""),
} as const;

export const databaseEnv = {
  DATABASE_URL: z.string().min(1, "DATABASE_URL is required (postgres://user@host:port/database)"),
  DATABASE_POOL_SIZE: z.coerce.number().int().positive().default(10),
} as const;

/** A comma-separated list of model ids (`LLM_MODELS`, `AUDIO_MODELS`); empty means "every model this service serves". */
export const modelIdList = z
  .string()
  .default("")
  .transform((value) =>
    value
      .split(",")
      .map((id) => id.trim())
      .filter(Boolean),
  );

export const catalogueEnv = {
  CATALOGUE_PATH: z.string().min(1).default("infra/catalogue.yaml"),
} as const;

export const pricingEnv = {
  /**
   * The platform's currency: the catalogue's prices are in it, and every cost is reported in it. Changing it does
   * not convert the catalogue's numbers, so change both together.
   */
  CURRENCY: z
    .string()
    .regex(/^[A-Z]{3}$/, "CURRENCY is an ISO 4217 code such as EUR")
    .default("EUR"),
} as const;
