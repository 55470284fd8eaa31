import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Subscription } from "@nats-io/transport-node";
import { ensureStream, type Bus } from "@llmaas/bus";
import {
  inferenceEvents,
  llmCancel,
  llmChat,
  toPlatformError,
  usageStream,
  type InferenceEvent,
  type InferenceRequest,
  type UsageEvent,
  type UsageStatus,
} from "@llmaas/contracts";
import type { Logger } from "@llmaas/telemetry";
import type { GenerationEvent, ModelEngine, PreparedRequest } from "./engine.js";
import { usageEventOf } from "@llmaas/usage";
import type { UsageOutbox } from "@llmaas/usage";

export interface LlmWorkerOptions {
  bus: Bus;
  engines: ModelEngine[];
  logger: Logger;
  workerId: string;
  /** The process's one outbox: each request's usage goes there, to be published until acknowledged. */
  usageOutbox: UsageOutbox;
}

export interface LlmWorker {
  /** Stops taking requests and lets those in flight finish; their usage is then in the outbox. */
  stop(): Promise<void>;
}

const tracer = trace.getTracer("@llmaas/llm-worker");

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * Serves chat requests for each loaded model. A request is accepted (or refused, e.g. for its length) in the
 * reply, then generated into the requester's events subject; its usage is published to JetStream once, whatever
 * the outcome, with the request id as message id so that a retried publish is not counted twice.
 */
export async function startLlmWorker(options: LlmWorkerOptions): Promise<LlmWorker> {
  const { bus, engines, logger, workerId, usageOutbox } = options;
  await ensureStream(bus, usageStream);

  const active = new Map<string, AbortController>();
  const running = new Set<Promise<void>>();

  const subscriptions: Subscription[] = engines.map((engine) =>
    bus.serve(
      llmChat,
      llmChat.forModel(engine.entry.id),
      async (request) => {
        const prepared = engine.prepare(request.input, request.sampling, request.tokenAllowance);
        if (prepared.maxTokens === 0) {
          // Over the gateway's reservation before a token is generated: nothing to generate, nothing to meter.
          return { workerId, promptTokens: prepared.promptTokens, started: false };
        }
        const job = generate(engine, request, prepared).finally(() => running.delete(job));
        running.add(job);
        return { workerId, promptTokens: prepared.promptTokens };
      },
      { queue: llmChat.queueGroup(engine.entry.id) },
    ),
  );

  const cancelSubscription = bus.subscribe(llmCancel, llmCancel.subject, ({ requestId }) => {
    active.get(requestId)?.abort(new Error("cancelled by the client"));
  });

  function generate(
    engine: ModelEngine,
    request: InferenceRequest,
    prepared: PreparedRequest,
  ): Promise<void> {
    const operation = request.input.kind === "chat" ? "chat" : "text_completion";
    return tracer.startActiveSpan(
      `${operation} ${engine.entry.id}`,
      {
        kind: SpanKind.INTERNAL,
        attributes: {
          "gen_ai.operation.name": operation,
          "gen_ai.request.model": engine.entry.id,
          "gen_ai.response.id": request.requestId,
          "gen_ai.usage.input_tokens": prepared.promptTokens,
        },
      },
      async (span) => {
        try {
          const usage = await runGeneration(engine, request, prepared);
          span.setAttribute("gen_ai.usage.output_tokens", usage.completionTokens);
          if (usage.status === "failed") span.setStatus({ code: SpanStatusCode.ERROR });
          usageOutbox.enqueue(usage);
        } finally {
          span.end();
        }
      },
    );
  }

  async function runGeneration(
    engine: ModelEngine,
    request: InferenceRequest,
    prepared: PreparedRequest,
  ): Promise<UsageEvent> {
    const controller = new AbortController();
    active.set(request.requestId, controller);
    const startedAt = new Date();
    let seq = 0;
    const emit = (event: DistributiveOmit<InferenceEvent, "seq">): void => {
      bus.publish(inferenceEvents, request.eventsSubject, { ...event, seq: seq++ });
    };
    let status: UsageStatus = "failed";
    let completionTokens = 0;
    try {
      const result = await engine.generate(prepared, {
        sampling: request.sampling,
        signal: controller.signal,
        onEvent: (event: GenerationEvent) =>
          emit(event.type === "text" ? { type: "chunk", text: event.text } : event),
      });
      completionTokens = result.completionTokens;
      status = result.finishReason === "cancelled" ? "cancelled" : "completed";
      emit({
        type: "done",
        finishReason: result.finishReason,
        usage: { promptTokens: prepared.promptTokens, completionTokens },
      });
    } catch (error) {
      if (controller.signal.aborted) {
        status = "cancelled";
      } else {
        logger.error({ err: error, requestId: request.requestId }, "generation failed");
      }
      emit({ type: "error", error: toPlatformError(error).toPayload() });
    } finally {
      active.delete(request.requestId);
    }
    return usageEventOf(request, {
      model: engine.entry.id,
      operation: request.input.kind === "chat" ? "chat.completions" : "completions",
      promptTokens: prepared.promptTokens,
      completionTokens,
      status,
      servedBy: workerId,
      startedAt,
    });
  }

  return {
    async stop() {
      await Promise.all(subscriptions.map((subscription) => subscription.drain()));
      await cancelSubscription.drain();
      await Promise.all(running);
    },
  };
}
