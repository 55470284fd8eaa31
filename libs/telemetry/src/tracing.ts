import { NodeSDK } from "@opentelemetry/sdk-node";
import { BatchSpanProcessor, type SpanProcessor } from "@opentelemetry/sdk-trace";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";

export interface TelemetryOptions {
  serviceName: string;
  instanceId: string;
  /** OTLP/HTTP base URL (e.g. http://collector:4318); without it, spans are exported nowhere. */
  otlpEndpoint?: string | undefined;
  /** Replaces the exporters; tests pass an in-memory processor to read the spans. */
  spanProcessors?: SpanProcessor[];
}

export interface Telemetry {
  shutdown(): Promise<void>;
}

/**
 * Starts the OpenTelemetry SDK. Each service's main calls it before it opens any connection, so every span the
 * service makes has a provider. No auto-instrumentation is loaded: the platform's spans are made by hand and carry
 * only metadata (ids, model, token counts), never prompts or answers.
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  const spanProcessors =
    options.spanProcessors ??
    (options.otlpEndpoint
      ? [
          new BatchSpanProcessor({
            exporter: new OTLPTraceExporter({ url: new URL("/v1/traces", options.otlpEndpoint).href }),
          }),
        ]
      : []);
  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    autoDetectResources: false,
    instrumentations: [],
    spanProcessors,
  });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}
