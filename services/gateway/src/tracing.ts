import {
  context,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type TextMapGetter,
} from "@opentelemetry/api";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { IncomingHttpHeaders } from "node:http";

declare module "fastify" {
  interface FastifyRequest {
    /** The request's trace context: a server span, child of the caller's `traceparent` if it sent one. */
    traceContext: Context;
  }
}

const tracer = trace.getTracer("@llmaas/gateway");

const headerGetter: TextMapGetter<IncomingHttpHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/**
 * One server span per HTTP request, from arrival until the socket closes (so a stream's span covers the whole
 * stream). Route handlers run inside its context, so every bus call they make joins the same trace. Only the
 * method, route and status are recorded: never a header value or a body.
 */
export function registerTracing(app: FastifyInstance): void {
  app.decorateRequest("traceContext", null as unknown as Context);

  app.addHook("onRequest", async (request, reply) => {
    const parent = propagation.extract(context.active(), request.headers, headerGetter);
    const span = tracer.startSpan(
      `${request.method} ${request.routeOptions.url ?? "unknown route"}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          "http.request.method": request.method,
          "http.route": request.routeOptions.url ?? "",
        },
      },
      parent,
    );
    request.traceContext = trace.setSpan(parent, span);
    reply.raw.once("close", () => {
      const status = reply.raw.statusCode;
      span.setAttribute("http.response.status_code", status);
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
  });

  app.addHook("onRoute", (route) => {
    const handler = route.handler;
    route.handler = function tracedHandler(this: FastifyInstance, request, reply) {
      return context.with(request.traceContext, () => handler.call(this, request, reply));
    };
  });
}

export function inRequestContext<T>(request: FastifyRequest, run: () => T): T {
  return context.with(request.traceContext, run);
}
