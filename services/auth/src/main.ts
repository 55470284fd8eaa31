import { loadAuthConfig } from "./config.js";
import { Bus } from "@llmaas/bus";
import { loadCatalogue } from "@llmaas/catalogue";
import { createDatabase, type AuthDatabase } from "@llmaas/db";
import { startServiceRuntime, stopOnSignals } from "@llmaas/lifecycle";
import { startAuth } from "./app.js";

const config = loadAuthConfig(process.env);
const { instanceId, logger, telemetry } = startServiceRuntime("auth", config);
// Before any connection: a catalogue that does not load stops the service at once, naming the problem.
const catalogue = await loadCatalogue(config.CATALOGUE_PATH);

const db = createDatabase<AuthDatabase>({
  url: config.DATABASE_URL,
  poolSize: config.DATABASE_POOL_SIZE,
  onConnectionError: (err) => logger.warn({ err }, "database connection lost"),
});
const bus = await Bus.connect({
  servers: config.NATS_URL,
  name: instanceId,
  logger,
  namespace: config.BUS_NAMESPACE,
});
if (!config.OPERATOR_TOKEN && !config.OPERATOR_TOKEN_SHA256) {
  logger.warn({}, "no OPERATOR_TOKEN or OPERATOR_TOKEN_SHA256: the operator's routes refuse every request");
}
const auth = startAuth({
  bus,
  db,
  logger,
  keySecret: config.AUTH_KEY_SECRET,
  operatorToken: { token: config.OPERATOR_TOKEN, sha256: config.OPERATOR_TOKEN_SHA256 },
  oidc: {
    clockToleranceSeconds: config.OIDC_CLOCK_TOLERANCE_SECONDS,
    jwksCooldownMs: config.OIDC_JWKS_COOLDOWN_MS,
    jwksTimeoutMs: config.OIDC_JWKS_TIMEOUT_MS,
  },
  limits: {
    catalogue,
    defaults: {
      maxRequestsPer1Minute: config.DEFAULT_MAX_REQUESTS_PER_1_MINUTE,
      maxTokensPer1Minute: config.DEFAULT_MAX_TOKENS_PER_1_MINUTE,
      maxRequestsPer1Day: config.DEFAULT_MAX_REQUESTS_PER_1_DAY ?? null,
      maxAudioMegabytesPer1Minute: config.DEFAULT_MAX_AUDIO_MEGABYTES_PER_1_MINUTE ?? null,
    },
  },
  guardrailDefault: {
    mode: config.GUARDRAIL_DEFAULT_MODE,
    threshold: config.GUARDRAIL_DEFAULT_THRESHOLD,
    onTimeout: config.GUARDRAIL_DEFAULT_ON_TIMEOUT,
  },
});
logger.info({}, "auth ready");

stopOnSignals({
  logger,
  graceMs: config.SHUTDOWN_GRACE_MS,
  stop: async () => {
    auth.stop();
    await bus.drain();
    await db.destroy();
    await telemetry.shutdown();
  },
});
