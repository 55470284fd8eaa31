import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Bus } from "@llmaas/bus";
import type { Catalogue } from "@llmaas/catalogue";
import { PlatformError } from "@llmaas/contracts";
import type { Logger } from "@llmaas/telemetry";
import { authenticate } from "./auth.js";
import { errorBody, fromFastifyError } from "./errors.js";
import { registerChatRoutes } from "./routes/chat.js";
import { registerCompletionRoutes } from "./routes/completions.js";
import { registerEmbeddingRoutes } from "./routes/embeddings.js";
import { registerModelRoutes } from "./routes/models.js";
import { inRequestContext, registerTracing } from "./tracing.js";

export interface GatewayOptions {
  bus: Bus;
  catalogue: Catalogue;
  logger: Logger;
  bodyLimitBytes: number;
  authTimeoutMs: number;
  acceptTimeoutMs: number;
  requestTimeoutMs: number;
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
  });

  app.setErrorHandler((error, request, reply) => {
    const { status, error: platformError } = fromFastifyError(error);
    if (status >= 500) request.log.error({ err: error }, "request failed");
    return reply.status(status).send(errorBody(platformError));
  });

  app.setNotFoundHandler((request, reply) => {
    const error = new PlatformError("invalid_request", `Invalid URL (${request.method} ${request.url})`);
    return reply.status(404).send(errorBody(error));
  });

  registerTracing(app);
  // Before the body is read, so an anonymous client cannot make the gateway parse anything.
  app.addHook("onRequest", async (request) => {
    if (!request.url.startsWith("/v1/")) return;
    request.principal = await inRequestContext(request, () =>
      authenticate(options.bus, request, options.authTimeoutMs),
    );
  });

  app.get("/healthz", async () => ({ status: "ok" }));
  registerModelRoutes(app, options.catalogue);
  const inference = {
    bus: options.bus,
    catalogue: options.catalogue,
    acceptTimeoutMs: options.acceptTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs,
  };
  registerChatRoutes(app, inference);
  registerCompletionRoutes(app, inference);
  registerEmbeddingRoutes(app, inference);
  return app;
}
