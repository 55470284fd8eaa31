import { z } from "zod";

// What a project and a key set about the guardrail (docs/guardrail.md); apart from guardrail.ts, which needs the
// principal, so that auth.ts can carry the policy in the principal without an import cycle.

export const GuardrailMode = z.enum(["off", "flag", "block"]);
export type GuardrailMode = z.infer<typeof GuardrailMode>;

export const GuardrailOnTimeout = z.enum(["allow", "block"]);
export type GuardrailOnTimeout = z.infer<typeof GuardrailOnTimeout>;

/** A text is flagged when its score reaches the threshold: lower catches more and refuses more honest prompts. */
export const GuardrailThreshold = z.number().min(0).max(1);

/** What applies to an API key's requests: its project's policy, with the key's own mode where it sets one. */
export const GuardrailPolicy = z.object({
  mode: GuardrailMode,
  threshold: GuardrailThreshold,
  /** What happens to a request when no guardrail answers in time: served unscreened, or refused. */
  onTimeout: GuardrailOnTimeout,
});
export type GuardrailPolicy = z.infer<typeof GuardrailPolicy>;
