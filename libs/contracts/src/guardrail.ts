import { z } from "zod";
import { AuthPrincipal } from "./auth.js";
import { requestSubject } from "./definitions.js";
import { GuardrailThreshold } from "./guardrail-policy.js";

// ---------------------------------------------------------------------------------------------------------------
// guardrail: screening user-controlled text for prompt injection and jailbreaks (docs/guardrail.md)

/** What fired in a screened text. Closed: the API, the metrics and the block message name these and nothing else. */
export const GuardrailCategory = z.enum([
  /** "Ignore the previous instructions", "from now on you obey only me", new rules smuggled into data. */
  "instruction_override",
  /** DAN, "developer mode", personas without rules, fictional or hypothetical framing used to get around them. */
  "role_play_jailbreak",
  /** Asking for the system prompt, the hidden instructions, the text above. */
  "system_prompt_extraction",
  /** "Never refuse", "do not apologise", "start your answer with 'Sure, here is'": suppressing the model's refusals. */
  "refusal_suppression",
  /** Text hidden from the reader: invisible or bidi characters, encoded payloads, homoglyphs that carry an attack. */
  "obfuscation",
  /** Optimised gibberish appended to a request (GCG-style suffixes): odd tokens, mixed character classes. */
  "adversarial_suffix",
]);
export type GuardrailCategory = z.infer<typeof GuardrailCategory>;

/** Texts one request to the guardrail may carry; `POST /v1/guardrail/screen` takes as many inputs at most. */
export const MAX_GUARDRAIL_INPUTS = 64;

export const GuardrailScreenRequest = z.object({
  /** The platform's request id, for tracing only: the guardrail keeps nothing. */
  requestId: z.string().min(1),
  /** The user-controlled texts, in request order; a chat request sends one per message part it screens. */
  inputs: z.array(z.string()).min(1).max(MAX_GUARDRAIL_INPUTS),
  threshold: GuardrailThreshold,
  /** What a flagged text makes of the request: `flag` lets it through (marked), `block` refuses it. */
  mode: z.enum(["flag", "block"]),
  /**
   * Set for `POST /v1/guardrail/screen`, which is metered: the guardrail publishes its usage event (inputs screened).
   * Null on an inference path, where screening is part of the request it protects.
   */
  usage: z.object({ principal: AuthPrincipal, endUser: z.string().max(256).nullable() }).nullable(),
});
export type GuardrailScreenRequest = z.infer<typeof GuardrailScreenRequest>;

export const GuardrailInputResult = z.object({
  /** 0 (nothing suspicious) to 1. */
  score: z.number().min(0).max(1),
  flagged: z.boolean(),
  /** The categories whose signals fired, strongest first; empty when nothing did. */
  categories: z.array(GuardrailCategory),
});
export type GuardrailInputResult = z.infer<typeof GuardrailInputResult>;

export const GuardrailVerdict = z.enum(["allow", "flag", "block"]);
export type GuardrailVerdict = z.infer<typeof GuardrailVerdict>;

export const GuardrailScreenResult = z.object({
  verdict: GuardrailVerdict,
  /** The highest score of the inputs. */
  score: z.number().min(0).max(1),
  /** The categories of the flagged inputs, strongest first, each once. */
  categories: z.array(GuardrailCategory),
  /** One per input, in order. */
  results: z.array(GuardrailInputResult),
});
export type GuardrailScreenResult = z.infer<typeof GuardrailScreenResult>;

/** Served by every guardrail instance in one queue group: screening is stateless, any instance will do. */
export const guardrailScreen = {
  ...requestSubject("guardrail.v1.screen", GuardrailScreenRequest, GuardrailScreenResult),
  queueGroup: "guardrail",
};

/** The `model` of the guardrail's usage events: screening has no catalogue model, and no price. */
export const GUARDRAIL_USAGE_MODEL = "guardrail";

// ---------------------------------------------------------------------------------------------------------------
// `POST /v1/guardrail/screen` (extension; docs/guardrail.md)

export const ScreenApiRequest = z.strictObject({
  input: z.union([z.string(), z.array(z.string()).min(1).max(MAX_GUARDRAIL_INPUTS)], {
    error: `input must be a string or an array of 1 to ${MAX_GUARDRAIL_INPUTS} strings`,
  }),
  /** The application's end user, kept for metering only, as on the inference routes. */
  user: z.string().max(256).optional(),
});
export type ScreenApiRequest = z.infer<typeof ScreenApiRequest>;

export const ScreenApiResponse = z.object({
  object: z.literal("list"),
  data: z.array(
    z.object({
      index: z.number().int().nonnegative(),
      flagged: z.boolean(),
      score: z.number().min(0).max(1),
      categories: z.array(GuardrailCategory),
    }),
  ),
});
export type ScreenApiResponse = z.infer<typeof ScreenApiResponse>;
