import type { Span } from "@opentelemetry/api";
import type { Subscription } from "@nats-io/transport-node";
import { ensureStream, type Bus } from "@llmaas/bus";
import { maxAudioSeconds } from "@llmaas/catalogue";
import {
  audioCancel,
  audioTranscribe,
  usageStream,
  type TranscriptionRequest,
  type TranscriptionResult,
  type UsageStatus,
} from "@llmaas/contracts";
import { usageEventOf, type UsageOutbox } from "@llmaas/usage";
import { decodeAudio } from "./decode.js";
import { WhisperEngine } from "./engine.js";

export interface AudioWorkerOptions {
  bus: Bus;
  engines: WhisperEngine[];
  workerId: string;
  /** The process's one outbox: each transcription's usage goes there, to be published until acknowledged. */
  usageOutbox: UsageOutbox;
  ffmpegPath: string;
}

export interface AudioWorker {
  /** Stops taking requests and answers those in flight; their usage is then in the outbox. */
  stop(): Promise<void>;
}

/**
 * Answers transcription and translation requests for each loaded whisper model. The audio arrives whole in the
 * request (pulled in chunks by the bus when it is large), is decoded to PCM in memory, transcribed, and metered in
 * whole seconds (rounded up) of the decoded audio: one usage event per request, whatever the outcome once decoding
 * succeeded. Audio that cannot be decoded, or is too long, costs nothing.
 */
export async function startAudioWorker(options: AudioWorkerOptions): Promise<AudioWorker> {
  const { bus, engines, workerId, usageOutbox } = options;
  await ensureStream(bus, usageStream);

  const active = new Map<string, AbortController>();
  const running = new Set<Promise<unknown>>();
  const track = <T>(work: Promise<T>): Promise<T> => {
    running.add(work);
    void work.finally(() => running.delete(work)).catch(() => undefined);
    return work;
  };

  const subscriptions: Subscription[] = engines.map((engine) =>
    bus.serve(
      audioTranscribe,
      audioTranscribe.forModel(engine.entry.id),
      (request, { span }) => track(transcribe(engine, request, span)),
      { queue: audioTranscribe.queueGroup(engine.entry.id) },
    ),
  );
  const cancelSubscription = bus.subscribe(audioCancel, audioCancel.subject, ({ requestId }) => {
    active.get(requestId)?.abort();
  });

  async function transcribe(
    engine: WhisperEngine,
    request: TranscriptionRequest,
    span: Span,
  ): Promise<TranscriptionResult> {
    const controller = new AbortController();
    active.set(request.requestId, controller);
    const startedAt = new Date();
    try {
      const audio = Buffer.from(request.audio, "base64");
      const decoded = await decodeAudio(audio, {
        maxSeconds: maxAudioSeconds(engine.entry),
        signal: controller.signal,
        ffmpegPath: options.ffmpegPath,
      });
      span.setAttributes({
        "gen_ai.operation.name": request.task === "translate" ? "translation" : "transcription",
        "gen_ai.request.model": engine.entry.id,
        "gen_ai.response.id": request.requestId,
        "llmaas.audio.seconds": decoded.seconds,
      });
      let status: UsageStatus = "failed";
      let processedSeconds = 0;
      try {
        const transcript = await engine.transcribe(decoded.pcm, {
          task: request.task,
          language: request.language,
          prompt: request.prompt,
          temperature: request.temperature,
          timestamps: request.timestamps,
          signal: controller.signal,
        });
        processedSeconds = transcript.processedSeconds;
        if (controller.signal.aborted) {
          status = "cancelled";
          throw WhisperEngine.cancelled();
        }
        status = "completed";
        return {
          workerId,
          language: request.task === "translate" ? "en" : transcript.language,
          durationSeconds: decoded.seconds,
          billedSeconds: billedSeconds(decoded.seconds),
          temperature: transcript.temperature,
          text: transcript.text,
          segments: transcript.segments,
          words: transcript.words,
        };
      } catch (error) {
        if (controller.signal.aborted) status = "cancelled";
        throw error;
      } finally {
        usageOutbox.enqueue(
          usageEventOf(
            { requestId: request.requestId, principal: request.principal, endUser: null },
            {
              model: engine.entry.id,
              operation: "audio.transcriptions",
              promptTokens: 0,
              completionTokens: 0,
              // A cancelled transcription is billed for what was transcribed before it stopped.
              audioSeconds: billedSeconds(status === "completed" ? decoded.seconds : processedSeconds),
              status,
              servedBy: workerId,
              startedAt,
            },
          ),
        );
      }
    } finally {
      active.delete(request.requestId);
    }
  }

  return {
    async stop() {
      await Promise.all(subscriptions.map((subscription) => subscription.drain()));
      await cancelSubscription.drain();
      await Promise.allSettled(running);
    },
  };
}

/** Audio is billed in whole seconds, rounded up once per request (docs/metering.md). */
export function billedSeconds(seconds: number): number {
  // Samples at 16 kHz make exact multiples of 1/16000; the epsilon keeps 3.0000000001 from costing 4 s.
  return Math.ceil(seconds - 1e-9);
}
