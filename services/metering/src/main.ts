import { Bus } from "@llmaas/bus";
import { loadCatalogue } from "@llmaas/catalogue";
import { createDatabase, type MeteringDatabase } from "@llmaas/db";
import { startServiceRuntime, stopOnSignals } from "@llmaas/lifecycle";
import { loadMeteringConfig } from "./config.js";
import { startMetering } from "./app.js";

const config = loadMeteringConfig(process.env);
const { instanceId, logger, telemetry } = startServiceRuntime("metering", config);

const db = createDatabase<MeteringDatabase>({
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
const metering = await startMetering({
  bus,
  db,
  logger,
  catalogue: await loadCatalogue(config.CATALOGUE_PATH),
  currency: config.CURRENCY,
  batchSize: config.METERING_BATCH_SIZE,
  writers: config.METERING_WRITERS,
  lingerMs: config.METERING_LINGER_MS,
  ackWaitMs: config.METERING_ACK_WAIT_MS,
  maxDeliveries: config.METERING_MAX_DELIVERIES,
  retentionDays: config.USAGE_RETENTION_DAYS,
  retentionIntervalMs: config.USAGE_RETENTION_INTERVAL_MS,
});
logger.info({}, "metering ready");

stopOnSignals({
  logger,
  graceMs: config.SHUTDOWN_GRACE_MS,
  stop: async () => {
    await metering.stop();
    await bus.drain();
    await db.destroy();
    await telemetry.shutdown();
  },
});
