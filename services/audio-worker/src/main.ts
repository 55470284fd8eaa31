import { Bus } from "@llmaas/bus";
import { loadCatalogue, modelsToServe } from "@llmaas/catalogue";
import { startServiceRuntime, stopOnSignals } from "@llmaas/lifecycle";
import { UsageOutbox } from "@llmaas/usage";
import { startAudioWorker } from "./app.js";
import { loadAudioWorkerConfig } from "./config.js";
import { WhisperEngine } from "./engine.js";

const config = loadAudioWorkerConfig(process.env);
const { instanceId, logger, telemetry } = startServiceRuntime("audio-worker", config);

const catalogue = await loadCatalogue(config.CATALOGUE_PATH);
const wanted = modelsToServe(catalogue, config.AUDIO_MODELS, {
  setting: "AUDIO_MODELS",
  serves: (model) => model.capabilities.includes("audio"),
});

const engines: WhisperEngine[] = [];
for (const entry of wanted) {
  engines.push(await WhisperEngine.load(entry, { threads: config.AUDIO_THREADS }));
  logger.info({ model: entry.id, contexts: entry.runtime.sequences }, "whisper model loaded");
}

const bus = await Bus.connect({
  servers: config.NATS_URL,
  name: instanceId,
  logger,
  namespace: config.BUS_NAMESPACE,
});
const usageOutbox = new UsageOutbox({ bus, logger });
const worker = await startAudioWorker({
  bus,
  engines,
  workerId: instanceId,
  usageOutbox,
  ffmpegPath: config.FFMPEG_PATH,
});
logger.info({ models: engines.map((engine) => engine.entry.id) }, "audio-worker ready");

stopOnSignals({
  logger,
  graceMs: config.SHUTDOWN_GRACE_MS,
  stop: async () => {
    const stopping = Date.now();
    await worker.stop();
    // What is left of the grace period, less a margin to log what could not be published before the exit.
    await usageOutbox.drain(config.SHUTDOWN_GRACE_MS - (Date.now() - stopping) - 1_000);
    await bus.drain();
    for (const engine of engines) await engine.dispose();
    await telemetry.shutdown();
  },
});
