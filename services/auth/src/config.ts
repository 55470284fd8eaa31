import { z } from "zod";
import { GuardrailMode, GuardrailOnTimeout } from "@llmaas/contracts";
import { busEnv, catalogueEnv, commonEnv, ConfigError, databaseEnv, parseConfig } from "@llmaas/config";

export const authEnv = {
  ...commonEnv,
  ...busEnv,
  ...databaseEnv,
  /** The models a project's rate limits are listed and carried for. */
  ...catalogueEnv,
  /** Secrets are stored as HMAC-SHA256 under this key: a stolen table alone cannot be used or brute-forced. */
  AUTH_KEY_SECRET: z.string().min(32, "AUTH_KEY_SECRET must be at least 32 characters"),
  /** The platform operator's bearer token for `/v1/operator/...`; or give its SHA-256 instead. */
  OPERATOR_TOKEN: z.string().min(32, "OPERATOR_TOKEN must be at least 32 characters").optional(),
  OPERATOR_TOKEN_SHA256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, "OPERATOR_TOKEN_SHA256 is the hex SHA-256 of the token")
    .optional(),
  /** Leeway on an ID token's `exp` and `nbf`, for clocks that disagree a little. */
  OIDC_CLOCK_TOLERANCE_SECONDS: z.coerce.number().int().min(0).max(300).default(30),
  /** An unknown `kid` refetches the issuer's keys at most this often, so forged tokens cannot hammer the issuer. */
  OIDC_JWKS_COOLDOWN_MS: z.coerce.number().int().min(0).default(30_000),
  OIDC_JWKS_TIMEOUT_MS: z.coerce.number().int().positive().default(5_000),
  /**
   * A project's rate limits for each model unless it set its own (`/projects/{p}/rate_limits`). Generous, so that
   * they stop a runaway client rather than shape normal traffic; the per-day and audio limits are none when unset.
   */
  DEFAULT_MAX_REQUESTS_PER_1_MINUTE: z.coerce.number().int().positive().default(10_000),
  DEFAULT_MAX_TOKENS_PER_1_MINUTE: z.coerce.number().int().positive().default(10_000_000),
  DEFAULT_MAX_REQUESTS_PER_1_DAY: z.coerce.number().int().positive().optional(),
  DEFAULT_MAX_AUDIO_MEGABYTES_PER_1_MINUTE: z.coerce.number().int().positive().optional(),
  /**
   * The guardrail policy of a project that set none (`/projects/{p}/guardrail`, docs/guardrail.md): prompts found to
   * be injections or jailbreaks are refused. The threshold is the score at which the guardrail's figures on its
   * development set hold (services/guardrail/src/detection); on_timeout `allow` keeps the platform serving when no
   * guardrail answers, and marks such responses `x-guardrail-unscreened`.
   */
  GUARDRAIL_DEFAULT_MODE: GuardrailMode.default("block"),
  GUARDRAIL_DEFAULT_THRESHOLD: z.coerce.number().min(0).max(1).default(0.5),
  GUARDRAIL_DEFAULT_ON_TIMEOUT: GuardrailOnTimeout.default("allow"),
};

export type AuthConfig = z.infer<z.ZodObject<typeof authEnv>>;

export function loadAuthConfig(env: NodeJS.ProcessEnv): AuthConfig {
  const config = parseConfig("auth", authEnv, env);
  if (config.OPERATOR_TOKEN && config.OPERATOR_TOKEN_SHA256) {
    throw new ConfigError(
      "auth: invalid configuration\n  set OPERATOR_TOKEN or OPERATOR_TOKEN_SHA256, not both",
    );
  }
  return config;
}
