import { NodeSDK } from "@opentelemetry/sdk-node";
import { BatchSpanProcessor, type SpanProcessor } from "@opentelemetry/sdk-trace";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";

export interface TelemetryOptions {
  serviceName: string;
  instanceId: string;
  /** OTLP/HTTP base URL (e.g. http://collector:4318); without it, spans are exported nowhere. */
  otlpEndpoint?: string | undefined;
  /** How often metrics are pushed to the OTLP endpoint. */
  metricExportIntervalMs?: number;
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
  // Metric attributes are closed sets (verdicts, categories, models), never anything a client wrote.
  const metricReader = options.otlpEndpoint
    ? new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: new URL("/v1/metrics", options.otlpEndpoint).href }),
        exportIntervalMillis: options.metricExportIntervalMs ?? 60_000,
      })
    : undefined;
  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    autoDetectResources: false,
    instrumentations: [],
    spanProcessors,
    ...(metricReader ? { metricReader } : {}),
  });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}
