import { Bus } from "@llmaas/bus";
import { startServiceRuntime, stopOnSignals } from "@llmaas/lifecycle";
import { UsageOutbox } from "@llmaas/usage";
import { startGuardrail } from "./app.js";
import { loadGuardrailConfig } from "./config.js";

const config = loadGuardrailConfig(process.env);
const { instanceId, logger, telemetry } = startServiceRuntime("guardrail", config);

const bus = await Bus.connect({
  servers: config.NATS_URL,
  name: instanceId,
  logger,
  namespace: config.BUS_NAMESPACE,
});
const usageOutbox = new UsageOutbox({ bus, logger });
const guardrail = await startGuardrail({ bus, instanceId, usageOutbox });
logger.info({}, "guardrail ready");

stopOnSignals({
  logger,
  graceMs: config.SHUTDOWN_GRACE_MS,
  stop: async () => {
    const stopping = Date.now();
    await guardrail.stop();
    // What is left of the grace period, less a margin to log what could not be published before the exit.
    await usageOutbox.drain(config.SHUTDOWN_GRACE_MS - (Date.now() - stopping) - 1_000);
    await bus.drain();
    await telemetry.shutdown();
  },
});
