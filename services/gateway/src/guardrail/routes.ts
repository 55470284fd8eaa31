import type { FastifyInstance } from "fastify";
import { trace } from "@opentelemetry/api";
import { guardrailScreen, ScreenApiRequest, type ScreenApiResponse } from "@llmaas/contracts";
import { apiKeyOf, attributionOf } from "../auth/index.js";
import { newId } from "../routes/chat.js";
import { parseBody } from "../validation.js";
import type { GuardrailOptions } from "./screening.js";

/**
 * Extension (docs/guardrail.md): `POST /v1/guardrail/screen` screens texts a pipeline is about to put in a prompt,
 * retrieved documents above all (indirect injection), with the key's project threshold. It reports; it never
 * refuses, whatever the policy's mode. Metered by the guardrail in inputs screened; nothing screened is kept.
 */
export function registerGuardrailRoutes(app: FastifyInstance, options: GuardrailOptions): void {
  app.post("/v1/guardrail/screen", async (request, reply): Promise<ScreenApiResponse> => {
    const body = parseBody(ScreenApiRequest, request.body);
    const apiKey = apiKeyOf(request);
    const inputs = typeof body.input === "string" ? [body.input] : body.input;
    const requestId = newId("screen");
    trace.getActiveSpan()?.setAttributes({
      "gen_ai.operation.name": "guardrail.screen",
      "gen_ai.response.id": requestId,
    });
    void reply.header("x-request-id", requestId);
    const result = await options.bus.request(
      guardrailScreen,
      guardrailScreen.subject,
      {
        requestId,
        inputs,
        threshold: apiKey.guardrail.threshold,
        mode: "flag",
        usage: { principal: attributionOf(apiKey), endUser: body.user ?? null },
      },
      { timeoutMs: options.timeoutMs },
    );
    return {
      object: "list",
      data: result.results.map((item, index) => ({
        index,
        flagged: item.flagged,
        score: item.score,
        categories: item.categories,
      })),
    };
  });
}
