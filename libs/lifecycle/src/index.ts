import { hostname } from "node:os";
import { createLogger, startTelemetry, type Logger, type Telemetry } from "@llmaas/telemetry";

export interface ShutdownLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ShutdownOptions {
  logger: ShutdownLogger;
  /** After this long the process exits even if in-flight work has not finished. */
  graceMs: number;
  /** Stops taking work, finishes what is in flight, closes connections; in that order. */
  stop: () => Promise<void>;
}

/**
 * SIGTERM or SIGINT start one orderly stop. A second signal while stopping is ignored; the grace timer is what
 * bounds a stop that hangs.
 */
export function stopOnSignals(options: ShutdownOptions): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    options.logger.info({ signal }, "stopping");
    const deadline = setTimeout(() => {
      options.logger.error({ graceMs: options.graceMs }, "grace period over; exiting with work unfinished");
      process.exit(1);
    }, options.graceMs);
    deadline.unref();
    options.stop().then(
      () => {
        options.logger.info({}, "stopped");
        process.exit(0);
      },
      (err: unknown) => {
        options.logger.error({ err }, "stop failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

export function defaultInstanceId(service: string): string {
  return `${service}-${hostname()}-${process.pid}`;
}

export interface ServiceRuntime {
  instanceId: string;
  logger: Logger;
  telemetry: Telemetry;
}

/**
 * The first thing each service's main does once its configuration is parsed: telemetry before any connection is
 * opened, then the logger every later step reports through.
 */
export function startServiceRuntime(
  service: string,
  config: {
    INSTANCE_ID?: string | undefined;
    OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
    OTEL_METRIC_EXPORT_INTERVAL_MS?: number;
    LOG_LEVEL: string;
  },
): ServiceRuntime {
  const instanceId = config.INSTANCE_ID ?? defaultInstanceId(service);
  const telemetry = startTelemetry({
    serviceName: service,
    instanceId,
    otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
    ...(config.OTEL_METRIC_EXPORT_INTERVAL_MS !== undefined
      ? { metricExportIntervalMs: config.OTEL_METRIC_EXPORT_INTERVAL_MS }
      : {}),
  });
  const logger = createLogger({ service, instanceId, level: config.LOG_LEVEL });
  return { instanceId, logger, telemetry };
}
export { Pool } from "./pool.js";
