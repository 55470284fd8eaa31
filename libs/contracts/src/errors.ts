import { z } from "zod";

/**
 * The closed set of failures any service may report. Each crosses the bus as `{ code, message, param? }` and is
 * mapped to an HTTP status and OpenAI error type exactly once, at the gateway.
 */
export const errorCodes = [
  "missing_api_key",
  "invalid_api_key",
  "permission_denied",
  "invalid_request",
  "not_found",
  "model_not_found",
  "model_retired",
  "context_length_exceeded",
  /** The guardrail found a prompt injection or jailbreak and the project's policy blocks it. */
  "prompt_blocked",
  /** A rate limit (requests or tokens per minute, requests per day, audio per minute) is reached until it resets. */
  "rate_limit_exceeded",
  /** A token budget or a hard spend limit is used up for its day or month. */
  "insufficient_quota",
  "model_unavailable",
  /** A platform service the request depends on did not answer in time (e.g. quota leases from `auth`). */
  "service_unavailable",
  "request_timeout",
  "internal_error",
] as const;

export const ErrorCode = z.enum(errorCodes);
export type ErrorCode = z.infer<typeof ErrorCode>;

export const ErrorPayload = z.object({
  code: ErrorCode,
  message: z.string(),
  param: z.string().nullable().optional(),
});
export type ErrorPayload = z.infer<typeof ErrorPayload>;

export class PlatformError extends Error {
  override readonly name = "PlatformError";
  readonly code: ErrorCode;
  readonly param: string | null;

  constructor(code: ErrorCode, message: string, param: string | null = null) {
    super(message);
    this.code = code;
    this.param = param;
  }

  toPayload(): ErrorPayload {
    return { code: this.code, message: this.message, param: this.param };
  }

  static fromPayload(payload: ErrorPayload): PlatformError {
    return new PlatformError(payload.code, payload.message, payload.param ?? null);
  }
}

/** Anything thrown that is not a PlatformError is an internal failure whose details stay in the logs. */
export function toPlatformError(error: unknown): PlatformError {
  if (error instanceof PlatformError) return error;
  return new PlatformError("internal_error", "The server had an error while processing your request.");
}
