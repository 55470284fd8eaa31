import { Bus } from "@llmaas/bus";
import { loadCatalogue, modelsToServe } from "@llmaas/catalogue";
import { startServiceRuntime, stopOnSignals } from "@llmaas/lifecycle";
import { loadLlmWorkerConfig } from "./config.js";
import { createLlama, ModelEngine } from "./engine.js";
import { startLlmWorker } from "./app.js";
import { EmbeddingEngine, startEmbeddingWorker } from "./embeddings.js";
import { UsageOutbox } from "@llmaas/usage";

const config = loadLlmWorkerConfig(process.env);
const { instanceId, logger, telemetry } = startServiceRuntime("llm-worker", config);

const catalogue = await loadCatalogue(config.CATALOGUE_PATH);
const wanted = modelsToServe(catalogue, config.LLM_MODELS, {
  setting: "LLM_MODELS",
  serves: (model) => model.capabilities.includes("chat") || model.capabilities.includes("embeddings"),
});
// An embedding-only model needs no generation context, and a generative one no embedding contexts.
const generative = wanted.filter((entry) =>
  entry.capabilities.some((capability) => capability !== "embeddings"),
);
const embedding = wanted.filter((entry) => entry.capabilities.includes("embeddings"));

const llama = await createLlama({ gpu: config.LLM_GPU === "auto" ? "auto" : false, logger });
const engines: ModelEngine[] = [];
for (const entry of generative) {
  engines.push(
    await ModelEngine.load(llama, entry, { threads: config.LLM_THREADS, modelsDir: config.LLM_MODELS_DIR }),
  );
  logger.info({ model: entry.id }, "model loaded");
}
const embedders: EmbeddingEngine[] = [];
for (const entry of embedding) {
  embedders.push(
    await EmbeddingEngine.load(llama, entry, {
      threads: config.LLM_THREADS,
      modelsDir: config.LLM_MODELS_DIR,
    }),
  );
  logger.info({ model: entry.id }, "embedding model loaded");
}

const bus = await Bus.connect({
  servers: config.NATS_URL,
  name: instanceId,
  logger,
  namespace: config.BUS_NAMESPACE,
});
const usageOutbox = new UsageOutbox({ bus, logger });
const worker = await startLlmWorker({ bus, engines, logger, workerId: instanceId, usageOutbox });
const embeddingWorker = await startEmbeddingWorker({
  bus,
  engines: embedders,
  workerId: instanceId,
  usageOutbox,
});
logger.info({ models: [...engines, ...embedders].map((engine) => engine.entry.id) }, "llm-worker ready");

stopOnSignals({
  logger,
  graceMs: config.SHUTDOWN_GRACE_MS,
  stop: async () => {
    const stopping = Date.now();
    await worker.stop();
    await embeddingWorker.stop();
    // What is left of the grace period, less a margin to log what could not be published before the exit.
    await usageOutbox.drain(config.SHUTDOWN_GRACE_MS - (Date.now() - stopping) - 1_000);
    await bus.drain();
    for (const engine of engines) await engine.dispose();
    for (const engine of embedders) await engine.dispose();
    await llama.dispose();
    await telemetry.shutdown();
  },
});
