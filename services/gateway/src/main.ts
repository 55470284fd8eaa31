import { Bus } from "@llmaas/bus";
import { loadCatalogue } from "@llmaas/catalogue";
import { startServiceRuntime, stopOnSignals } from "@llmaas/lifecycle";
import { loadGatewayConfig } from "./config.js";
import { buildGateway } from "./app.js";

const config = loadGatewayConfig(process.env);
const { instanceId, logger, telemetry } = startServiceRuntime("gateway", config);

const catalogue = await loadCatalogue(config.CATALOGUE_PATH);
const bus = await Bus.connect({
  servers: config.NATS_URL,
  name: instanceId,
  logger,
  namespace: config.BUS_NAMESPACE,
});
const app = buildGateway({
  bus,
  catalogue,
  logger,
  bodyLimitBytes: config.BODY_LIMIT_BYTES,
  authTimeoutMs: config.AUTH_TIMEOUT_MS,
  acceptTimeoutMs: config.ACCEPT_TIMEOUT_MS,
  requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
});
const address = await app.listen({ host: config.HOST, port: config.PORT });
logger.info({ address }, "gateway ready");

stopOnSignals({
  logger,
  graceMs: config.SHUTDOWN_GRACE_MS,
  // Fastify stops accepting and waits for open requests, streams included, before the bus goes.
  stop: async () => {
    await app.close();
    await bus.drain();
    await telemetry.shutdown();
  },
});
