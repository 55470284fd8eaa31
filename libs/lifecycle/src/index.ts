import { hostname } from "node:os";

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
