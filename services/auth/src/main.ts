import { loadAuthConfig } from "./config.js";
import { Bus } from "@llmaas/bus";
import { createDatabase } from "@llmaas/db";
import { startServiceRuntime, stopOnSignals } from "@llmaas/lifecycle";
import { KeyStore } from "./keys.js";
import { serveAuth } from "./app.js";

const config = loadAuthConfig(process.env);
const { instanceId, logger, telemetry } = startServiceRuntime("auth", config);

const db = createDatabase({
  url: config.DATABASE_URL,
  poolSize: config.DATABASE_POOL_SIZE,
  onIdleConnectionError: (err) => logger.warn({ err }, "idle database connection lost"),
});
const bus = await Bus.connect({
  servers: config.NATS_URL,
  name: instanceId,
  logger,
  namespace: config.BUS_NAMESPACE,
});
serveAuth(bus, new KeyStore(db, config.AUTH_KEY_SECRET));
logger.info({}, "auth ready");

stopOnSignals({
  logger,
  graceMs: config.SHUTDOWN_GRACE_MS,
  stop: async () => {
    await bus.drain();
    await db.destroy();
    await telemetry.shutdown();
  },
});
