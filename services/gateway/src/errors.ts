import type { z } from "zod";
import { PlatformError, type ErrorCode, type openai } from "@llmaas/contracts";

type OpenAIErrorType = z.infer<typeof openai.OpenAIErrorType>;

interface HttpError {
  status: number;
  type: OpenAIErrorType;
  /** The `code` field OpenAI sends for this failure (null where OpenAI sends none). */
  code: string | null;
}

/** The one place a platform error becomes an HTTP status and an OpenAI error type. */
const HTTP_ERRORS: Record<ErrorCode, HttpError> = {
  missing_api_key: { status: 401, type: "invalid_request_error", code: null },
  invalid_api_key: { status: 401, type: "invalid_request_error", code: "invalid_api_key" },
  permission_denied: { status: 403, type: "invalid_request_error", code: "permission_denied" },
  invalid_request: { status: 400, type: "invalid_request_error", code: null },
  not_found: { status: 404, type: "invalid_request_error", code: "not_found" },
  model_not_found: { status: 404, type: "invalid_request_error", code: "model_not_found" },
  model_retired: { status: 410, type: "invalid_request_error", code: "model_retired" },
  context_length_exceeded: { status: 400, type: "invalid_request_error", code: "context_length_exceeded" },
  prompt_blocked: { status: 400, type: "invalid_request_error", code: "prompt_blocked" },
  // OpenAI's own types for these two, which its SDKs and clients look at.
  rate_limit_exceeded: { status: 429, type: "requests", code: "rate_limit_exceeded" },
  insufficient_quota: { status: 429, type: "insufficient_quota", code: "insufficient_quota" },
  model_unavailable: { status: 503, type: "server_error", code: "model_unavailable" },
  service_unavailable: { status: 503, type: "server_error", code: "service_unavailable" },
  request_timeout: { status: 504, type: "timeout_error", code: "timeout" },
  internal_error: { status: 500, type: "server_error", code: null },
};

export function httpStatusOf(error: PlatformError): number {
  return HTTP_ERRORS[error.code].status;
}

export function errorBody(error: PlatformError): openai.OpenAIErrorBody {
  const { type, code } = HTTP_ERRORS[error.code];
  return { error: { message: error.message, type, param: error.param, code } };
}

/**
 * Fastify's own 4xx errors (unparseable JSON, unsupported media type, body too large) keep their status and are
 * reported as invalid requests; anything else that is not a PlatformError is an internal error.
 */
export function fromFastifyError(error: unknown): { status: number; error: PlatformError } {
  if (error instanceof PlatformError) return { status: httpStatusOf(error), error };
  const status = (error as { statusCode?: unknown }).statusCode;
  if (typeof status === "number" && status >= 400 && status < 500) {
    const message = error instanceof Error ? error.message : "Invalid request.";
    return { status, error: new PlatformError("invalid_request", message) };
  }
  const internal = new PlatformError(
    "internal_error",
    "The server had an error while processing your request.",
  );
  return { status: 500, error: internal };
}
