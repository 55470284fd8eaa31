import { startTelemetry, createLogger } from "@llmaas/telemetry";
import { Bus } from "@llmaas/bus";
import { loadCatalogue } from "@llmaas/catalogue";
import { defaultInstanceId, stopOnSignals } from "@llmaas/lifecycle";
import { loadLlmWorkerConfig } from "./config.js";
import { createLlama, ModelEngine } from "./engine.js";
import { startLlmWorker } from "./app.js";

const config = loadLlmWorkerConfig(process.env);
const instanceId = config.INSTANCE_ID ?? defaultInstanceId("llm-worker");
const telemetry = startTelemetry({
  serviceName: "llm-worker",
  instanceId,
  otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
});
const logger = createLogger({ service: "llm-worker", instanceId, level: config.LOG_LEVEL });

const catalogue = await loadCatalogue(config.CATALOGUE_PATH);
const wanted = config.LLM_MODELS.length
  ? config.LLM_MODELS.map((id) => {
      const entry = catalogue.find(id);
      if (!entry) throw new Error(`LLM_MODELS names ${id}, which is not in ${config.CATALOGUE_PATH}`);
      return entry;
    })
  : catalogue.models.filter((model) => model.capabilities.includes("chat"));

const llama = await createLlama({ gpu: config.LLM_GPU === "auto" ? "auto" : false, logger });
const engines: ModelEngine[] = [];
for (const entry of wanted) {
  engines.push(
    await ModelEngine.load(llama, entry, { threads: config.LLM_THREADS, modelsDir: config.LLM_MODELS_DIR }),
  );
  logger.info({ model: entry.id }, "model loaded");
}

const bus = await Bus.connect({
  servers: config.NATS_URL,
  name: instanceId,
  logger,
  namespace: config.BUS_NAMESPACE,
});
const worker = await startLlmWorker({ bus, engines, logger, workerId: instanceId });
logger.info({ models: engines.map((engine) => engine.entry.id) }, "llm-worker ready");

stopOnSignals({
  logger,
  graceMs: config.SHUTDOWN_GRACE_MS,
  stop: async () => {
    await worker.stop();
    await bus.drain();
    for (const engine of engines) await engine.dispose();
    await llama.dispose();
    await telemetry.shutdown();
  },
});
