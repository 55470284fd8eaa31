import { setFlagsFromString } from "node:v8";
import { Bus } from "@llmaas/bus";
import { loadCatalogue } from "@llmaas/catalogue";
import { startServiceRuntime, stopOnSignals } from "@llmaas/lifecycle";
import { loadGatewayConfig } from "./config.js";
import { buildGateway } from "./app.js";
import { KeyCache } from "./auth/key-cache.js";
import { KeyUsageReporter } from "./auth/key-usage.js";
import { Quotas } from "./quotas/index.js";

const config = loadGatewayConfig(process.env);
// Read by V8 at each full collection, so setting it before the heap has grown is enough.
if (config.HEAP_GROWING_PERCENT > 0)
  setFlagsFromString(`--heap-growing-percent=${config.HEAP_GROWING_PERCENT}`);
const { instanceId, logger, telemetry } = startServiceRuntime("gateway", config);

const catalogue = await loadCatalogue(config.CATALOGUE_PATH);
const bus = await Bus.connect({
  servers: config.NATS_URL,
  name: instanceId,
  logger,
  namespace: config.BUS_NAMESPACE,
});
const quotas =
  config.QUOTAS === "enforced"
    ? new Quotas(bus, logger, {
        ledger: { timeoutMs: config.QUOTA_LEASE_TIMEOUT_MS },
        settler: { maxWaitMs: config.QUOTA_UNREPORTED_USAGE_WAIT_MS },
      })
    : null;
const app = buildGateway({
  bus,
  catalogue,
  currency: config.CURRENCY,
  logger,
  bodyLimitBytes: config.BODY_LIMIT_BYTES,
  authTimeoutMs: config.AUTH_TIMEOUT_MS,
  keyCache: new KeyCache({ ttlMs: config.AUTH_CACHE_TTL_MS, maxEntries: config.AUTH_CACHE_MAX_ENTRIES }),
  keyUsage: new KeyUsageReporter(bus, config.KEY_USAGE_REPORT_MS),
  adminTimeoutMs: config.ADMIN_TIMEOUT_MS,
  trustProxy: config.TRUST_PROXY,
  acceptTimeoutMs: config.ACCEPT_TIMEOUT_MS,
  requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
  guardrailTimeoutMs: config.GUARDRAIL_TIMEOUT_MS,
  quotas,
});
const address = await app.listen({ host: config.HOST, port: config.PORT });
logger.info({ address }, "gateway ready");

stopOnSignals({
  logger,
  graceMs: config.SHUTDOWN_GRACE_MS,
  // Fastify stops accepting and waits for open requests, streams included, before the bus goes.
  stop: async () => {
    await app.close();
    // Every request has settled: what the leases hold goes back to auth before the bus goes.
    await quotas?.close();
    await bus.drain();
    await telemetry.shutdown();
  },
});
