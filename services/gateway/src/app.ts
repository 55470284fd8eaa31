import type { Duplex } from "node:stream";
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Bus } from "@llmaas/bus";
import type { Catalogue } from "@llmaas/catalogue";
import { PlatformError } from "@llmaas/contracts";
import type { Logger } from "@llmaas/telemetry";
import multipart from "@fastify/multipart";
import { registerLimitRoutes } from "./admin/limit-routes.js";
import { registerOperatorRoutes } from "./admin/operator-routes.js";
import { registerOrganizationRoutes } from "./admin/organization-routes.js";
import { MULTIPART_LIMITS, registerAudioRoutes } from "./audio/routes.js";
import { registerAuthentication } from "./auth/index.js";
import type { KeyCache } from "./auth/key-cache.js";
import type { KeyUsageReporter } from "./auth/key-usage.js";
import { errorBody, fromFastifyError } from "./errors.js";
import { registerGuardrailRoutes } from "./guardrail/routes.js";
import { registerChatRoutes } from "./routes/chat.js";
import { registerCompletionRoutes } from "./routes/completions.js";
import { registerEmbeddingRoutes } from "./routes/embeddings.js";
import { registerModelRoutes } from "./routes/models.js";
import type { Quotas } from "./quotas/index.js";
import { registerTracing } from "./tracing.js";
import { registerUsageExport } from "./usage/export.js";
import { registerUsageRoutes } from "./usage/routes.js";

export interface GatewayOptions {
  bus: Bus;
  catalogue: Catalogue;
  /** The platform's currency (`CURRENCY`): the catalogue's prices are in it. */
  currency: string;
  logger: Logger;
  bodyLimitBytes: number;
  authTimeoutMs: number;
  keyCache: KeyCache;
  keyUsage: KeyUsageReporter;
  adminTimeoutMs: number;
  /** Fastify's `trustProxy`: which proxies' X-Forwarded-For to believe for the client's address. */
  trustProxy: boolean | string;
  acceptTimeoutMs: number;
  requestTimeoutMs: number;
  /** Admits inference requests on their keys' limits; null only where enforcement is switched off (`QUOTAS`). */
  quotas: Quotas | null;
  /** How long the guardrail may take to screen a request's texts. */
  guardrailTimeoutMs: number;
}

const MALFORMED_REQUESTS: Record<string, { status: number; reason: string; message: string }> = {
  HPE_HEADER_OVERFLOW: {
    status: 431,
    reason: "Request Header Fields Too Large",
    message: "The request's headers are larger than the 16 KiB the server accepts.",
  },
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    reason: "Request Timeout",
    message: "The request was not received in time.",
  },
};

/**
 * Requests Node's HTTP parser refuses before fastify sees them (headers too large, malformed, too slow) are still
 * answered in OpenAI's error shape, so a client's error handling sees one format.
 */
function answerMalformedRequest(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  const known = MALFORMED_REQUESTS[error.code ?? ""] ?? {
    status: 400,
    reason: "Bad Request",
    message: "The request is not valid HTTP.",
  };
  const body = JSON.stringify(errorBody(new PlatformError("invalid_request", known.message)));
  socket.end(
    `HTTP/1.1 ${known.status} ${known.reason}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** The HTTP API, without listening: main.ts listens, tests use `inject` or listen on a free port. */
export function buildGateway(options: GatewayOptions): FastifyInstance {
  // Seen through fastify's logger interface, so the instance keeps fastify's default type parameters.
  const logger: FastifyBaseLogger = options.logger;
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: options.bodyLimitBytes,
    // The request id is the client-visible completion id; fastify's own only correlates log lines.
    requestIdHeader: false,
    trustProxy: options.trustProxy,
    clientErrorHandler: answerMalformedRequest,
  });

  // OpenAI's own examples send `Content-Type: application/json` on bodiless POSTs and DELETEs (archive, delete a
  // key); fastify would refuse them as an empty JSON body. An empty body is no body; anything else parses as before.
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    const text = body.toString();
    if (text === "") done(null, undefined);
    // The default parser answers through `done`; its return value carries nothing.
    else void parseJson(request, text, done);
  });

  app.setErrorHandler((error, request, reply) => {
    const { status, error: platformError } = fromFastifyError(error);
    if (status >= 500) request.log.error({ err: error }, "request failed");
    // A body refused for its size was not read to its end: the connection cannot carry another request, and a
    // client told so opens a new one instead of writing into a socket the server is about to close.
    if (status === 413) void reply.header("connection", "close");
    return reply.status(status).send(errorBody(platformError));
  });

  app.setNotFoundHandler((request, reply) => {
    const error = new PlatformError("invalid_request", `Invalid URL (${request.method} ${request.url})`);
    return reply.status(404).send(errorBody(error));
  });

  registerTracing(app);
  registerAuthentication(app, {
    bus: options.bus,
    cache: options.keyCache,
    usage: options.keyUsage,
    timeoutMs: options.authTimeoutMs,
  });

  app.get("/healthz", async () => ({ status: "ok" }));
  registerModelRoutes(app, options.catalogue, options.currency);
  const inference = {
    bus: options.bus,
    catalogue: options.catalogue,
    acceptTimeoutMs: options.acceptTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs,
    quotas: options.quotas,
    guardrail: { bus: options.bus, timeoutMs: options.guardrailTimeoutMs },
  };
  registerChatRoutes(app, inference);
  registerGuardrailRoutes(app, inference.guardrail);
  registerCompletionRoutes(app, inference);
  registerEmbeddingRoutes(app, inference);
  // Audio uploads are multipart; the parts are read by the audio routes themselves, into memory.
  void app.register(multipart, { limits: MULTIPART_LIMITS });
  void app.register(async (audio) => registerAudioRoutes(audio, inference));
  const admin = { bus: options.bus, catalogue: options.catalogue, timeoutMs: options.adminTimeoutMs };
  registerOrganizationRoutes(app, admin);
  registerLimitRoutes(app, { ...admin, currency: options.currency });
  registerUsageRoutes(app, { ...admin, currency: options.currency });
  registerUsageExport(app, admin);
  registerOperatorRoutes(app, admin);
  return app;
}
