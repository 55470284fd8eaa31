import { setImmediate as nextTurn } from "node:timers/promises";
import type { Subscription } from "@nats-io/transport-node";
import { metrics } from "@opentelemetry/api";
import { ensureStream, type Bus } from "@llmaas/bus";
import {
  GUARDRAIL_USAGE_MODEL,
  guardrailScreen,
  usageStream,
  type GuardrailCategory,
  type GuardrailInputResult,
  type GuardrailScreenRequest,
  type GuardrailScreenResult,
} from "@llmaas/contracts";
import { usageEventOf, type UsageOutbox } from "@llmaas/usage";
import { screenText } from "./screening/index.js";

export interface GuardrailServiceOptions {
  bus: Bus;
  instanceId: string;
  /** The process's one outbox: the screening endpoint's usage goes there, to be published until acknowledged. */
  usageOutbox: UsageOutbox;
}

export interface GuardrailService {
  /** Stops taking requests and waits for those being screened. */
  stop(): Promise<void>;
}

/**
 * Screens texts for prompt injection and jailbreaks (docs/guardrail.md), for the gateway's inference paths and its
 * screening endpoint. Stateless: every instance serves one queue group. What it receives is screened in memory and
 * forgotten: it is never logged, traced or stored; metrics count verdicts and categories only.
 */
export async function startGuardrail(options: GuardrailServiceOptions): Promise<GuardrailService> {
  const { bus, instanceId, usageOutbox } = options;
  await ensureStream(bus, usageStream);
  const meter = metrics.getMeter("llmaas.guardrail");
  const verdicts = meter.createCounter("llmaas.guardrail.verdicts", {
    description: "Screened requests, by verdict",
  });
  const detections = meter.createCounter("llmaas.guardrail.detections", {
    description: "Flagged texts, by category that fired",
  });
  const screenedCharacters = meter.createHistogram("llmaas.guardrail.input.characters", {
    description: "Length of each screened text",
    unit: "{character}",
  });

  const running = new Set<Promise<unknown>>();
  const subscription: Subscription = bus.serve(
    guardrailScreen,
    guardrailScreen.subject,
    (request, { span }) => {
      const work = screen(request).then((result) => {
        span.setAttributes({
          "llmaas.guardrail.inputs": request.inputs.length,
          "llmaas.guardrail.verdict": result.verdict,
          "llmaas.guardrail.score": result.score,
          "llmaas.guardrail.categories": result.categories,
        });
        return result;
      });
      running.add(work);
      void work.finally(() => running.delete(work)).catch(() => undefined);
      return work;
    },
    { queue: guardrailScreen.queueGroup },
  );

  async function screen(request: GuardrailScreenRequest): Promise<GuardrailScreenResult> {
    const startedAt = new Date();
    const results: GuardrailInputResult[] = [];
    for (const [index, input] of request.inputs.entries()) {
      // Screening is synchronous; other requests get their turn between texts, so one request of 64 long
      // documents does not hold up every prompt waiting behind it.
      if (index > 0) await nextTurn();
      const { score, categories } = screenText(input);
      results.push({ score, flagged: score >= request.threshold, categories });
      screenedCharacters.record(input.length);
    }
    const flagged = results.filter((result) => result.flagged);
    const verdict = flagged.length === 0 ? "allow" : request.mode;
    const categories = strongestFirst(flagged);
    verdicts.add(1, { verdict });
    for (const category of categories) detections.add(1, { category });
    if (request.usage) {
      usageOutbox.enqueue(
        usageEventOf(
          {
            requestId: request.requestId,
            principal: request.usage.principal,
            endUser: request.usage.endUser,
          },
          {
            model: GUARDRAIL_USAGE_MODEL,
            operation: "guardrail.screen",
            promptTokens: 0,
            completionTokens: 0,
            screenedInputs: request.inputs.length,
            status: "completed",
            servedBy: instanceId,
            startedAt,
          },
        ),
      );
    }
    return {
      verdict,
      score: Math.max(...results.map((result) => result.score)),
      categories,
      results,
    };
  }

  return {
    async stop() {
      await subscription.drain();
      await Promise.allSettled(running);
    },
  };
}

/** The flagged texts' categories, each once, in the order of the highest score each came with. */
function strongestFirst(flagged: GuardrailInputResult[]): GuardrailCategory[] {
  const ordered = [...flagged].sort((a, b) => b.score - a.score);
  return [...new Set(ordered.flatMap((result) => result.categories))];
}
