import type { FastifyReply } from "fastify";
import { trace } from "@opentelemetry/api";
import type { Bus } from "@llmaas/bus";
import {
  guardrailScreen,
  MAX_GUARDRAIL_INPUTS,
  PlatformError,
  type ApiKeyPrincipal,
  type GuardrailCategory,
  type GuardrailScreenResult,
} from "@llmaas/contracts";

export interface GuardrailOptions {
  bus: Bus;
  /** How long the guardrail may take to answer before the policy's `on_timeout` decides. */
  timeoutMs: number;
}

/** The response headers of a screened request (docs/guardrail.md). */
export const FLAGGED_HEADER = "x-guardrail-flagged";
export const UNSCREENED_HEADER = "x-guardrail-unscreened";

/** Whether a key's requests are screened: token-id prompts cannot be, so they are refused where they would be. */
export function isScreened(apiKey: ApiKeyPrincipal): boolean {
  return apiKey.guardrail.mode !== "off";
}

/**
 * Screens the user-controlled texts of an inference request before any inference starts, as the key's policy says:
 * `flag` marks the response (`x-guardrail-flagged: <categories>`), `block` refuses the request with `prompt_blocked`,
 * naming the categories and never the text. When no guardrail answers in time, `on_timeout` either lets the request
 * through, marked `x-guardrail-unscreened`, or refuses it with a 503 to retry.
 *
 * The texts go to the guardrail in requests of at most MAX_GUARDRAIL_INPUTS, screened in parallel by any instance;
 * a long text is one input whatever its size (the bus carries bodies larger than a message).
 */
export async function screenPrompt(
  options: GuardrailOptions,
  reply: FastifyReply,
  apiKey: ApiKeyPrincipal,
  requestId: string,
  texts: string[],
): Promise<void> {
  const { mode, threshold, onTimeout } = apiKey.guardrail;
  const inputs = texts.filter((text) => text.length > 0);
  if (mode === "off" || inputs.length === 0) return;
  const span = trace.getActiveSpan();
  let results: GuardrailScreenResult[];
  try {
    const batches: string[][] = [];
    for (let start = 0; start < inputs.length; start += MAX_GUARDRAIL_INPUTS) {
      batches.push(inputs.slice(start, start + MAX_GUARDRAIL_INPUTS));
    }
    results = await Promise.all(
      batches.map((batch) =>
        options.bus.request(
          guardrailScreen,
          guardrailScreen.subject,
          { requestId, inputs: batch, threshold, mode, usage: null },
          { timeoutMs: options.timeoutMs },
        ),
      ),
    );
  } catch (error) {
    if (!(error instanceof PlatformError)) throw error;
    const unanswered = error.code === "request_timeout" || error.code === "model_unavailable";
    if (!unanswered) throw error;
    span?.setAttribute("llmaas.guardrail.verdict", "unscreened");
    if (onTimeout === "block") {
      throw new PlatformError(
        "service_unavailable",
        "The guardrail did not answer in time, and this project's policy refuses prompts it has not screened; " +
          "retry later.",
      );
    }
    void reply.header(UNSCREENED_HEADER, error.code === "request_timeout" ? "timeout" : "unavailable");
    return;
  }

  const categories = [...new Set(results.flatMap((result) => result.categories))];
  const verdict = results.some((result) => result.verdict === "block")
    ? "block"
    : results.some((result) => result.verdict === "flag")
      ? "flag"
      : "allow";
  span?.setAttributes({
    "llmaas.guardrail.verdict": verdict,
    "llmaas.guardrail.score": Math.max(...results.map((result) => result.score)),
    "llmaas.guardrail.categories": categories,
  });
  if (verdict === "block") throw blocked(categories);
  if (verdict === "flag") void reply.header(FLAGGED_HEADER, categories.join(","));
}

function blocked(categories: GuardrailCategory[]): PlatformError {
  const found = categories.length ? categories.join(", ").replaceAll("_", " ") : "a prompt injection";
  return new PlatformError(
    "prompt_blocked",
    `The prompt was blocked by this project's guardrail: it looks like ${found}. If this is a mistake, an ` +
      "administrator can change the project's guardrail policy.",
  );
}
